"""`keras_dcgan`: the Keras DCGAN on Fashion-MNIST."""

import functools
from typing import Any, Optional

import flax.linen as nn
import jax
import jax.numpy as jnp

from dcgan_jax.models import layers


def check_size(image_size: int) -> None:
  if image_size < 4 or image_size % 4:
    raise ValueError(f'image_size={image_size} is not supported; '
                     'keras_dcgan needs a multiple of 4 (G doubles twice).')


# Keras's defaults: Glorot-uniform kernels, zero biases, BatchNorm momentum
# 0.99 and epsilon 1e-3 with scale 1.
_keras_init = nn.initializers.glorot_uniform()


class KerasGenerator(nn.Module):
  """`keras_dcgan`'s G: Dense(base * base * 2 ngf) -> reshape -> BatchNorm
  -> ConvTranspose(ngf, 5x5, stride 2, same, SELU) -> BatchNorm ->
  ConvTranspose(channels, 5x5, stride 2, same) -> tanh; base = size / 4."""
  image_size: int = 28
  channels: int = 1
  ngf: int = 64
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, z: jax.Array, train: bool = True,
               axis_name: Optional[str] = None) -> jax.Array:
    check_size(self.image_size)
    base = self.image_size // 4
    batch_norm = functools.partial(
        layers.batch_norm, train, axis_name, self.dtype, momentum=0.99,
        epsilon=1e-3, scale_init=nn.initializers.ones)
    x = nn.Dense(base * base * 2 * self.ngf, kernel_init=_keras_init,
                 dtype=self.dtype)(z)
    x = batch_norm()(x.reshape(z.shape[0], base, base, 2 * self.ngf))
    x = nn.selu(nn.ConvTranspose(self.ngf, (5, 5), (2, 2), padding='SAME',
                                 kernel_init=_keras_init, dtype=self.dtype)(x))
    x = nn.ConvTranspose(self.channels, (5, 5), (2, 2), padding='SAME',
                         kernel_init=_keras_init,
                         dtype=self.dtype)(batch_norm()(x))
    return jnp.tanh(x).astype(jnp.float32)


KERAS_D_DROPOUT = (0.3, 0.4)


class KerasDiscriminator(nn.Module):
  """`keras_dcgan`'s D: Conv(ndf, 5x5, stride 2, same) -> LeakyReLU(0.2) ->
  layers.Dropout(0.3) -> Conv(2 ndf, 5x5, stride 2, same) -> [norm] ->
  LeakyReLU(0.2) -> layers.Dropout(0.4) -> flatten -> Dense(1)."""
  image_size: int = 28
  channels: int = 1
  ndf: int = 64
  norm: str = 'none'
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = True,
               axis_name: Optional[str] = None) -> jax.Array:
    check_size(self.image_size)
    layers.check_images(x, self.image_size, self.channels)
    for i, rate in enumerate(KERAS_D_DROPOUT):
      x = nn.Conv(self.ndf * 2**i, (5, 5), (2, 2), padding='SAME',
                  kernel_init=_keras_init, dtype=self.dtype)(x)
      if i > 0:
        x = layers.d_norm(self.norm, x, train, axis_name, self.dtype)
      x = layers.Dropout(rate)(layers.leaky_relu(x), train, axis_name)
    return layers.dense_output(x, self.dtype, _keras_init)
