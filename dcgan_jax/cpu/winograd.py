"""Winograd's minimal filtering F(2x2, 2x2): the 2x2 stride-1 'VALID'
convolution (NHWC / HWIO) with 9 multiplies per 2x2 output tile instead of
16, and its two gradients in the same form.

In one dimension, outputs y0 = d0 g0 + d1 g1 and y1 = d1 g0 + d2 g1 of the
input tile (d0, d1, d2) come from three products m = (d0 - d1) g0,
d1 (g0 + g1), (d2 - d1) g1 as y0 = m0 + m1, y1 = m1 + m2. Nested over rows
and columns, a 3x3 input tile and the 2x2 kernel become 9 values each; per
value the products over channels are one matmul, so a convolution is 9
matmuls between additions. The transforms only add and subtract: results
equal the direct convolution's to float32 rounding (tests/winograd_test.py,
tests/models_test.py).

The gradients are the transposes of these linear maps: the input gradient
multiplies the output gradient's transform by the kernel's transposed, and
the kernel gradient contracts the input's transform with the output
gradient's over all tiles: again 9 matmuls each.
"""

import jax
import jax.numpy as jnp


def _input_rows(d: jax.Array, axis: int) -> tuple[jax.Array, ...]:
  """B^T along axis (length 2n + 1): (d0 - d1, d1, d2 - d1) per tile."""
  n = (d.shape[axis] - 1) // 2

  def rows(start):
    return jax.lax.slice_in_dim(d, start, start + 2 * n - 1, 2, axis)

  d0, d1, d2 = rows(0), rows(1), rows(2)
  return d0 - d1, d1, d2 - d1


def _interleave(even: jax.Array, odd: jax.Array, axis: int) -> jax.Array:
  """Rows even[0], odd[0], even[1], ... along axis (len(odd) == len(even))."""
  stacked = jnp.stack([even, odd], axis=axis + 1)
  shape = list(even.shape)
  shape[axis] *= 2
  return stacked.reshape(shape)


def _input_rows_t(u0: jax.Array, u1: jax.Array, u2: jax.Array,
                  axis: int) -> jax.Array:
  """The transpose of `_input_rows`: tiles overlap-added, 2n + 1 rows."""
  def pad(u, before, after):
    widths = [(0, 0)] * u.ndim
    widths[axis] = (before, after)
    return jnp.pad(u, widths)

  even = pad(u0, 0, 1) + pad(u2, 1, 0)  # Rows 2i: n + 1 of them.
  odd = pad(u1 - u0 - u2, 0, 1)  # Rows 2i + 1, and one past the end.
  both = _interleave(even, odd, axis)
  return jax.lax.slice_in_dim(both, 0, both.shape[axis] - 1, axis=axis)


# The 9 transformed values travel as a list of 9 arrays, not one stacked
# array: XLA:CPU builds a stack as a separate copy after computing its
# parts, and nine matmuls on the parts ran faster than one batched matmul
# on the stack (BENCHMARKS.md).


def _input_transform(x: jax.Array) -> list[jax.Array]:
  """(B, 2n + 1, 2m + 1, C) -> 9 x (B n m, C)."""
  return [t.reshape(-1, x.shape[-1]) for rows in _input_rows(x, 1)
          for t in _input_rows(rows, 2)]


def _input_transform_t(u: list[jax.Array],
                       shape: tuple[int, ...]) -> jax.Array:
  """9 x (B n m, C) -> (B, 2n + 1, 2m + 1, C), the transpose."""
  batch, height, width, channels = shape
  u = [t.reshape(batch, height // 2, width // 2, channels) for t in u]
  return _input_rows_t(*(_input_rows_t(*u[3 * i:3 * i + 3], axis=2)
                         for i in range(3)), axis=1)


def _kernel_transform(kernel: jax.Array) -> list[jax.Array]:
  """(2, 2, C, Co) -> 9 x (C, Co): G along both kernel axes."""
  rows = (kernel[0], kernel[0] + kernel[1], kernel[1])
  return [t for row in rows for t in (row[0], row[0] + row[1], row[1])]


def _kernel_transform_t(v: list[jax.Array]) -> jax.Array:
  """9 x (C, Co) -> (2, 2, C, Co), the transpose."""
  rows = ((v[0] + v[3], v[1] + v[4], v[2] + v[5]),
          (v[3] + v[6], v[4] + v[7], v[5] + v[8]))
  return jnp.stack([jnp.stack([row[0] + row[1], row[1] + row[2]])
                    for row in rows])


def _output_transform(m: list[jax.Array], batch: int, n: int,
                      width: int) -> jax.Array:
  """9 x (B n w, Co) -> (B, 2n, 2w, Co): A^T along rows and columns."""
  m = [t.reshape(batch, n, width, -1) for t in m]
  rows = ((m[0] + m[3], m[1] + m[4], m[2] + m[5]),
          (m[3] + m[6], m[4] + m[7], m[5] + m[8]))
  y = jnp.stack([jnp.stack([row[0] + row[1], row[1] + row[2]], axis=3)
                 for row in rows], axis=2)  # (B, n, 2, w, 2, Co)
  return y.reshape(batch, 2 * n, 2 * width, y.shape[-1])


def _output_transform_t(dy: jax.Array) -> list[jax.Array]:
  """(B, 2n, 2w, Co) -> 9 x (B n w, Co), the transpose."""
  batch, height, width, channels = dy.shape
  dy = dy.reshape(batch, height // 2, 2, width // 2, 2, channels)
  rows = (dy[:, :, 0], dy[:, :, 0] + dy[:, :, 1], dy[:, :, 1])
  return [t.reshape(-1, channels) for row in rows for t in (
      row[..., 0, :], row[..., 0, :] + row[..., 1, :], row[..., 1, :])]


def _pad_to(x: jax.Array, height: int, width: int) -> jax.Array:
  return jnp.pad(x, ((0, 0), (0, height - x.shape[1]),
                     (0, width - x.shape[2]), (0, 0)))


def _tiled(size: int) -> int:
  """Output rows covered by whole 2-row tiles."""
  return size + size % 2


def conv2x2(x: jax.Array, kernel: jax.Array) -> jax.Array:
  """The 2x2 stride-1 VALID convolution of x (B, H + 1, W + 1, C) with a
  (2, 2, C, Co) kernel: (B, H, W, Co)."""
  batch, height, width = x.shape[0], x.shape[1] - 1, x.shape[2] - 1
  x = _pad_to(x, _tiled(height) + 1, _tiled(width) + 1)
  m = [u @ k for u, k in zip(_input_transform(x), _kernel_transform(kernel))]
  y = _output_transform(m, batch, _tiled(height) // 2, _tiled(width) // 2)
  return y[:, :height, :width]


def conv2x2_input_grad(out_grad: jax.Array, kernel: jax.Array) -> jax.Array:
  """The gradient of `conv2x2` with respect to x for the output gradient
  (B, H, W, Co): (B, H + 1, W + 1, C)."""
  batch, height, width, _ = out_grad.shape
  out_grad = _pad_to(out_grad, _tiled(height), _tiled(width))
  u = [m @ k.T for m, k in zip(_output_transform_t(out_grad),
                               _kernel_transform(kernel))]
  x_grad = _input_transform_t(u, (batch, _tiled(height) + 1,
                                  _tiled(width) + 1, kernel.shape[2]))
  return x_grad[:, :height + 1, :width + 1]


def conv2x2_kernel_grad(x: jax.Array, out_grad: jax.Array) -> jax.Array:
  """The gradient of `conv2x2` with respect to the kernel at input x for
  the output gradient: (2, 2, C, Co)."""
  height, width = out_grad.shape[1:3]
  x = _pad_to(x, _tiled(height) + 1, _tiled(width) + 1)
  out_grad = _pad_to(out_grad, _tiled(height), _tiled(width))
  v = [u.T @ m for u, m in zip(_input_transform(x),
                               _output_transform_t(out_grad))]
  return _kernel_transform_t(v)
