"""Deterministic stand-ins for pytorch-fid's Inception weights and inputs,
shared by the parity test and the script that makes its golden file."""

import numpy as np

from dcgan_jax.evaluation import inception


def random_state_dict(seed: int = 0) -> dict[str, np.ndarray]:
  """A state dict in pytorch-fid's names and layouts, scaled so that
  activations stay O(1) through the network."""
  rng = np.random.default_rng(seed)
  state_dict = {}
  for (collection, name), shape in sorted(inception.variable_shapes().items()):
    key = inception.torch_key(collection, name)
    shape = shape[::-1][:2] + shape[:2] if len(shape) == 4 else shape
    if key.endswith('conv.weight'):
      fan_in = np.prod(shape[1:])
      value = rng.normal(0, np.sqrt(2 / fan_in), shape)
    elif key.endswith(('bn.weight', 'bn.running_var')):
      value = rng.uniform(0.5, 1.5, shape)
    else:  # bn.bias, bn.running_mean
      value = rng.normal(0, 0.1, shape)
    state_dict[key] = value.astype(np.float32)
  return state_dict


def inputs() -> dict[str, np.ndarray]:
  """Images of three kinds: up- and downscaled, float and uint8, RGB and
  gray."""
  rng = np.random.default_rng(1)
  return {
      'rgb32': rng.uniform(-1, 1, (2, 32, 32, 3)).astype(np.float32),
      'gray28_uint8': rng.integers(0, 256, (1, 28, 28, 1), dtype=np.uint8),
      'rgb331x400': rng.uniform(-1, 1, (1, 331, 400, 3)).astype(np.float32),
  }
