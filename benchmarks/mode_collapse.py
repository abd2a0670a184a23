"""Mode collapse on the ring of 8 Gaussians (benchmarks/eight_gaussians.py):
the standard GAN against the unrolled GAN in the unrolled-GAN paper's
setting, over seeds.

Prints a markdown table: per objective and unroll setting, the modes
covered (of 8) after the last step, mean +- std and minimum over the seeds,
the high-quality samples, mean +- std, the modes covered at each snapshot
(mean over the seeds: how many a G covers at a time as it trains), and the
wall time (all seeds train together). --figure draws one seed's samples
over training, a row per variant and a column per snapshot, as the paper's
Figure 1.

  python benchmarks/mode_collapse.py [--steps 25000] [--seeds 5] \
      [--unroll 0 5 10] [--objectives minimax] [--lr 1e-4] \
      [--figure docs/mode_collapse.png]

The seeds of a variant train together, as one sweep's members.
"""

import argparse
import io
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# pylint: disable=g-import-not-at-top,wrong-import-position
import numpy as np
from PIL import Image

from benchmarks import eight_gaussians
from benchmarks import summary
from dcgan_jax.gan import losses
# pylint: enable=g-import-not-at-top,wrong-import-position


def draw(samples: dict[str, dict[int, np.ndarray]], seed_index: int,
         path: str) -> None:
  """Scatter plots of one seed's samples: a row per variant, a column per
  snapshot, the modes' centres marked."""
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use('Agg')
  from matplotlib import pyplot as plt  # pylint: disable=g-import-not-at-top

  columns = sorted(next(iter(samples.values())))
  figure, axes = plt.subplots(len(samples), len(columns), squeeze=False,
                              figsize=(1.6 * len(columns),
                                       1.7 * len(samples)))
  centres = eight_gaussians.mode_centres()
  limit = eight_gaussians.RADIUS * 1.4
  for row, (name, by_step) in enumerate(samples.items()):
    for column, step in enumerate(columns):
      points = by_step[step][seed_index]
      covered, quality = eight_gaussians.coverage(points)
      ax = axes[row, column]
      ax.scatter(points[:, 0], points[:, 1], s=0.5, alpha=0.3,
                 color='tab:blue', rasterized=True)
      ax.scatter(centres[:, 0], centres[:, 1], s=6, color='tab:red')
      ax.set(xlim=(-limit, limit), ylim=(-limit, limit), xticks=[],
             yticks=[], aspect='equal')
      ax.set_title(f'step {step}: {covered} modes, {quality:.0%}',
                   fontsize=6)
      if column == 0:
        ax.set_ylabel(name, fontsize=7)
  figure.tight_layout()
  buffer = io.BytesIO()
  figure.savefig(buffer, dpi=80)
  # 32 colours: a quarter of the bytes, for the docs.
  Image.open(buffer).convert('RGB').quantize(colors=32).save(path,
                                                             optimize=True)


def main():
  parser = argparse.ArgumentParser(
      description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument('--steps', type=int, default=eight_gaussians.NUM_STEPS)
  parser.add_argument('--seeds', type=int, default=5, help='at least 2')
  parser.add_argument('--unroll', nargs='+', type=int, default=[0, 5, 10],
                      help='unroll_steps of each variant')
  parser.add_argument('--objectives', nargs='+', default=['minimax'],
                      choices=list(losses.OBJECTIVES))
  parser.add_argument('--lr', type=float, default=1e-4,
                      help="G's and D's learning rate (the paper's: 1e-4)")
  parser.add_argument('--snapshots', type=int, default=6,
                      help='evenly spaced steps measured, 0 and the last '
                      'included')
  parser.add_argument('--figure', default='',
                      help='a PNG of the first seed over training')
  args = parser.parse_args()
  snapshots = [round(i * args.steps / (args.snapshots - 1))
               for i in range(args.snapshots)]
  print(f'{args.steps} steps, learning rate {args.lr:g}, seeds '
        f'0-{args.seeds - 1}; a mode is covered '
        f'when >= {eight_gaussians.MIN_MODE_FRACTION:.0%} of '
        f'{eight_gaussians.NUM_EVAL_SAMPLES} samples lie within 3 std of it. '
        f'Modes at steps {", ".join(map(str, snapshots))}.')
  print()
  print('| objective | unroll_steps | modes | modes (min) | high-quality '
        'samples | modes per seed | modes over training | time s |')
  print('| --- | --- | --- | --- | --- | --- | --- | --- |')
  drawn = {}
  for objective in args.objectives:
    for unroll in args.unroll:
      config = eight_gaussians.get_config(objective, unroll)
      config.optim.lr_g = config.optim.lr_d = args.lr
      start = time.perf_counter()
      samples = eight_gaussians.train(config, range(args.seeds), args.steps,
                                    snapshots)
      seconds = time.perf_counter() - start
      measured = {step: [eight_gaussians.coverage(s) for s in by_seed]
                  for step, by_seed in samples.items()}
      modes = [m for m, _ in measured[args.steps]]
      quality = [q for _, q in measured[args.steps]]
      over_training = ' '.join(
          f'{np.mean([m for m, _ in measured[step]]):.1f}'
          for step in snapshots)
      print(f'| {objective} | {unroll} | {summary.mean_std(modes)} | '
            f'{min(modes)} | '
            f'{np.mean(quality):.0%} +- {np.std(quality, ddof=1):.0%} | '
            f'{" ".join(map(str, modes))} | {over_training} | '
            f'{seconds:.0f} |', flush=True)
      name = ('standard' if not unroll else f'unrolled {unroll}') + (
          f' ({objective})' if len(args.objectives) > 1 else '')
      drawn[name] = samples
  if args.figure:
    draw(drawn, 0, args.figure)


if __name__ == '__main__':
  main()
