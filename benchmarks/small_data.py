"""What augmenting D's inputs buys on small data: the same recipe trained on
the first 1,000 and on all 60,000 Fashion-MNIST training images (Debian's
dataset-fashion-mnist files, as folders of PNGs), plain, with DiffAugment
(color, translation, cutout) and with ADA, for the same number of steps.

Each run is `python -m dcgan_jax.main --config=configs/fashion_mnist.py`
(`dcgan` at 28x28x1, BCE, Adam 2e-4 / 0.5) at batch 64, G and D --width
channels wide (32: a quarter of the default's work per step), for --steps
steps (with 1,000 images, 64 epochs per 1,000 steps: D sees each image
many times, as on a small data set). ADA adjusts p towards --ada_target
at --ada_kimg thousand images for p's full range (the paper's 500 is for
runs of millions of images). Scored by the offline classifier's FD and
KID (x 1e3) of 10,000 samples against the 10,000 held-out test images,
which no run trains on; mean +- std over the seeds. The last grid of each
run's first seed is copied to --grids.

  python benchmarks/small_data.py [--sizes 1000 60000] [--steps 2000]
      [--seeds 0 1] [--variants plain diffaugment ada] [--ada_target 0.6]
"""

import argparse
import json
import os
import shutil
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)

# pylint: disable=g-import-not-at-top,wrong-import-position
from benchmarks import end_to_end
from benchmarks import summary
from dcgan_jax.gan import ada
# pylint: enable=g-import-not-at-top,wrong-import-position

BATCH = 64
NUM_SAMPLES = 10_000
VARIANTS = {
    'plain': {},
    'diffaugment': {'augment.policy': 'color,translation,cutout'},
    'ada': {'augment.ada': True},
}


def variant_overrides(variant: str, ada_kimg: float,
                      ada_target: float) -> dict[str, object]:
  """One variant's config overrides, with ADA's speed and target."""
  overrides = dict(VARIANTS[variant])
  if variant == 'ada':
    overrides.update({'augment.ada_kimg': ada_kimg,
                      'augment.ada_target': ada_target})
  return overrides


def command(folder: str, workdir: str, seed: int, steps: int, width: int,
             overrides: dict[str, object]) -> list[str]:
  """The training command of one run on a folder; overrides last."""
  settings = {'data.name': 'folder', 'data.path': folder, 'seed': seed,
              'batch_size': BATCH, 'num_train_steps': steps,
              'model.ngf': width, 'model.ndf': width,
              'eval.metrics': '', 'sample_every_steps': steps,
              'checkpoint_every_steps': steps, **overrides}
  return [sys.executable, '-m', 'dcgan_jax.main',
          '--config=configs/fashion_mnist.py', f'--workdir={workdir}',
          *[f'--config.{key}={value}' for key, value in settings.items()]]


def main():
  parser = argparse.ArgumentParser(
      description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument('--sizes', nargs='+', type=int, default=[1000, 60000])
  parser.add_argument('--steps', type=int, default=2000)
  parser.add_argument('--seeds', nargs='+', type=int, default=[0, 1])
  parser.add_argument('--variants', nargs='+', default=list(VARIANTS),
                      choices=list(VARIANTS))
  parser.add_argument('--width', type=int, default=32)
  parser.add_argument('--ada_kimg', type=float, default=100.0)
  parser.add_argument('--ada_target', type=float, default=ada.TARGET)
  parser.add_argument('--dir', default=tempfile.gettempdir(),
                      help='where the folders of PNGs are (written if absent)')
  parser.add_argument('--grids', default=os.path.join(
      tempfile.gettempdir(), 'small_data_grids'))
  parser.add_argument('--results', default='',
                      help='a JSON file to keep each run\'s results in')
  args = parser.parse_args()

  # pylint: disable=g-import-not-at-top
  from configs import fashion_mnist
  from dcgan_jax import evaluation
  from dcgan_jax import sample
  # pylint: enable=g-import-not-at-top
  config = fashion_mnist.get_config()
  config.data.split = 'test'  # Held out from every run's images.
  config.eval.metrics = 'classifier_fd,classifier_kid'
  evaluator = evaluation.Evaluator(config)
  os.makedirs(args.grids, exist_ok=True)

  results = {}  # (size, variant, seed) -> {'fd', 'kid', 'seconds', 'p'}
  with tempfile.TemporaryDirectory() as work:
    for size in args.sizes:
      folder = os.path.join(args.dir, f'fashion_mnist_png_{size}')
      if not os.path.isdir(folder):
        end_to_end.write_pngs(folder, size)
      for variant in args.variants:
        overrides = variant_overrides(variant, args.ada_kimg, args.ada_target)
        for seed in args.seeds:
          name = f'{size}_{variant}_{seed}'
          workdir = os.path.join(work, name)
          seconds = end_to_end.timed_run(
              command(folder, workdir, seed, args.steps, args.width,
                       overrides),
              os.path.join(work, f'{name}.log'))
          scores = evaluator.score_images(
              sample.generate_images(workdir, NUM_SAMPLES, seed=seed))
          with open(os.path.join(workdir, 'metrics.jsonl')) as f:
            ps = [record['ada_p'] for record in map(json.loads, f)
                  if 'ada_p' in record]
          results[size, variant, seed] = {
              'fd': scores['classifier_fd'], 'kid': scores['classifier_kid'],
              'seconds': seconds, 'p': ps[-1] if ps else None}
          print(f'{name}: FD {scores["classifier_fd"]:.1f}, KID '
                f'{scores["classifier_kid"]:.2f}, {seconds:.0f} s'
                + (f', p {ps[-1]:.2f}' if ps else ''), flush=True)
          if seed == args.seeds[0]:
            shutil.copy(os.path.join(workdir, 'samples',
                                     f'{args.steps:07d}.png'),
                        os.path.join(args.grids, f'{size}_{variant}.png'))
          if args.results:
            with open(args.results, 'w') as f:
              json.dump({'|'.join(map(str, k)): v
                         for k, v in results.items()}, f, indent=1)

  print(f'\nFashion-MNIST, 28x28x1, batch {BATCH}, width {args.width}, '
        f'{args.steps} steps; seeds '
        f'{args.seeds}; classifier FD and KID of {NUM_SAMPLES} samples '
        'against the 10,000 test images, mean +- std over the seeds.\n')
  print('| images | variant | FD | KID | FD per seed | wall s (mean) |')
  print('| --- | --- | --- | --- | --- | --- |')
  for size in args.sizes:
    for variant in args.variants:
      runs = [results[size, variant, s] for s in args.seeds]
      p = (f' (final p {summary.mean_std([r["p"] for r in runs], 2)})'
           if variant == 'ada' else '')
      print(f'| {size} | {variant}{p} | '
            f'{summary.mean_std([r["fd"] for r in runs])} | '
            f'{summary.mean_std([r["kid"] for r in runs], 2)} | '
            f'{" ".join(format(r["fd"], ".1f") for r in runs)} | '
            f'{sum(r["seconds"] for r in runs) / len(runs):.0f} |')


if __name__ == '__main__':
  main()
