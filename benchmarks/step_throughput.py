"""Training-step throughput on this machine, with a same-run reference.

Times the jitted `steps.train_step` (one G forward shared by D's and G's
updates, as in the PyTorch reference loop) against the common JAX GAN
pattern measured in the same run: `d_step` then `g_step`, each with its own
G forward. Prints img/s for both and their ratio.

  python benchmarks/step_throughput.py [--sizes 28x1 64x3] [--batch 64]
"""

import argparse
import time

import jax
import ml_collections
import numpy as np

from dcgan_jax import steps


def _config(size: int, channels: int) -> ml_collections.ConfigDict:
  return ml_collections.ConfigDict({
      'data': {'image_size': size, 'channels': channels},
      'model': {'nz': 100, 'ngf': 64, 'ndf': 64},
      'optim': {'lr_g': 2e-4, 'lr_d': 2e-4, 'b1': 0.5, 'b2': 0.999},
  })


def _time(update, g_state, d_state, batch, rng, repeats):
  """Median seconds per call after one warm-up (compile) call."""
  g_state, d_state = update(g_state, d_state, batch, rng)
  jax.block_until_ready((g_state, d_state))
  times = []
  for _ in range(repeats):
    start = time.perf_counter()
    g_state, d_state = update(g_state, d_state, batch, rng)
    jax.block_until_ready((g_state, d_state))
    times.append(time.perf_counter() - start)
  return float(np.median(times))


def main():
  parser = argparse.ArgumentParser(description=__doc__)
  parser.add_argument('--sizes', nargs='+', default=['28x1', '64x3'])
  parser.add_argument('--batch', type=int, default=64)
  parser.add_argument('--repeats', type=int, default=5)
  args = parser.parse_args()

  @jax.jit
  def shared_forward(g_state, d_state, batch, rng):
    g_state, d_state, _ = steps.train_step(g_state, d_state, batch, rng)
    return g_state, d_state

  @jax.jit
  def separate_forwards(g_state, d_state, batch, rng):
    d_state, _ = steps.d_step(g_state, d_state, batch, rng)
    g_state, _ = steps.g_step(g_state, d_state, rng, batch.shape[0])
    return g_state, d_state

  print(f'jax {jax.__version__}, {jax.devices()[0].device_kind}, '
        f'batch {args.batch}')
  for spec in args.sizes:
    size, channels = map(int, spec.split('x'))
    g_state, d_state = steps.create_train_states(_config(size, channels),
                                                 jax.random.key(0))
    batch = jax.random.uniform(jax.random.key(1),
                               (args.batch, size, size, channels), minval=-1)
    rng = jax.random.key(2)
    ours = _time(shared_forward, g_state, d_state, batch, rng, args.repeats)
    ref = _time(separate_forwards, g_state, d_state, batch, rng, args.repeats)
    print(f'{size}x{size}x{channels}: train_step {args.batch / ours:.1f} '
          f'img/s, d_step+g_step {args.batch / ref:.1f} img/s, ratio '
          f'{ref / ours:.2f}x')


if __name__ == '__main__':
  main()
