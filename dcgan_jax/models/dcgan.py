"""`dcgan` and `dcgan_upsample`: the PyTorch DCGAN tutorial's networks at
every size in ARCHITECTURES, and the same layout with G's transposed
convolutions replaced by upsampling and a 3x3 convolution."""

from typing import Any, Optional

import flax.linen as nn
import jax
import jax.numpy as jnp

from dcgan_jax.models import layers

# image_size -> (base resolution, number of stride-2 layers) of `dcgan` and
# `dcgan_upsample`.
ARCHITECTURES = {28: (7, 2), 32: (4, 3), 64: (4, 4), 128: (4, 5)}


def check_size(image_size: int) -> None:
  if image_size not in ARCHITECTURES:
    raise ValueError(
        f'image_size={image_size} is not supported; supported sizes: '
        f'{", ".join(map(str, sorted(ARCHITECTURES)))}.')


class Generator(nn.Module):
  """`dcgan`'s G: maps z of shape (B, nz) to float32 images (B, S, S, C) in
  [-1, 1].

  `dtype` is the computation dtype (bfloat16 for mixed precision);
  parameters are float32 either way.
  """
  image_size: int = 64
  channels: int = 3
  ngf: int = 64
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, z: jax.Array, train: bool = True,
               axis_name: Optional[str] = None) -> jax.Array:
    check_size(self.image_size)
    base, num_up = ARCHITECTURES[self.image_size]
    features = self.ngf * 2 ** (num_up - 1)
    x = z.reshape(z.shape[0], 1, 1, z.shape[-1])
    x = layers.ConvTransposeFrom1x1(features, base, self.dtype,
                                    name='ConvTranspose_0')(x)
    x = nn.relu(layers.batch_norm(train, axis_name, self.dtype)(x))
    for i in range(1, num_up):
      features //= 2
      x = layers.ConvTranspose4x4Stride2(features, self.dtype,
                                         name=f'ConvTranspose_{i}')(x)
      x = nn.relu(layers.batch_norm(train, axis_name, self.dtype)(x))
    x = layers.ConvTranspose4x4Stride2(self.channels, self.dtype,
                                       name=f'ConvTranspose_{num_up}')(x)
    return jnp.tanh(x).astype(jnp.float32)


class Discriminator(nn.Module):
  """`dcgan`'s D: maps images (B, S, S, C) to one float32 output per image,
  shape (B,), computing in `dtype` with float32 parameters. `norm` is one
  of D_NORMS (without 'batch' D has no BatchNorm state); `dropout` is the
  rate after each downsampling layer's activation."""
  image_size: int = 64
  channels: int = 3
  ndf: int = 64
  dtype: Any = jnp.float32
  norm: str = 'batch'
  dropout: float = 0.0

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = True,
               axis_name: Optional[str] = None) -> jax.Array:
    check_size(self.image_size)
    layers.check_images(x, self.image_size, self.channels)
    base, num_down = ARCHITECTURES[self.image_size]
    for i in range(num_down):
      x = layers.Conv4x4Stride2(self.ndf * 2**i, self.dtype,
                                name=f'Conv_{i}')(x)
      if i > 0:  # No normalisation on D's first layer (Radford et al.).
        x = layers.d_norm(self.norm, x, train, axis_name, self.dtype)
      x = layers.Dropout(self.dropout)(layers.leaky_relu(x), train, axis_name)
    x = nn.Conv(1, (base, base), padding='VALID', use_bias=False,
                kernel_init=layers.conv_init, dtype=self.dtype,
                name=f'Conv_{num_down}')(x)
    return x.reshape(x.shape[0]).astype(jnp.float32)


class UpsampleGenerator(nn.Module):
  """`dcgan_upsample`'s G: a dense projection of z to the base resolution
  with ngf * 2^(n - 1) channels, then per doubling BatchNorm -> upsample x2
  (`upsample`: 'nearest' or 'bilinear') -> 3x3 conv halving the channels ->
  ReLU, then a 3x3 conv to the image channels and tanh."""
  image_size: int = 64
  channels: int = 3
  ngf: int = 64
  upsample: str = 'nearest'
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, z: jax.Array, train: bool = True,
               axis_name: Optional[str] = None) -> jax.Array:
    check_size(self.image_size)
    base, num_up = ARCHITECTURES[self.image_size]
    features = self.ngf * 2 ** (num_up - 1)
    x = nn.Dense(base * base * features, kernel_init=layers.conv_init,
                 dtype=self.dtype)(z)
    x = x.reshape(z.shape[0], base, base, features)
    for _ in range(num_up):
      x = layers.batch_norm(train, axis_name, self.dtype)(x)
      batch, height, width, channels = x.shape
      x = jax.image.resize(x, (batch, 2 * height, 2 * width, channels),
                           self.upsample)
      features //= 2
      x = nn.relu(nn.Conv(features, (3, 3), padding=1,
                          kernel_init=layers.conv_init, dtype=self.dtype)(x))
    x = nn.Conv(self.channels, (3, 3), padding=1, kernel_init=layers.conv_init,
                dtype=self.dtype)(x)
    return jnp.tanh(x).astype(jnp.float32)


class UpsampleDiscriminator(nn.Module):
  """`dcgan_upsample`'s D: per halving a 4x4 stride-2 conv -> LeakyReLU(0.2)
  -> dropout -> normalisation (not after the first), then flatten -> dense
  to one output."""
  image_size: int = 64
  channels: int = 3
  ndf: int = 64
  norm: str = 'batch'
  dropout: float = 0.0
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = True,
               axis_name: Optional[str] = None) -> jax.Array:
    check_size(self.image_size)
    layers.check_images(x, self.image_size, self.channels)
    _, num_down = ARCHITECTURES[self.image_size]
    for i in range(num_down):
      x = layers.Conv4x4Stride2(self.ndf * 2**i, self.dtype, use_bias=True)(x)
      x = layers.Dropout(self.dropout)(layers.leaky_relu(x), train, axis_name)
      if i > 0:
        x = layers.d_norm(self.norm, x, train, axis_name, self.dtype)
    return layers.dense_output(x, self.dtype)
