"""`sngan_cnn`: the "standard CNN" of Miyato et al. 2018 (spectral
normalisation's paper, table 3), for images whose side is a multiple of 8
(CIFAR-10's 32, STL-10's 48).

G: z -> dense to (S/8)x(S/8)x8ngf -> BatchNorm, ReLU -> three 4x4 stride-2
transposed convs halving the channels, each with BatchNorm and ReLU -> 3x3
conv to the image channels -> tanh. D: 3x3 conv ndf -> 4x4 stride-2 conv
ndf -> 3x3 conv 2ndf -> 4x4 stride-2 2ndf -> 3x3 4ndf -> 4x4 stride-2 4ndf
-> 3x3 8ndf, each followed by LeakyReLU(0.1) -> dense to one output. The
paper normalises every D weight spectrally (`model.d_norm='spectral'`, as
`configs/sngan_cifar10.py` sets); weights start N(0, 0.02), as in its code.
"""

from typing import Any, Optional

import flax.linen as nn
import jax
import jax.numpy as jnp

from dcgan_jax.models import layers


def check_size(image_size: int) -> None:
  if image_size < 8 or image_size % 8:
    raise ValueError(f'image_size={image_size} is not supported; sngan_cnn '
                     'needs a multiple of 8 (G doubles three times).')


def _leaky_relu(x: jax.Array) -> jax.Array:
  return nn.leaky_relu(x, negative_slope=0.1)


class Generator(nn.Module):
  """`sngan_cnn`'s G: z (B, nz) -> float32 images (B, S, S, C) in [-1, 1]."""
  image_size: int = 32
  channels: int = 3
  ngf: int = 64
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, z: jax.Array, train: bool = True,
               axis_name: Optional[str] = None) -> jax.Array:
    check_size(self.image_size)
    base, features = self.image_size // 8, 8 * self.ngf
    x = nn.Dense(base * base * features, kernel_init=layers.conv_init,
                 dtype=self.dtype)(z)
    x = x.reshape(z.shape[0], base, base, features)
    x = nn.relu(layers.batch_norm(train, axis_name, self.dtype)(x))
    for _ in range(3):
      features //= 2
      x = layers.ConvTranspose4x4Stride2(features, self.dtype)(x)
      x = nn.relu(layers.batch_norm(train, axis_name, self.dtype)(x))
    x = nn.Conv(self.channels, (3, 3), padding=1,
                kernel_init=layers.conv_init, dtype=self.dtype)(x)
    return jnp.tanh(x).astype(jnp.float32)


class Discriminator(nn.Module):
  """`sngan_cnn`'s D: images (B, S, S, C) -> one float32 output per image.
  `norm` (D_NORMS) after every conv but the first, `dropout` after every
  activation; the standard CNN has neither."""
  image_size: int = 32
  channels: int = 3
  ndf: int = 64
  norm: str = 'none'
  dropout: float = 0.0
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = True,
               axis_name: Optional[str] = None) -> jax.Array:
    check_size(self.image_size)
    layers.check_images(x, self.image_size, self.channels)
    widths = (1, 1, 2, 2, 4, 4, 8)
    for i, width in enumerate(widths):
      if i % 2:
        x = layers.Conv4x4Stride2(width * self.ndf, self.dtype,
                                  use_bias=True)(x)
      else:
        x = nn.Conv(width * self.ndf, (3, 3), padding=1,
                    kernel_init=layers.conv_init, dtype=self.dtype)(x)
      if i > 0:
        x = layers.d_norm(self.norm, x, train, axis_name, self.dtype)
      x = layers.Dropout(self.dropout)(_leaky_relu(x), train, axis_name)
    return layers.dense_output(x, self.dtype)
