"""Evaluates a run's checkpoint, or any images, with the run's metrics.

  python -m dcgan_jax.evaluate --workdir=runs/fashion_mnist [--step=N | --best]
      [--metrics=classifier_fd,classifier_precision] [--num_samples=10000]
      [--inception_weights=inception_fid.npz] [--resize=tensorflow]
      [--stats=STATS.npz]
  python -m dcgan_jax.evaluate --config=configs/fashion_mnist.py \
      --images=samples.npz|DIR [--stats=STATS.npz] [--metrics=...]
  python -m dcgan_jax.evaluate --config=configs/fashion_mnist.py \
      --save_stats=STATS.npz [--images=DIR]

The first form prints the metrics as JSON and writes them to
workdir/eval/step_N.json; the second scores images from anywhere (a folder
of images, or an .npz of uint8 images under 'images') against the config's
dataset or a statistics file, printing the same JSON; the third writes a
statistics file of the dataset's (or the images') features, which --stats
and config.eval.reference_stats reuse.
"""

import json
from typing import Any, Optional

from absl import app
from absl import flags
from flax import jax_utils
import ml_collections

from dcgan_jax.data import image_files
from dcgan_jax import evaluation
from dcgan_jax.output import paths
from dcgan_jax.run import checkpoint
from dcgan_jax.run import cli

# Flags that override config.eval keys of the same name (--stats:
# reference_stats).
EVAL_OVERRIDES = ('metrics', 'num_samples', 'inception_weights', 'cache_dir',
                  'resize')


def _override(config: ml_collections.ConfigDict,
              overrides: dict[str, Any]) -> ml_collections.ConfigDict:
  config = ml_collections.ConfigDict(config.to_dict())
  for key, value in overrides.items():
    if value is not None:
      config.eval[key] = value
  return config


def _evaluator(config: ml_collections.ConfigDict) -> evaluation.Evaluator:
  evaluator = evaluation.Evaluator(config)
  if not evaluator.names:
    raise ValueError('No metrics to compute: config.eval.metrics is empty; '
                     'pass --metrics.')
  return evaluator


def evaluate(workdir: str, step: int | None = None, best: bool = False,
             **overrides) -> tuple[int, dict[str, float]]:
  """(step, metrics) of a checkpoint; overrides replace config.eval keys."""
  best_metric = None
  if best:
    manager = checkpoint.create_manager(workdir, read_only=True)
    saved = checkpoint.restore_config(
        manager, checkpoint.latest_step_or_raise(manager, workdir))
    best_metric = evaluation.best_metric(saved)
  step, config, g_state = checkpoint.load_generator(workdir, step,
                                                   best_metric)
  evaluator = _evaluator(_override(config, overrides))
  return step, evaluator(jax_utils.replicate(g_state))


def score_images(config: ml_collections.ConfigDict, images: str,
                 **overrides) -> dict[str, float]:
  """The metrics of the images in a folder or .npz, against the config's
  dataset (or overrides['reference_stats'])."""
  config = _override(config, overrides)
  evaluator = _evaluator(config)
  pixels = image_files.read_images(images, config.data.channels)
  size = (config.data.image_size,) * 2
  if 'classifier' in evaluator.spaces and pixels.shape[1:3] != size:
    raise ValueError(
        f'--images={images!r} holds {pixels.shape[2]}x{pixels.shape[1]} '
        f'images; the classifier metrics compare at the config\'s '
        f'data.image_size={config.data.image_size}.')
  return {'images': str(images), 'num_images': len(pixels),
          **evaluator.score_images(pixels)}


def save_stats(config: ml_collections.ConfigDict, out: str,
               images: Optional[str] = None, **overrides) -> dict[str, Any]:
  """Writes the statistics file of the config's dataset (or of images)."""
  config = _override(config, {**overrides, 'reference_stats': ''})
  evaluator = _evaluator(config)
  if images is None:
    return evaluator.save_stats(out)
  return evaluator.save_stats(
      out, image_files.read_images(images, config.data.channels),
      source=str(images))


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'Unexpected arguments: {argv[1:]}')
  FLAGS = flags.FLAGS
  checkpoint.quiet_orbax_info_logs()
  overrides = {key: FLAGS[key].value for key in EVAL_OVERRIDES}
  overrides['reference_stats'] = FLAGS.stats
  if FLAGS.save_stats or FLAGS.images:
    config = FLAGS.config
    if config is None:
      if not FLAGS.workdir:
        raise app.UsageError('--images and --save_stats need --config or a '
                             '--workdir whose checkpoint holds one.')
      config = checkpoint.load_generator(FLAGS.workdir, FLAGS.step)[1]
    if FLAGS.save_stats:
      meta = save_stats(config, FLAGS.save_stats, FLAGS.images, **overrides)
      print(json.dumps(meta, indent=2))
    else:
      print(json.dumps(score_images(config, FLAGS.images, **overrides),
                       indent=2))
    return
  if not FLAGS.workdir:
    raise app.UsageError('Pass --workdir (a run to evaluate), or --images or '
                         '--save_stats with --config.')
  step, results = evaluate(FLAGS.workdir, FLAGS.step, FLAGS.best, **overrides)
  record = json.dumps({'step': step, **results}, indent=2)
  print(record)
  with paths.atomic_write(
      paths.path(FLAGS.workdir) / 'eval' / f'step_{step}.json', 'w') as f:
    f.write(record + '\n')


if __name__ == '__main__':
  from ml_collections import config_flags  # pylint: disable=g-import-not-at-top
  flags.DEFINE_string('workdir', None, "A training run's workdir.")
  config_flags.DEFINE_config_file(
      'config', None, 'A config file (for --images and --save_stats without '
      'a --workdir).', lock_config=False)
  flags.DEFINE_string('images', None, 'Score these images instead of a '
                      "checkpoint: a folder, or an .npz with uint8 'images'.")
  flags.DEFINE_string('save_stats', None, 'Write a statistics file of the '
                      "config's dataset (or of --images) here, and exit.")
  flags.DEFINE_string('stats', None, 'Compare with this statistics file '
                      "instead of the dataset (config.eval.reference_stats).")
  flags.DEFINE_integer('step', None, 'Checkpoint step (default: the latest).')
  flags.DEFINE_bool('best', False, 'Evaluate the best checkpoint '
                    '(checkpoints_best) instead.')
  flags.DEFINE_string('metrics', None, 'Overrides config.eval.metrics.')
  flags.DEFINE_integer('num_samples', None,
                       'Overrides config.eval.num_samples.')
  flags.DEFINE_string('inception_weights', None,
                      'Overrides config.eval.inception_weights.')
  flags.DEFINE_string('cache_dir', None, 'Overrides config.eval.cache_dir.')
  flags.DEFINE_string('resize', None, 'Overrides config.eval.resize.')
  cli.run(main)
