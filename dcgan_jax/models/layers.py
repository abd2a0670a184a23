"""Layers the networks share: initialisers, BatchNorm with the reference's
settings, D's normalisations, spectral normalisation of a network's
weights, batch-position dropout and the DCGAN convolutions (their ops in
`dcgan_jax.cpu.convolutions`)."""

from typing import Any, Callable, Optional

import flax.linen as nn
import jax
import jax.numpy as jnp

from dcgan_jax import choices
from dcgan_jax.cpu import convolutions

conv_init = nn.initializers.normal(stddev=0.02)


def bn_scale_init(key: jax.Array, shape, dtype=jnp.float32) -> jax.Array:
  """BatchNorm scale ~ N(1, 0.02), as in the DCGAN paper's reference code."""
  return 1.0 + 0.02 * jax.random.normal(key, shape, dtype)


def batch_norm(train: bool, axis_name: Optional[str], dtype: Any,
               momentum: float = 0.9, epsilon: float = 1e-5,
               scale_init: Callable[..., jax.Array] = bn_scale_init
               ) -> nn.BatchNorm:
  # The defaults: momentum 0.9 / epsilon 1e-5 are PyTorch's BatchNorm
  # defaults (its momentum=0.1 weighs the new batch). Under pmap the batch
  # statistics are those of the global batch, so training does not depend
  # on the device count.
  return nn.BatchNorm(
      use_running_average=not train,
      momentum=momentum,
      epsilon=epsilon,
      scale_init=scale_init,
      dtype=dtype,  # Statistics are still reduced in float32.
      axis_name=axis_name if train else None)


def is_batch_norm_statistic(path: tuple[Any, ...]) -> bool:
  """Whether the 'batch_stats' leaf at `path` is a BatchNorm statistic
  (flax's BatchNorm names them mean and var), not other state kept there
  such as spectral normalisation's."""
  return getattr(path[-1], 'key', None) in ('mean', 'var')


def has_batch_norm(batch_stats: Any) -> bool:
  """Whether a network's 'batch_stats' hold BatchNorm statistics."""
  paths = jax.tree_util.tree_flatten_with_path(batch_stats or {})[0]
  return any(is_batch_norm_statistic(path) for path, _ in paths)


D_NORMS = ('batch', 'layer', 'none', 'spectral')


class SpectrallyNormalized(nn.Module):
  """`network` with every weight matrix (each kernel of two or more axes,
  reshaped to (inputs, outputs)) divided by its largest singular value
  (Miyato et al. 2018): flax's nn.SpectralNorm around the whole network, so
  any network, whatever its layers (and the CPU forms of its convolutions,
  which receive the normalised kernel), is normalised the same way.

  The singular value comes from one power iteration per training pass,
  from the vector kept in 'batch_stats' (next to any BatchNorm statistics;
  it depends only on the weights, so every device computes the same one);
  outside training the kept vector is used without being updated.
  """
  network: nn.Module

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = True,
               axis_name: Optional[str] = None) -> jax.Array:
    return nn.SpectralNorm(self.network)(x, train=train, axis_name=axis_name,
                                         update_stats=train)


def d_norm(kind: str, x: jax.Array, train: bool, axis_name: Optional[str],
           dtype: Any) -> jax.Array:
  """D's normalisation of x, a hidden layer's output ('spectral' normalises
  the weights instead: `SpectrallyNormalized`)."""
  check_d_norm(kind)
  if kind == 'batch':
    return batch_norm(train, axis_name, dtype)(x)
  if kind == 'layer':
    # Each image over all its features, with a scale and bias per channel
    # (the WGAN-GP critic's "layer norm"): images never interact, as a
    # gradient penalty needs.
    return nn.LayerNorm(epsilon=1e-5, reduction_axes=tuple(range(1, x.ndim)),
                        feature_axes=-1, dtype=dtype)(x)
  return x


def check_d_norm(kind: str) -> str:
  """Returns kind if it is in D_NORMS; else raises ValueError naming them."""
  return choices.check('config.model.d_norm', kind, D_NORMS)


class Dropout(nn.Module):
  """Dropout whose mask for an image depends on the image's position in
  the global batch, not on the device that holds it.

  Under pmap, image i of device d is image d * B + i of the global batch;
  its mask is drawn from the 'dropout' key folded with that index, so one
  device and several compute the same masks.
  """
  rate: float

  @nn.compact
  def __call__(self, x: jax.Array, train: bool,
               axis_name: Optional[str] = None) -> jax.Array:
    if not train or self.rate == 0.0:
      return x
    key = self.make_rng('dropout')
    rows = x.shape[0]
    first = 0 if axis_name is None else jax.lax.axis_index(axis_name) * rows
    keep = jax.vmap(lambda i: jax.random.bernoulli(
        jax.random.fold_in(key, i), 1.0 - self.rate, x.shape[1:]))(
            first + jnp.arange(rows))
    return jnp.where(keep, x / (1.0 - self.rate), 0).astype(x.dtype)


class Conv4x4Stride2(nn.Module):
  """D's downsampling layer: `conv4x4_stride2` with a float32 kernel (and
  a bias with use_bias)."""
  features: int
  dtype: Any = jnp.float32
  use_bias: bool = False

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    kernel = self.param('kernel', conv_init,
                        (4, 4, x.shape[-1], self.features), jnp.float32)
    y = convolutions.conv4x4_stride2(x.astype(self.dtype),
                                     kernel.astype(self.dtype))
    if self.use_bias:
      y = y + self.param('bias', nn.initializers.zeros, (self.features,),
                         jnp.float32).astype(self.dtype)
    return y


class ConvTranspose4x4Stride2(nn.Module):
  """G's upsampling layer: `conv_transpose4x4_stride2` with a float32
  kernel."""
  features: int
  dtype: Any = jnp.float32  # Computation; the kernel is kept in float32.

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    kernel = self.param('kernel', conv_init,
                        (4, 4, x.shape[-1], self.features), jnp.float32)
    return convolutions.conv_transpose4x4_stride2(x.astype(self.dtype),
                                     kernel.astype(self.dtype))


class ConvTransposeFrom1x1(nn.Module):
  """G's first layer: `nn.ConvTranspose(features, (size, size),
  padding='VALID', use_bias=False)` of a 1x1 input, with the same kernel;
  a matmul on CPU, XLA's transposed convolution elsewhere."""
  features: int
  size: int
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    kernel = self.param('kernel', conv_init,
                        (self.size, self.size, x.shape[-1], self.features),
                        jnp.float32)
    return convolutions.conv_transpose_from_1x1(x.astype(self.dtype),
                                                kernel.astype(self.dtype))


def check_images(x: jax.Array, image_size: int, channels: int) -> None:
  expected = (image_size, image_size, channels)
  if x.shape[1:] != expected:
    raise ValueError(
        f'Discriminator expects images of shape (batch, {expected[0]}, '
        f'{expected[1]}, {expected[2]}), got {x.shape}.')


def dense_output(x: jax.Array, dtype: Any,
                 kernel_init: Callable[..., jax.Array] = conv_init
                 ) -> jax.Array:
  """D's last layer: x flattened per image, a dense layer to one output,
  shape (B,) in float32 (the contract's)."""
  x = nn.Dense(1, kernel_init=kernel_init, dtype=dtype)(
      x.reshape(x.shape[0], -1))
  return x.reshape(x.shape[0]).astype(jnp.float32)


def leaky_relu(x: jax.Array) -> jax.Array:
  return nn.leaky_relu(x, negative_slope=0.2)
