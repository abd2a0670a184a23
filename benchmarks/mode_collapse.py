"""Mode collapse on the ring of 8 Gaussians: every objective, with and
without unrolling, over several seeds (dcgan_jax/mode_collapse.py).

Prints a markdown table: per objective and unroll setting, the mean and
minimum number of modes covered (of 8) and the mean fraction of
high-quality samples over the seeds, and the wall time of the run (all
seeds train together).

  python benchmarks/mode_collapse.py [--steps 3000] [--seeds 5] [--unroll 5]
"""

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from dcgan_jax import losses  # pylint: disable=g-import-not-at-top,wrong-import-position
from dcgan_jax import mode_collapse  # pylint: disable=g-import-not-at-top,wrong-import-position


def main():
  parser = argparse.ArgumentParser(
      description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument('--steps', type=int, default=3000,
                      help='G updates per run')
  parser.add_argument('--seeds', type=int, default=5)
  parser.add_argument('--unroll', type=int, default=5,
                      help='unroll_steps of the unrolled runs')
  parser.add_argument('--objectives', nargs='+', default=list(losses.OBJECTIVES),
                      choices=list(losses.OBJECTIVES))
  args = parser.parse_args()
  print(f'{args.steps} G updates, seeds 0-{args.seeds - 1}; a mode is covered '
        f'when >= {mode_collapse.MIN_MODE_FRACTION:.0%} of '
        f'{mode_collapse.NUM_EVAL_SAMPLES} samples lie within 3 std of it.')
  print()
  print('| objective | unroll_steps | n_critic | modes (mean) | modes (min) '
        '| high-quality samples | modes per seed | time s |')
  print('| --- | --- | --- | --- | --- | --- | --- | --- |')
  for objective in args.objectives:
    for unroll in (0, args.unroll):
      config = mode_collapse.get_config(objective, unroll)
      start = time.perf_counter()
      results = mode_collapse.train(config, range(args.seeds), args.steps)
      seconds = time.perf_counter() - start
      modes = [m for m, _ in results]
      quality = sum(q for _, q in results) / len(results)
      print(f'| {objective} | {unroll} | {config.n_critic} | '
            f'{sum(modes) / len(modes):.1f} | {min(modes)} | {quality:.1%} | '
            f'{" ".join(map(str, modes))} | {seconds:.0f} |', flush=True)


if __name__ == '__main__':
  main()
