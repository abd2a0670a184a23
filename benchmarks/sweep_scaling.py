"""What a sweep of N GANs in one program (`gan.sweep`: the members' states
stacked, `train_step` vmapped over them) costs against N separate runs:
step time, images per second per member and peak memory, for N = 1, 2, 4,
8 and 16 at 32x32x1 and 64x64x3, batch 64 per member, float32, beside
one plain `train_step` run of the same shape (`step_throughput.run_jax`).

Each (shape, N) runs in a child process of its own, so that its peak
memory (RSS on CPU, device memory on an accelerator) is its own; the
members share each step's real batch, as a sweep's do.

  python benchmarks/sweep_scaling.py [--sizes 32x1 64x3] [--members 1 2 4 8 16]
      [--model dcgan]

With another --model (dcgan_upsample, keras_dcgan, mlp) the reference is
its sweep of 1: `step_throughput` times `dcgan` alone.
"""

import argparse
import functools
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

# pylint: disable=g-import-not-at-top,wrong-import-position
from benchmarks import step_throughput
# pylint: enable=g-import-not-at-top,wrong-import-position


def time_sweep(size: int, channels: int, members: int, batch: int,
               warmup: int, repeats: int, width: int = 64,
               model: str = 'dcgan') -> dict:
  """Times one jitted `sweep.sweep_step` of `members` members (states
  donated), after `warmup` untimed steps: its times and memory."""
  import jax  # pylint: disable=g-import-not-at-top
  import ml_collections  # pylint: disable=g-import-not-at-top
  from dcgan_jax.cpu import runtime  # pylint: disable=g-import-not-at-top
  from dcgan_jax.gan import sweep  # pylint: disable=g-import-not-at-top
  from dcgan_jax.gan import train_states  # pylint: disable=g-import-not-at-top

  config = ml_collections.ConfigDict({
      'data': {'image_size': size, 'channels': channels},
      'model': {'name': model, 'nz': 100, 'ngf': width, 'ndf': width},
      'optim': {'lr_g': 2e-4, 'lr_d': 2e-4, 'b1': 0.5, 'b2': 0.999}})
  seeds = list(range(members))
  states = list(sweep.create_member_states(config, seeds))
  _, step_keys = sweep.member_keys(seeds)
  images = jax.random.uniform(jax.random.key(1),
                              (batch, size, size, channels), minval=-1)
  update = runtime.compile_now(
      jax.jit(functools.partial(
          sweep.sweep_step, recipe=train_states.Recipe.from_config(config)),
              donate_argnums=(0, 1)), *states, images, step_keys)

  def step():
    states[:] = update(*states, images, step_keys)[:2]

  times = step_throughput._timed(step, warmup, repeats,  # pylint: disable=protected-access
                                 lambda: jax.block_until_ready(states))
  device_memory = jax.devices()[0].memory_stats() or {}
  return {'times': times,
          'peak_rss_mib': step_throughput._peak_rss_mib(),  # pylint: disable=protected-access
          'peak_device_mib': device_memory.get('peak_bytes_in_use',
                                               0) / 2**20}


def _child(spec: str, members: int, args) -> dict | None:
  command = [sys.executable, os.path.abspath(__file__), '--worker',
             '--sizes', spec, '--members', str(members),
             '--batch', str(args.batch), '--warmup', str(args.warmup),
             '--repeats', str(args.repeats), '--model', args.model]
  from dcgan_jax.cpu import runtime  # pylint: disable=g-import-not-at-top
  environ = runtime.huge_pages_environ(dict(os.environ)) or dict(os.environ)
  return step_throughput.worker_result(command, f'{spec}, {members} members',
                                      environ)


def main():
  parser = argparse.ArgumentParser(
      description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument('--sizes', nargs='+', default=['32x1', '64x3'])
  parser.add_argument('--members', nargs='+', type=int,
                      default=[1, 2, 4, 8, 16])
  parser.add_argument('--batch', type=int, default=64)
  parser.add_argument('--warmup', type=int, default=2)
  parser.add_argument('--repeats', type=int, default=5)
  parser.add_argument('--model', default='dcgan',
                      help='a name in models.MODELS')
  parser.add_argument('--worker', action='store_true',
                      help='(internal) time one (shape, N) in this process')
  args = parser.parse_args()
  if args.worker:
    size, channels = map(int, args.sizes[0].split('x'))
    step_throughput.print_result(time_sweep(
        size, channels, args.members[0], args.batch, args.warmup,
        args.repeats, model=args.model))
    return

  print(f'Model {args.model}, batch {args.batch} per member.\n')
  print('| shape | run | ms/step (median) | img/s, all members | '
        'img/s per member | all members vs the first row | '
        'peak RSS MiB | peak device MiB |')
  print('| --- | --- | --- | --- | --- | --- | --- | --- |')
  for spec in args.sizes:
    rows = [(f'sweep of {n}', n, _child(spec, n, args)) for n in args.members]
    if args.model == 'dcgan':
      single = step_throughput._child('jax', spec, args.batch, 'float32', args)  # pylint: disable=protected-access
      rows.insert(0, ('train_step, one run', 1, single))
    reference = None
    for name, members, result in rows:
      if result is None:
        continue
      median = sorted(result['times'])[len(result['times']) // 2]
      img_s = members * args.batch / median
      reference = reference or img_s
      print(f'| {spec} | {name} | {1000 * median:.0f} | {img_s:.0f} | '
            f'{img_s / members:.0f} | {img_s / reference:.2f}x | '
            f'{result["peak_rss_mib"]:.0f} | '
            f'{result["peak_device_mib"]:.0f} |', flush=True)

if __name__ == '__main__':
  main()
