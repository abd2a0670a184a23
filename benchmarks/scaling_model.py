"""On paper: when would the gradient all-reduce dominate a data-parallel
DCGAN step? Counts, from this code, what one pmapped `train_step` reduces
over devices and how many FLOPs it computes, then applies published
bandwidth and compute figures.

  python benchmarks/scaling_model.py [--size 64x3] [--utilization 0.4]

- All-reduces: every `all_reduce` in the pmapped step as lowered (before
  XLA combines any), with its bytes: gradients of G and D, BatchNorm batch
  statistics (in each forward pass and its gradient), running statistics
  and metrics.
- FLOPs: XLA's cost analysis of the jitted step on one CPU device, per
  image (linear in the batch).
- Ring all-reduce of S bytes over n participants: 2 (n - 1) / n * S / W,
  W the bandwidth each participant sends (and receives) at. Compute:
  FLOPs / (n * peak * utilization). The all-reduce dominates beyond
  n* = 1 + FLOPs * W / (2 * S * peak * utilization), no overlap assumed
  (XLA can overlap part of it with the backward pass, so n* is a lower
  bound).
"""

import argparse
import collections
import functools
import os
import re
import sys

os.environ.setdefault('XLA_FLAGS', '--xla_force_host_platform_device_count=2')
import jax  # pylint: disable=g-import-not-at-top,wrong-import-position
import jax.numpy as jnp  # pylint: disable=g-import-not-at-top,wrong-import-position
import ml_collections  # pylint: disable=g-import-not-at-top,wrong-import-position

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from dcgan_jax.gan import steps  # pylint: disable=g-import-not-at-top,wrong-import-position
from dcgan_jax.gan import train_states  # pylint: disable=g-import-not-at-top,wrong-import-position

# (name, participants in the ring, W bytes/s each way, peak FLOP/s of one
# participant, source of the figures).
SYSTEMS = (
    ('(a) 8 x H100 SXM, NVLink 4', 'GPUs', 450e9, 989e12,
     'NVIDIA H100 datasheet: NVLink 900 GB/s per GPU (both directions), '
     '989 TFLOP/s dense bf16'),
    ('(b) hosts of 8 x H100, 100 Gb/s Ethernet', 'hosts', 12.5e9,
     8 * 989e12,
     '100 Gb/s = 12.5 GB/s per host each way; gradients first reduced over '
     'NVLink inside a host, so the Ethernet ring moves S per host'),
    ('(c) TPU v4 pod slice', 'chips', 1.1e15 / 4096, 275e12,
     'Cloud TPU v4 docs: 275 TFLOP/s bf16 per chip, all-reduce bandwidth '
     '1.1 PB/s per 4096-chip pod = 269 GB/s per chip'),
)
BATCHES = (128, 256, 512, 1024, 2048, 4096)
TYPE_BYTES = {'f32': 4, 'bf16': 2, 'f16': 2, 'i32': 4, 'ui32': 4}


def _config(size, channels):
  return ml_collections.ConfigDict({
      'data': {'image_size': size, 'channels': channels},
      'model': {'nz': 100, 'ngf': 64, 'ndf': 64},
      'optim': {'lr_g': 2e-4, 'lr_d': 2e-4, 'b1': 0.5, 'b2': 0.999}})


def all_reduces(size, channels):
  """(all-reduce ops, arrays they reduce, bytes) of one step, per device."""
  g_state, d_state = train_states.create_train_states(_config(size, channels),
                                                      jax.random.key(0))
  n = jax.local_device_count()
  states = jax.tree.map(lambda x: jnp.stack([x] * n), (g_state, d_state))
  batch = jnp.zeros((n, 2, size, size, channels))
  step = jax.pmap(functools.partial(steps.train_step, axis_name='batch'),
                  axis_name='batch', in_axes=(0, 0, 0, None))
  text = step.lower(*states, batch, jax.random.key(1)).as_text()
  ops, count, total, inside = 0, 0, 0, False
  for line in text.splitlines():
    if '"stablehlo.all_reduce"' in line:
      inside = True
      ops += 1
    elif inside and line.strip().startswith('}) : ('):
      # The all-reduce's closing line: '}) : (operand types) -> ...'.
      inside = False
      operands = line.split(' : (', 1)[1].split(') ->')[0]
      for dims, dtype in re.findall(r'tensor<((?:\d+x)*)([a-z]+\d+)>',
                                    operands):
        elements = 1
        for d in filter(None, dims.split('x')):
          elements *= int(d)
        total += elements * TYPE_BYTES[dtype]
        count += 1
  return ops, count, total


def flops_per_image(size, channels, batch=16):
  g_state, d_state = train_states.create_train_states(_config(size, channels),
                                                      jax.random.key(0))
  compiled = jax.jit(steps.train_step).lower(
      g_state, d_state, jnp.zeros((batch, size, size, channels)),
      jax.random.key(1)).compile()
  analysis = compiled.cost_analysis()
  if isinstance(analysis, list):
    analysis = analysis[0]
  return analysis['flops'] / batch


def parameter_bytes(size, channels):
  g_state, d_state = train_states.create_train_states(_config(size, channels),
                                                      jax.random.key(0))
  return {name: sum(x.size * x.dtype.itemsize
                    for x in jax.tree.leaves(state.params))
          for name, state in (('G', g_state), ('D', d_state))}


def main():
  parser = argparse.ArgumentParser(description=__doc__)
  parser.add_argument('--size', default='64x3')
  parser.add_argument('--utilization', type=float, default=0.4,
                      help='Fraction of the peak the convolutions reach.')
  args = parser.parse_args()
  size, channels = map(int, args.size.split('x'))

  params = parameter_bytes(size, channels)
  ops, count, reduced = all_reduces(size, channels)
  flops = flops_per_image(size, channels)
  print(f'{size}x{size}x{channels}: G {params["G"] / 1e6:.2f} MB + D '
        f'{params["D"] / 1e6:.2f} MB of float32 gradients; one step '
        f'all-reduces {reduced / 1e6:.3f} MB ({count} arrays in {ops} '
        f'all-reduce ops as lowered; beyond the gradients, '
        f'{(reduced - sum(params.values())) / 1e3:.1f} KB of BatchNorm '
        f'statistics and metrics); {flops / 1e9:.2f} GFLOP per image per '
        'step.\n')
  rows = collections.defaultdict(list)
  for name, unit, bandwidth, peak, source in SYSTEMS:
    print(f'{name}: {source}; {args.utilization:.0%} of peak.')
    effective = peak * args.utilization
    print(f'| global batch | step GFLOP | compute ms on 1 {unit[:-1]} | '
          f'all-reduce ms (n large) | all-reduce dominates from n = |')
    print('| --- | --- | --- | --- | --- |')
    for batch in BATCHES:
      step_flops = flops * batch
      n_star = 1 + step_flops * bandwidth / (2 * reduced * effective)
      rows[name].append(n_star)
      print(f'| {batch} | {step_flops / 1e9:,.0f} | '
            f'{step_flops / effective * 1e3:.3f} | '
            f'{2 * reduced / bandwidth * 1e3:.3f} | {n_star:,.1f} {unit} |')
    print()


if __name__ == '__main__':
  main()
