"""Evaluates a checkpoint of a run with the metrics of its config.

  python -m dcgan_jax.evaluate --workdir=runs/fashion_mnist [--step=N | --best]
      [--metrics=classifier_fd,classifier_kid] [--num_samples=10000]
      [--inception_weights=inception_fid.npz]

Prints the metrics as JSON and writes them to workdir/eval/step_N.json.
"""

import json

from absl import app
from absl import flags
from flax import jax_utils
import jax

from dcgan_jax import checkpoint
from dcgan_jax import evaluation
from dcgan_jax import paths

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
  with config.unlocked():
    for key, value in overrides.items():
      if value is not None:
        config.eval[key] = value
  evaluator = evaluation.Evaluator(config)
  if not evaluator.names:
    raise ValueError('No metrics to compute: the run\'s config.eval.metrics '
                     'is empty; pass --metrics.')
  return step, evaluator(jax_utils.replicate(g_state))


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'Unexpected arguments: {argv[1:]}')
  FLAGS = flags.FLAGS
  checkpoint.quiet_orbax_info_logs()
  step, results = evaluate(
      FLAGS.workdir, FLAGS.step, FLAGS.best, metrics=FLAGS.metrics,
      num_samples=FLAGS.num_samples,
      inception_weights=FLAGS.inception_weights, cache_dir=FLAGS.cache_dir)
  record = json.dumps({'step': step, **results}, indent=2)
  print(record)
  with paths.atomic_write(
      paths.path(FLAGS.workdir) / 'eval' / f'step_{step}.json', 'w') as f:
    f.write(record + '\n')


if __name__ == '__main__':
  flags.DEFINE_string('workdir', None, "A training run's workdir.")
  flags.DEFINE_integer('step', None, 'Checkpoint step (default: the latest).')
  flags.DEFINE_bool('best', False, 'Evaluate the best checkpoint '
                    '(checkpoints_best) instead.')
  flags.DEFINE_string('metrics', None, 'Overrides config.eval.metrics.')
  flags.DEFINE_integer('num_samples', None,
                       'Overrides config.eval.num_samples.')
  flags.DEFINE_string('inception_weights', None,
                      'Overrides config.eval.inception_weights.')
  flags.DEFINE_string('cache_dir', None, 'Overrides config.eval.cache_dir.')
  flags.mark_flags_as_required(['workdir'])
  app.run(main)
