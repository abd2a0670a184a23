"""`mlp`: the fully connected G and D of the Kuzushiji-MNIST MLP GAN."""

import functools
import math
from typing import Any, Optional

import flax.linen as nn
import jax
import jax.numpy as jnp

from dcgan_jax.models import layers


def _linear(features: int, x: jax.Array, dtype: Any) -> jax.Array:
  """PyTorch's nn.Linear as initialised there: weights and bias
  U(-1/sqrt(fan_in), 1/sqrt(fan_in))."""
  bound = 1.0 / math.sqrt(x.shape[-1])

  def init(key, shape, dtype=jnp.float32):
    return jax.random.uniform(key, shape, dtype, -bound, bound)

  return nn.Dense(features, kernel_init=init, bias_init=init, dtype=dtype)(x)


class MLPGenerator(nn.Module):
  """`mlp`'s G: Linear(2 ngf) -> LeakyReLU(0.2) -> BatchNorm -> Linear(4 ngf)
  -> BatchNorm -> LeakyReLU -> Linear(8 ngf) -> BatchNorm -> LeakyReLU ->
  Linear(S * S * C) -> tanh, reshaped to images (the original's layer order)."""
  image_size: int = 28
  channels: int = 1
  ngf: int = 64
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, z: jax.Array, train: bool = True,
               axis_name: Optional[str] = None) -> jax.Array:
    batch_norm = functools.partial(layers.batch_norm, train, axis_name,
                                   self.dtype, scale_init=nn.initializers.ones)
    x = batch_norm()(layers.leaky_relu(_linear(2 * self.ngf, z, self.dtype)))
    for width in (4 * self.ngf, 8 * self.ngf):
      x = layers.leaky_relu(batch_norm()(_linear(width, x, self.dtype)))
    shape = (self.image_size, self.image_size, self.channels)
    x = _linear(math.prod(shape), x, self.dtype)
    return jnp.tanh(x).reshape(z.shape[0], *shape).astype(jnp.float32)


class MLPDiscriminator(nn.Module):
  """`mlp`'s D: flatten -> Linear(8 ndf) -> LeakyReLU(0.2) -> [dropout] ->
  Linear(4 ndf) -> [norm] -> LeakyReLU -> [dropout] -> Linear(1)."""
  image_size: int = 28
  channels: int = 1
  ndf: int = 64
  norm: str = 'none'
  dropout: float = 0.0
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = True,
               axis_name: Optional[str] = None) -> jax.Array:
    layers.check_images(x, self.image_size, self.channels)
    x = x.reshape(x.shape[0], -1)
    for i, width in enumerate((8 * self.ndf, 4 * self.ndf)):
      x = _linear(width, x, self.dtype)
      if i > 0:
        x = layers.d_norm(self.norm, x, train, axis_name, self.dtype)
      x = layers.Dropout(self.dropout)(layers.leaky_relu(x), train, axis_name)
    return _linear(1, x, self.dtype).reshape(x.shape[0]).astype(jnp.float32)
