"""Winograd F(2x2, 2x2) convolutions equal XLA's direct ones, and the CPU
layers built on them equal flax's."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dcgan_jax.cpu import winograd

_NHWC = ('NHWC', 'HWIO', 'NHWC')


def _direct(x, kernel):
  return jax.lax.conv_general_dilated(x, kernel, (1, 1), 'VALID',
                                      dimension_numbers=_NHWC)


def _relative_error(got, want):
  got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
  return np.abs(got - want).max() / np.abs(want).max()


@pytest.mark.parametrize('shape,features', [
    ((2, 9, 9, 16), 8),   # Even outputs: whole 2x2 tiles.
    ((3, 8, 6, 5), 7),    # Odd outputs: a padded last tile.
    ((1, 2, 2, 3), 4),    # A single output pixel.
])
def test_convolution_and_gradients_equal_the_direct_convolution(shape,
                                                                features):
  """Output, input gradient and kernel gradient to 1e-5 relative."""
  keys = jax.random.split(jax.random.key(0), 3)
  x = jax.random.normal(keys[0], shape)
  kernel = jax.random.normal(keys[1], (2, 2, shape[-1], features))
  want, vjp = jax.vjp(_direct, x, kernel)
  out_grad = jax.random.normal(keys[2], want.shape)
  want_x, want_kernel = vjp(out_grad)
  for got, expected in [
      (jax.jit(winograd.conv2x2)(x, kernel), want),
      (jax.jit(winograd.conv2x2_input_grad)(out_grad, kernel), want_x),
      (jax.jit(winograd.conv2x2_kernel_grad)(x, out_grad), want_kernel)]:
    assert got.shape == expected.shape
    assert _relative_error(got, expected) < 1e-5


def test_bfloat16_is_within_bfloat16_rounding():
  """In bfloat16 each result is within a few bf16 ulps (2^-8 relative) of
  the float32 direct convolution of the same bf16 values, like XLA's own
  bf16 convolution."""
  keys = jax.random.split(jax.random.key(1), 3)
  x = jax.random.normal(keys[0], (2, 9, 9, 64)).astype(jnp.bfloat16)
  kernel = jax.random.normal(keys[1], (2, 2, 64, 32)).astype(jnp.bfloat16)
  out_grad = jax.random.normal(keys[2], (2, 8, 8, 32)).astype(jnp.bfloat16)
  want, vjp = jax.vjp(_direct, x.astype(jnp.float32),
                      kernel.astype(jnp.float32))
  want_x, want_kernel = vjp(out_grad.astype(jnp.float32))
  xla_bf16 = _direct(x, kernel)
  for got, expected in [
      (winograd.conv2x2(x, kernel), want),
      (winograd.conv2x2_input_grad(out_grad, kernel), want_x),
      (winograd.conv2x2_kernel_grad(x, out_grad), want_kernel)]:
    assert got.dtype == jnp.bfloat16
    assert _relative_error(got, expected) < 4 * 2.0**-8
  assert _relative_error(xla_bf16, want) < 4 * 2.0**-8
