"""Why augmentation does or does not help on small data: one longer run per
variant on the first --images Fashion-MNIST images (benchmarks/small_data.py's
folder and recipe, seed 0), scored at every --every steps: the offline
classifier's FD and KID of 10,000 samples against the 10,000 test images,
D's answers (in inference mode) on its training images against as many
held-out test images: mean sign(D(x)) and mean logit, and how near G's
samples come to the training images against the held-out ones: the mean
pixel distance (RMS, images in [-1, 1]) from each sample to its nearest
training image over that to its nearest held-out image. A D that memorises
its training set scores those high and held-out images low; a G that
copies its training images has a ratio well below 1.

  python benchmarks/small_data_trajectory.py [--images 1000] [--steps 8000]
      [--every 2000] [--variants plain diffaugment ada] [--ada_kimg 100]
      [--ada_target 0.6] [--runs DIR]

With --runs the runs are kept in DIR (IMAGES_VARIANT), and one already
there with its last checkpoint is scored again without training.
"""

import argparse
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)

# pylint: disable=g-import-not-at-top,wrong-import-position
import jax
import numpy as np

from benchmarks import end_to_end
from benchmarks import small_data
from dcgan_jax.gan import ada
# pylint: enable=g-import-not-at-top,wrong-import-position


def main():
  parser = argparse.ArgumentParser(
      description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument('--images', type=int, default=1000)
  parser.add_argument('--steps', type=int, default=8000)
  parser.add_argument('--every', type=int, default=2000)
  parser.add_argument('--variants', nargs='+', default=['plain', 'diffaugment'],
                      choices=list(small_data.VARIANTS))
  parser.add_argument('--ada_kimg', type=float, default=100.0)
  parser.add_argument('--ada_target', type=float, default=ada.TARGET)
  parser.add_argument('--width', type=int, default=32)
  parser.add_argument('--dir', default=tempfile.gettempdir())
  parser.add_argument('--runs', default='',
                      help='where to keep the runs (default: deleted)')
  args = parser.parse_args()

  # pylint: disable=g-import-not-at-top
  from configs import fashion_mnist
  from dcgan_jax import evaluation
  from dcgan_jax import sample
  from dcgan_jax.data import idx_files
  from dcgan_jax.gan import forward
  from dcgan_jax.gan import train_states
  from dcgan_jax.run import checkpoint
  # pylint: enable=g-import-not-at-top
  folder = os.path.join(args.dir, f'fashion_mnist_png_{args.images}')
  if not os.path.isdir(folder):
    end_to_end.write_pngs(folder, args.images)
  config = fashion_mnist.get_config()
  config.data.split = 'test'
  config.eval.metrics = 'classifier_fd,classifier_kid'
  evaluator = evaluation.Evaluator(config)

  def load(split):
    images = idx_files.read_images(idx_files.DEBIAN_FASHION_MNIST_DIR,
                                   split)[:args.images]
    return images.astype(np.float32) / 127.5 - 1.0
  train, held_out = load('train'), load('test')

  def nearest(samples, images):
    """Each sample's RMS pixel distance to its nearest image."""
    squared = ((samples ** 2).sum(1)[:, None] + (images ** 2).sum(1)[None]
               - 2 * samples @ images.T)
    return np.sqrt(np.maximum(squared.min(1), 0) / samples.shape[1])

  print('| variant | step | FD | KID | sign(D(x)) train / held-out | '
        'logit train / held-out | nearest train / held-out |')
  print('| --- | --- | --- | --- | --- | --- | --- |')
  with tempfile.TemporaryDirectory() as work:
    for variant in args.variants:
      workdir = os.path.join(args.runs or work, f'{args.images}_{variant}')
      manager = checkpoint.create_manager(workdir, read_only=True)
      if manager.latest_step() != args.steps:
        command = small_data.command(
            folder, workdir, 0, args.steps, args.width,
            {**small_data.variant_overrides(variant, args.ada_kimg,
                                            args.ada_target),
             'checkpoint_every_steps': args.every,
             'max_checkpoints_to_keep': args.steps // args.every})
        subprocess.run(command, check=True, capture_output=True, cwd=ROOT)
        manager = checkpoint.create_manager(workdir, read_only=True)
      for step in range(args.every, args.steps + 1, args.every):
        samples = sample.generate_images(workdir, small_data.NUM_SAMPLES,
                                         step=step)
        scores = evaluator.score_images(samples)
        saved = checkpoint.restore_config(manager, step)
        _, d_state, _ = checkpoint.restore(
            manager, step, *train_states.create_train_states(
                saved, jax.random.key(0)), jax.random.key(0))
        variables = forward.as_variables(d_state.params, d_state.batch_stats)
        logits = [np.asarray(d_state.apply_fn(variables, x, train=False))
                  for x in (train, held_out)]
        signs = [np.mean(np.sign(x)) for x in logits]
        flat = samples.reshape(len(samples), -1).astype(np.float32
                                                        ) / 127.5 - 1.0
        ratio = (nearest(flat, train.reshape(len(train), -1)).mean() /
                 nearest(flat, held_out.reshape(len(held_out), -1)).mean())
        print(f'| {variant} | {step} | {scores["classifier_fd"]:.1f} | '
              f'{scores["classifier_kid"]:.2f} | {signs[0]:+.2f} / '
              f'{signs[1]:+.2f} | {logits[0].mean():+.2f} / '
              f'{logits[1].mean():+.2f} | {ratio:.2f} |', flush=True)


if __name__ == '__main__':
  main()
