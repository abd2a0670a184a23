"""Why augmentation does or does not help on small data: one longer run per
variant on the first 1,000 Fashion-MNIST images (benchmarks/small_data.py's
folder and recipe, seed 0), scored at every --every steps: the offline
classifier's FD and KID of 10,000 samples against the 10,000 test images,
and D's answers (in inference mode) on the 1,000 training images against
1,000 held-out test images: mean sign(D(x)) and mean logit. A D that
memorises its training set scores those high and held-out images low.

  python benchmarks/small_data_trajectory.py [--steps 8000] [--every 2000]
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
# pylint: enable=g-import-not-at-top,wrong-import-position


def main():
  parser = argparse.ArgumentParser(
      description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument('--steps', type=int, default=8000)
  parser.add_argument('--every', type=int, default=2000)
  parser.add_argument('--variants', nargs='+', default=['plain', 'diffaugment'],
                      choices=list(small_data.VARIANTS))
  parser.add_argument('--width', type=int, default=32)
  parser.add_argument('--dir', default=tempfile.gettempdir())
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
  folder = os.path.join(args.dir, 'fashion_mnist_png_1000')
  if not os.path.isdir(folder):
    end_to_end.write_pngs(folder, 1000)
  config = fashion_mnist.get_config()
  config.data.split = 'test'
  config.eval.metrics = 'classifier_fd,classifier_kid'
  evaluator = evaluation.Evaluator(config)

  def load(split):
    images = idx_files.read_images(idx_files.DEBIAN_FASHION_MNIST_DIR,
                                   split)[:1000]
    return images.astype(np.float32) / 127.5 - 1.0
  train, held_out = load('train'), load('test')

  print('| variant | step | FD | KID | sign(D(x)) train / held-out | '
        'logit train / held-out |')
  print('| --- | --- | --- | --- | --- | --- |')
  with tempfile.TemporaryDirectory() as work:
    for variant in args.variants:
      workdir = os.path.join(work, variant)
      command = small_data.command(
          folder, workdir, 0, args.steps, args.width,
          {**small_data.VARIANTS[variant], 'checkpoint_every_steps':
           args.every, 'max_checkpoints_to_keep': args.steps // args.every})
      subprocess.run(command, check=True, capture_output=True, cwd=ROOT)
      manager = checkpoint.create_manager(workdir, read_only=True)
      for step in range(args.every, args.steps + 1, args.every):
        scores = evaluator.score_images(
            sample.generate_images(workdir, small_data.NUM_SAMPLES,
                                   step=step))
        saved = checkpoint.restore_config(manager, step)
        _, d_state, _ = checkpoint.restore(
            manager, step, *train_states.create_train_states(
                saved, jax.random.key(0)), jax.random.key(0))
        variables = forward.as_variables(d_state.params, d_state.batch_stats)
        logits = [np.asarray(d_state.apply_fn(variables, x, train=False))
                  for x in (train, held_out)]
        signs = [np.mean(np.sign(x)) for x in logits]
        print(f'| {variant} | {step} | {scores["classifier_fd"]:.1f} | '
              f'{scores["classifier_kid"]:.2f} | {signs[0]:+.2f} / '
              f'{signs[1]:+.2f} | {logits[0].mean():+.2f} / '
              f'{logits[1].mean():+.2f} |', flush=True)


if __name__ == '__main__':
  main()
