"""Where a dcgan_jax training step spends its time: achieved GFLOP/s of each
convolution (forward, input gradient, kernel gradient; each jitted alone)
against a float32 matmul measured in the same run, and how much of the step
the convolutions explain. Alone, each call maps its large temporary
buffers afresh (page faults), which a whole step's program does less: the
Winograd forms, with more temporaries, look slower alone than they are in
the step.

  python benchmarks/layer_flops.py [--size 64x3] [--batch 64] [--ghz 2.2]

FLOPs are the direct convolution's (2 x multiply-adds), also for the
Winograd forms, which multiply less: their GFLOP/s is the rate a direct
convolution would need to match them, and can exceed the matmul's.
Percentages are of the 2048^2 float32 matmul's rate. The script also
prints the CPU's theoretical peak: cores x 2 FMA units x float32 lanes (8
with AVX2, 16 with AVX-512) x 2 FLOP x the clock (--ghz; /proc/cpuinfo's
nominal MHz by default).
"""

import argparse
import os
import sys
import time

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from dcgan_jax.gan import steps  # pylint: disable=g-import-not-at-top,wrong-import-position
from dcgan_jax.gan import train_states  # pylint: disable=g-import-not-at-top,wrong-import-position
from dcgan_jax import models  # pylint: disable=g-import-not-at-top,wrong-import-position
from dcgan_jax.models import layers  # pylint: disable=g-import-not-at-top,wrong-import-position


def _median_seconds(fn, *args, repeats=10):
  jax.block_until_ready(fn(*args))
  times = []
  for _ in range(repeats):
    start = time.perf_counter()
    jax.block_until_ready(fn(*args))
    times.append(time.perf_counter() - start)
  return float(np.median(times))


def _cpuinfo() -> tuple[float, bool]:
  """(nominal GHz, whether the CPU has AVX-512)."""
  with open('/proc/cpuinfo') as f:
    text = f.read()
  mhz = [line for line in text.splitlines() if line.startswith('cpu MHz')]
  ghz = float(mhz[0].split(':')[1]) / 1000 if mhz else float('nan')
  return ghz, ' avx512f' in text


def _layers(size, channels, batch, ngf=64, ndf=64, nz=100):
  """(name, module, input shape, MACs per batch) of G's and D's convs."""
  base, num = models.ARCHITECTURES[size]
  timed = []
  features = ngf * 2 ** (num - 1)
  timed.append(('G ConvT_0', layers.ConvTransposeFrom1x1(features, base),
                (batch, 1, 1, nz), batch * base * base * features * nz))
  resolution = base
  for i in range(1, num + 1):
    out = features // 2 if i < num else channels
    timed.append((f'G ConvT_{i}', layers.ConvTranspose4x4Stride2(out),
                  (batch, resolution, resolution, features),
                  batch * (2 * resolution)**2 * 4 * features * out))
    features, resolution = out, 2 * resolution
  features_in, resolution = channels, size
  for i in range(num):
    out = ndf * 2**i
    resolution //= 2
    timed.append((f'D Conv_{i}', layers.Conv4x4Stride2(out),
                  (batch, 2 * resolution, 2 * resolution, features_in),
                  batch * resolution**2 * 16 * features_in * out))
    features_in = out
  timed.append((f'D Conv_{num}', nn.Conv(1, (base, base), padding='VALID',
                                         use_bias=False),
                (batch, base, base, features_in),
                batch * base * base * features_in))
  return timed


def uses_per_step(name: str) -> tuple[int, int, int]:
  """(forward, input grad, kernel grad) passes of a layer in one train_step.

  G runs forward once and backward once (no gradient into z); D runs
  forward three times (real and fake for its update, fake again for G's),
  kernel gradients twice, input gradients twice (not into the real batch).
  """
  if name.startswith('G'):
    return (1, 0 if name == 'G ConvT_0' else 1, 1)
  return (3, 1 if name == 'D Conv_0' else 2, 2)


def step_gflop_per_image(size: int, channels: int, width: int = 64) -> float:
  """Convolution GFLOP of one train_step, per image, with ngf = ndf =
  width."""
  return sum(sum(uses_per_step(name)) * 2 * macs
             for name, _, _, macs in _layers(size, channels, 1, width,
                                             width)) / 1e9


def main():
  parser = argparse.ArgumentParser(description=__doc__)
  parser.add_argument('--size', default='64x3')
  parser.add_argument('--batch', type=int, default=64)
  parser.add_argument('--ghz', type=float, default=None)
  args = parser.parse_args()
  size, channels = map(int, args.size.split('x'))
  cores = os.cpu_count()
  nominal_ghz, avx512 = _cpuinfo()
  ghz = args.ghz or nominal_ghz
  peak_avx2 = cores * 2 * 8 * 2 * ghz  # GFLOP/s.
  peak = 2 * peak_avx2 if avx512 else peak_avx2

  a = jax.random.normal(jax.random.key(0), (2048, 2048))
  matmul = 2 * 2048**3 / _median_seconds(jax.jit(jnp.dot), a, a) / 1e9
  print(f'jax {jax.__version__}; {cores} cores at {ghz:.2f} GHz: float32 '
        f'FMA peak {peak_avx2:.1f} GFLOP/s with AVX2'
        f'{f", {peak:.1f} with AVX-512" if avx512 else ""}; measured '
        f'2048^2 float32 matmul {matmul:.1f} GFLOP/s ({100 * matmul / peak:.0f}'
        '% of peak). Percentages below are of the matmul\'s rate.\n')
  print('| layer | GFLOP/batch | forward ms | GFLOP/s | input grad ms | '
        'GFLOP/s | kernel grad ms | GFLOP/s |')
  print('| --- | --- | --- | --- | --- | --- | --- | --- |')
  totals = {}
  for name, module, shape, macs in _layers(size, channels, args.batch):
    x = jax.random.normal(jax.random.key(1), shape)
    params = module.init(jax.random.key(2), x)
    y = module.apply(params, x)
    g = jax.random.normal(jax.random.key(3), y.shape)
    forward = jax.jit(module.apply)
    input_grad = jax.jit(
        lambda p, x, g, m=module: jax.vjp(lambda x: m.apply(p, x), x)[1](g))
    kernel_grad = jax.jit(
        lambda p, x, g, m=module: jax.vjp(lambda p: m.apply(p, x), p)[1](g))
    gflop = 2 * macs / 1e9
    t = [_median_seconds(forward, params, x),
         _median_seconds(input_grad, params, x, g),
         _median_seconds(kernel_grad, params, x, g)]
    totals[name] = (gflop, t)
    print(f'| {name} | {gflop:.2f} | ' + ' | '.join(
        f'{1000 * s:.1f} | {gflop / s:.0f} ({100 * gflop / s / matmul:.0f}%)'
        for s in t) + ' |')

  conv_seconds = conv_flops = 0.0
  for name, (gflop, (fwd, dx, dw)) in totals.items():
    counts = uses_per_step(name)
    conv_seconds += counts[0] * fwd + counts[1] * dx + counts[2] * dw
    conv_flops += sum(counts) * gflop

  config = ml_collections.ConfigDict({
      'data': {'image_size': size, 'channels': channels},
      'model': {'nz': 100, 'ngf': 64, 'ndf': 64},
      'optim': {'lr_g': 2e-4, 'lr_d': 2e-4, 'b1': 0.5, 'b2': 0.999}})
  g_state, d_state = train_states.create_train_states(config, jax.random.key(0))
  images = jax.random.uniform(jax.random.key(1),
                              (args.batch, size, size, channels), minval=-1)
  train_step = jax.jit(steps.train_step)
  step = _median_seconds(lambda: train_step(g_state, d_state, images,
                                            jax.random.key(2))[2])
  print(f'\nStep: {1000 * step:.1f} ms ({args.batch / step:.1f} img/s), '
        f'{conv_flops:.2f} GFLOP of convolutions = {conv_flops / step:.0f} '
        f'GFLOP/s ({100 * conv_flops / step / matmul:.0f}% of the matmul\'s). '
        f'The convolutions timed alone add up to {1000 * conv_seconds:.1f} ms, '
        f'{100 * conv_seconds / step:.0f}% of the step.')


if __name__ == '__main__':
  main()
