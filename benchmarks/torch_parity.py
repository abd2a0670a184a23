"""Whether dcgan_jax's training step computes what the PyTorch tutorial's
loop computes, given the same weights, z and real images.

Builds the reference networks (benchmarks/torch_reference.py, seeded),
copies their weights into `train_states.create_train_states`' states (Conv2d
(O, I, kh, kw) -> HWIO; ConvTranspose2d (I, O, kh, kw) -> HWIO with the
taps flipped, as `lax.conv_transpose` without kernel transposition
wants), then runs --steps steps of both on the same real batch and the
same z, and prints per step D's and G's losses from each, and at the end
the largest difference of every weight and BatchNorm running statistic
relative to that tensor's largest magnitude. Float rounding differs
between the two, and Adam turns a near-zero gradient's rounding into a
full-size update, so losses drift apart by about 1e-3 relative over 5
steps, and the weights by about 1e-2 (more for biases, which start at
0). D's running statistics differ more: PyTorch also updates them in G's
pass through D. Neither loop ever uses them (D always runs in training
mode).

  python benchmarks/torch_parity.py [--size 28] [--channels 1] [--steps 5]

Needs torch (`pip install -e '.[bench]'`).
"""

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# pylint: disable=g-import-not-at-top,wrong-import-position
import jax
import jax.numpy as jnp
import numpy as np
import torch

from benchmarks import torch_reference
from configs import default
from dcgan_jax.gan import noise
from dcgan_jax.gan import steps
from dcgan_jax.gan import train_states
from dcgan_jax import models
# pylint: enable=g-import-not-at-top,wrong-import-position


def _conv(weight: torch.Tensor) -> np.ndarray:
  return weight.detach().numpy().transpose(2, 3, 1, 0)


def _conv_transpose(weight: torch.Tensor) -> np.ndarray:
  return np.flip(weight.detach().numpy().transpose(2, 3, 0, 1), (0, 1))


def _torch_tensors(reference: torch_reference.ReferenceStep):
  """(network, layer, field, value in dcgan_jax's layout) for every weight
  and BatchNorm running statistic of the reference networks."""
  for net_name, net in (('G', reference.netG), ('D', reference.netD)):
    convs = [m for m in net if isinstance(m, (torch.nn.Conv2d,
                                              torch.nn.ConvTranspose2d))]
    for i, m in enumerate(convs):
      if isinstance(m, torch.nn.ConvTranspose2d):
        yield net_name, f'ConvTranspose_{i}', 'kernel', _conv_transpose(
            m.weight)
      else:
        yield net_name, f'Conv_{i}', 'kernel', _conv(m.weight)
    norms = [m for m in net if isinstance(m, torch.nn.BatchNorm2d)]
    for i, m in enumerate(norms):
      for field, value in (('scale', m.weight), ('bias', m.bias),
                           ('mean', m.running_mean),
                           # Unbiased in PyTorch, biased in flax.
                           ('var', m.running_var)):
        yield net_name, f'BatchNorm_{i}', field, value.detach().numpy()


def _ours(state, layer: str, field: str) -> np.ndarray:
  tree = state.batch_stats if field in ('mean', 'var') else state.params
  return np.asarray(tree[layer][field])


def _with_torch_weights(state, net_name: str, reference):
  params = jax.tree.map(np.asarray, state.params)
  for net, layer, field, value in _torch_tensors(reference):
    if net == net_name and field in ('kernel', 'scale', 'bias'):
      params[layer][field] = value.copy()
  return state.replace(params=params, opt_state=state.tx.init(params))


def main():
  parser = argparse.ArgumentParser(
      description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument('--size', type=int, default=28,
                      choices=sorted(models.ARCHITECTURES))
  parser.add_argument('--channels', type=int, default=1)
  parser.add_argument('--batch', type=int, default=64)
  parser.add_argument('--steps', type=int, default=5)
  args = parser.parse_args()

  torch.manual_seed(0)
  config = default.get_config()
  config.data.image_size, config.data.channels = args.size, args.channels
  config.batch_size = args.batch
  reference = torch_reference.ReferenceStep(
      models.ARCHITECTURES[args.size], args.channels, args.batch)
  g_state, d_state = train_states.create_train_states(config, jax.random.key(0))
  g_state = _with_torch_weights(g_state, 'G', reference)
  d_state = _with_torch_weights(d_state, 'D', reference)

  rng = np.random.default_rng(0)
  real = rng.uniform(-1, 1, (args.batch, args.size, args.size, args.channels)
                     ).astype(np.float32)
  real_nchw = torch.from_numpy(real).permute(0, 3, 1, 2).contiguous()
  recipe = train_states.Recipe.from_config(config)
  draw, sample_z = torch.randn, noise.sample_z
  print('step | D loss: ours, torch | G loss: ours, torch')
  for i in range(args.steps):
    z = rng.standard_normal((args.batch, config.model.nz)).astype(np.float32)
    noise.sample_z = lambda *_, z=z, **__: jnp.asarray(z)
    torch.randn = lambda *_, z=z, **__: torch.from_numpy(z)[:, :, None, None]
    try:
      # Not jitted: a trace would keep the first step's z.
      g_state, d_state, metrics = steps.train_step(
          g_state, d_state, jnp.asarray(real), jax.random.key(1),
          recipe=recipe)
      d_loss, g_loss = reference(real_nchw)
    finally:
      torch.randn, noise.sample_z = draw, sample_z
    print(f'{i} | {float(metrics["d_loss"]):.6f}, {float(d_loss):.6f} | '
          f'{float(metrics["g_loss"]):.6f}, {float(g_loss):.6f}')

  print('\ntensor | max |ours - torch| / max |torch|')
  for net, layer, field, theirs in _torch_tensors(reference):
    state = g_state if net == 'G' else d_state
    difference = np.abs(_ours(state, layer, field) - theirs).max()
    print(f'{net} {layer} {field} | '
          f'{difference / np.abs(theirs).max():.1e}')


if __name__ == '__main__':
  main()
