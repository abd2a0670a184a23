"""The networks' convolutions, each with the form XLA runs on GPUs and TPUs
and a CPU form with equal outputs and gradients.

`conv4x4_stride2`, `conv_transpose4x4_stride2` and
`conv_transpose_from_1x1` are what the layers call: each dispatches with
`jax.lax.platform_dependent`, so one traced function runs XLA's ordinary
op (cuDNN's kernels on GPUs) on GPU and TPU and the CPU form on CPU. The
CPU forms recast the strided and transposed convolutions as the shapes
XLA:CPU runs fast (stride-1 convolutions over 2x2 pixel blocks, Winograd,
matmuls), with custom gradients that are again such forms, so second
derivatives (gradient penalty, unrolled D updates) stay fast too.
"""

from typing import Callable

import jax
import jax.numpy as jnp

from dcgan_jax.cpu import winograd

_NHWC = ('NHWC', 'HWIO', 'NHWC')


# XLA's ordinary forms, as flax's nn.Conv / nn.ConvTranspose compute them:
# what GPUs and TPUs run (cuDNN's kernels on GPUs). On CPU the custom forms
# below replace them, with equal outputs and gradients.
def _conv4x4_stride2(x: jax.Array, kernel: jax.Array) -> jax.Array:
  return jax.lax.conv_general_dilated(x, kernel, (2, 2), ((1, 1), (1, 1)),
                                      dimension_numbers=_NHWC)


def _conv_transpose4x4_stride2(x: jax.Array, kernel: jax.Array) -> jax.Array:
  return jax.lax.conv_transpose(x, kernel, (2, 2), ((2, 2), (2, 2)),
                                dimension_numbers=_NHWC)


def _blocks(x: jax.Array) -> jax.Array:
  """The image padded by 1 as 2x2 pixel blocks: pixel (2i + p, 2j + q) of
  the padded image becomes channel (p, q) of block (i, j)."""
  batch, height, width, channels = x.shape
  padded = jnp.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
  return padded.reshape(batch, height // 2 + 1, 2, width // 2 + 1, 2,
                        channels).transpose(0, 1, 3, 2, 4, 5).reshape(
                            batch, height // 2 + 1, width // 2 + 1,
                            4 * channels)


def _unblocks(blocks: jax.Array, channels: int) -> jax.Array:
  """The transpose of `_blocks`: blocks back to pixels, padding cut."""
  batch, height, width, _ = blocks.shape
  x = blocks.reshape(batch, height, width, 2, 2, channels).transpose(
      0, 1, 3, 2, 4, 5).reshape(batch, 2 * height, 2 * width, channels)
  return x[:, 1:-1, 1:-1]


def _block_kernel(kernel: jax.Array) -> jax.Array:
  """Tap (2a + p, 2b + q) of the 4x4 kernel as tap (a, b) of block channel
  (p, q): the 2x2 kernel over `_blocks`."""
  channels = kernel.shape[2]
  return kernel.reshape(2, 2, 2, 2, channels, -1).transpose(
      0, 2, 1, 3, 4, 5).reshape(2, 2, 4 * channels, -1)


def _unblock_kernel(kernel: jax.Array, channels: int) -> jax.Array:
  """The inverse of `_block_kernel`."""
  return kernel.reshape(2, 2, 2, 2, channels, -1).transpose(
      0, 2, 1, 3, 4, 5).reshape(4, 4, channels, -1)


def _conv4x4_stride2_as_2x2(x: jax.Array, kernel: jax.Array) -> jax.Array:
  """The same convolution as a stride-1 2x2 one over `_blocks`."""
  return jax.lax.conv_general_dilated(_blocks(x), _block_kernel(kernel),
                                      (1, 1), 'VALID',
                                      dimension_numbers=_NHWC)


def _winograd_pays(out_height: int, out_width: int, in_channels: int,
                   out_channels: int) -> bool:
  """Whether a 4x4 stride-2 convolution with this output size and these
  channels runs as Winograd F(2x2, 2x2) over `_blocks` on CPU (forward
  pass and both gradients): outputs of at most 16x16 with at least 64
  channels either side, where it made the whole step faster
  (BENCHMARKS.md, `benchmarks/step_throughput.py --impls jax
  jax_no_winograd`). With 1 or 3 channels it did not make the step faster;
  larger outputs were not measured. Other shapes keep XLA's forms."""
  return out_height * out_width <= 256 and min(in_channels,
                                              out_channels) >= 64


def _uses_winograd(x_shape: tuple[int, ...], out_channels: int) -> bool:
  """`_winograd_pays` for the convolution of an input of x_shape."""
  return _winograd_pays(x_shape[1] // 2, x_shape[2] // 2, x_shape[3],
                        out_channels)


def _cpu_forward(x: jax.Array, kernel: jax.Array) -> jax.Array:
  """The 4x4 stride-2 convolution: Winograd over blocks where it pays,
  else XLA's direct convolution."""
  if _uses_winograd(x.shape, kernel.shape[3]):
    return winograd.conv2x2(_blocks(x), _block_kernel(kernel))
  return _conv4x4_stride2(x, kernel)


def _bilinear(forward: Callable[[jax.Array, jax.Array], jax.Array],
              gradients: Callable[[jax.Array, jax.Array, jax.Array],
                                  tuple[jax.Array, jax.Array]]
              ) -> Callable[[jax.Array, jax.Array], jax.Array]:
  """forward(a, b), bilinear, with gradients(a, b, cotangent) as its VJP.

  The CPU forms' gradients are again CPU forms built this way, so second
  derivatives (a gradient penalty, an unrolled D update) also run in them:
  XLA's own derivatives of these forms are the strided-gradient ones that
  XLA:CPU runs slowly.
  """
  function = jax.custom_vjp(forward)
  function.defvjp(lambda a, b: (forward(a, b), (a, b)),
                  lambda residuals, cotangent: gradients(*residuals,
                                                         cotangent))
  return function


def _cpu_kernel_grad(x: jax.Array, out_grad: jax.Array) -> jax.Array:
  """Kernel gradient of the 4x4 stride-2 convolution at input x.

  Winograd over blocks where it pays; else XLA's, summed over batch chunks
  of 4 where the output is at least 16x16 and neither side has only 1 or 2
  channels: there XLA:CPU computes chunks faster than the whole batch,
  elsewhere not (benchmarks/layer_flops.py, BENCHMARKS.md).
  """
  kernel_shape = (4, 4, x.shape[-1], out_grad.shape[-1])
  if _uses_winograd(x.shape, out_grad.shape[-1]):
    return _unblock_kernel(winograd.conv2x2_kernel_grad(_blocks(x), out_grad),
                           x.shape[-1])

  def whole(x, out_grad):
    return jax.vjp(lambda k: _conv4x4_stride2(x, k),
                   jnp.zeros(kernel_shape, x.dtype))[1](out_grad)[0]

  if (out_grad.shape[1] * out_grad.shape[2] < 256 or min(kernel_shape[2:]) < 3
      or x.shape[0] % 4 or x.shape[0] <= 4):
    return whole(x, out_grad)
  chunk = 4
  # Unrolled: inside a loop XLA:CPU runs these convolutions far slower.
  return sum(whole(x[i:i + chunk], out_grad[i:i + chunk]).astype(jnp.float32)
             for i in range(0, x.shape[0], chunk)).astype(x.dtype)


# Bilinear in (x, out_grad): its gradients are the input gradient and the
# convolution with the kernel cotangent.
_cpu_conv4x4_stride2_kernel_grad = _bilinear(
    _cpu_kernel_grad,
    lambda x, out_grad, kernel_cotangent: (
        _cpu_conv4x4_stride2_input_grad(out_grad, kernel_cotangent),
        _cpu_conv4x4_stride2(x, kernel_cotangent)))


def _cpu_input_grad(out_grad: jax.Array, kernel: jax.Array) -> jax.Array:
  """Input gradient of the 4x4 stride-2 convolution (even input sizes):
  for few input channels the transposed convolution as one matmul; else
  through the blockwise stride-1 form, Winograd where it pays, else XLA's
  gradient of the 2x2 convolution over blocks, which XLA:CPU runs faster
  than the strided convolution's transposed form
  (benchmarks/layer_flops.py)."""
  batch, height, width, _ = out_grad.shape
  x_shape = (batch, 2 * height, 2 * width, kernel.shape[2])
  if _few_channels(kernel.shape[2]):
    return _matmul_conv_transpose(out_grad, _adjoint_kernel(kernel))
  if _uses_winograd(x_shape, kernel.shape[3]):
    return _unblocks(winograd.conv2x2_input_grad(out_grad,
                                                 _block_kernel(kernel)),
                     kernel.shape[2])
  return jax.vjp(lambda x: _conv4x4_stride2_as_2x2(x, kernel),
                 jnp.zeros(x_shape, out_grad.dtype))[1](out_grad)[0]


# Bilinear in (out_grad, kernel): its gradients are the convolution and the
# kernel gradient at the input cotangent.
_cpu_conv4x4_stride2_input_grad = _bilinear(
    _cpu_input_grad,
    lambda out_grad, kernel, x_cotangent: (
        _cpu_conv4x4_stride2(x_cotangent, kernel),
        _cpu_conv4x4_stride2_kernel_grad(x_cotangent, out_grad)))


# The convolution as `_cpu_forward`, the input gradient as `_cpu_input_grad`
# and the kernel gradient as `_cpu_kernel_grad` compute them.
_cpu_conv4x4_stride2 = _bilinear(
    _cpu_forward,
    lambda x, kernel, cotangent: (
        _cpu_conv4x4_stride2_input_grad(cotangent, kernel),
        _cpu_conv4x4_stride2_kernel_grad(x, cotangent)))


def conv4x4_stride2(x: jax.Array, kernel: jax.Array) -> jax.Array:
  """PyTorch's Conv2d(k=4, s=2, p=1, bias=False) in NHWC/HWIO.

  On CPU with the faster gradients of `_cpu_conv4x4_stride2`; on other
  platforms XLA's ordinary convolution and its gradients.
  """
  return jax.lax.platform_dependent(x, kernel, cpu=_cpu_conv4x4_stride2,
                                    default=_conv4x4_stride2)


def _interleave_phases(phase: Callable[[int, int], jax.Array]) -> jax.Array:
  """The transposed convolution's output from its phases: phase(r, s), of
  shape (B, H, W, C), holds output pixels (2a + r, 2b + s)."""
  phases = jnp.stack([jnp.stack([phase(r, s) for s in (0, 1)], axis=3)
                      for r in (0, 1)], axis=2)  # (B, H, r, W, s, C)
  batch, height, _, width, _, channels = phases.shape
  return phases.reshape(batch, 2 * height, 2 * width, channels)


def _phase_conv_transpose(x: jax.Array, kernel: jax.Array) -> jax.Array:
  """Output phase (r, s) of the transposed convolution: a 2x2 stride-1
  convolution with the kernel taps of parity (r, s)."""
  # Phase r reads input rows a - 1, a (r = 0) or a, a + 1 (r = 1).
  pads = ((1, 0), (0, 1))
  return _interleave_phases(
      lambda r, s: jax.lax.conv_general_dilated(
          x, kernel[r::2, s::2], (1, 1), (pads[r], pads[s]),
          dimension_numbers=_NHWC))


# Output phase r of a row reads these (input row offset, kernel row) pairs.
_PHASE_TAPS = (((-1, 0), (0, 2)), ((0, 1), (1, 3)))


def _few_channels(channels: int) -> bool:
  """Whether a transposed convolution to this many channels runs as
  `_matmul_conv_transpose` on CPU: at most 16, where it measured faster
  than the phase convolutions and XLA's gradient forms (BENCHMARKS.md);
  with more its products outgrow the gain."""
  return channels <= 16


def _matmul_conv_transpose(x: jax.Array, kernel: jax.Array) -> jax.Array:
  """The transposed convolution as one matmul of each input pixel with all
  16 taps, (B H W, C) @ (C, 16 Co), then each output pixel as the sum of
  its 4 taps' products: for few output channels, where XLA:CPU's
  convolutions run far below its matmuls."""
  batch, height, width, channels = x.shape
  products = jnp.dot(x.reshape(-1, channels),
                     kernel.transpose(2, 0, 1, 3).reshape(channels, -1),
                     preferred_element_type=jnp.float32)
  products = jnp.pad(
      products.reshape(batch, height, width, 4, 4, kernel.shape[3]),
      ((0, 0), (1, 1), (1, 1), (0, 0), (0, 0), (0, 0)))
  return _interleave_phases(
      lambda r, s: sum(
          products[:, 1 + i:1 + i + height, 1 + j:1 + j + width, kh, kw]
          for i, kh in _PHASE_TAPS[r] for j, kw in _PHASE_TAPS[s])
  ).astype(x.dtype)


def _adjoint_kernel(kernel: jax.Array) -> jax.Array:
  """The kernel of the strided convolution whose input gradient is this
  transposed convolution: taps flipped, input and output swapped. Its own
  inverse."""
  return jnp.flip(kernel, (0, 1)).transpose(0, 1, 3, 2)


def _cpu_conv_transpose_forward(x: jax.Array, kernel: jax.Array) -> jax.Array:
  """The transposed convolution as one matmul for few output channels, as
  the adjoint strided convolution's input gradient where that runs as
  Winograd, else as phase convolutions."""
  batch, height, width, _ = x.shape
  if _few_channels(kernel.shape[3]):
    return _matmul_conv_transpose(x, kernel)
  if _uses_winograd((batch, 2 * height, 2 * width, kernel.shape[3]),
                    kernel.shape[2]):
    return _cpu_input_grad(x, _adjoint_kernel(kernel))
  return _phase_conv_transpose(x, kernel)


# Forward: `_cpu_conv_transpose_forward`; the phase convolutions are four
# 2x2 convolutions, one per output phase (output pixel (2a + r, 2b + s)
# only meets kernel taps of parity (r, s)). Backward: this
# operator is the input gradient of a 4x4 stride-2 convolution with the
# adjoint kernel, so its input gradient is that convolution of the output
# gradient, and its kernel gradient that convolution's kernel gradient (with
# the input as cotangent). All of these are plain convolutions, which
# XLA:CPU runs far faster than the dilated kernel gradient of
# `lax.conv_transpose` or the phase convolutions' own kernel gradients
# (benchmarks/layer_flops.py).
_cpu_conv_transpose4x4_stride2 = _bilinear(
    _cpu_conv_transpose_forward,
    lambda x, kernel, cotangent: (
        _cpu_conv4x4_stride2(cotangent, _adjoint_kernel(kernel)),
        _adjoint_kernel(_cpu_conv4x4_stride2_kernel_grad(cotangent, x))))


def conv_transpose4x4_stride2(x: jax.Array, kernel: jax.Array) -> jax.Array:
  """PyTorch's ConvTranspose2d(k=4, s=2, p=1, bias=False); equal to
  `nn.ConvTranspose(features, (4, 4), strides=(2, 2), padding=((2, 2), (2,
  2)))` with the same HWIO kernel.

  On CPU the forms of `_cpu_conv_transpose4x4_stride2`; on other
  platforms XLA's ordinary transposed convolution and its gradients.
  """
  return jax.lax.platform_dependent(x, kernel,
                                    cpu=_cpu_conv_transpose4x4_stride2,
                                    default=_conv_transpose4x4_stride2)


def _conv_transpose_from_1x1(x: jax.Array, kernel: jax.Array) -> jax.Array:
  return jax.lax.conv_transpose(x, kernel, (1, 1), 'VALID',
                                dimension_numbers=_NHWC)


def _cpu_conv_transpose_from_1x1(x: jax.Array,
                                 kernel: jax.Array) -> jax.Array:
  # One matmul: XLA:CPU runs the convolution of a 1x1 input at a few
  # percent of the matmul rate (benchmarks/layer_flops.py).
  return jnp.einsum('bk,ijkc->bijc', x[:, 0, 0], jnp.flip(kernel, (0, 1)))


def conv_transpose_from_1x1(x: jax.Array, kernel: jax.Array) -> jax.Array:
  """`nn.ConvTranspose(features, (size, size), padding='VALID')` of a 1x1
  input with an HWIO kernel: a matmul on CPU, XLA's transposed convolution
  elsewhere."""
  return jax.lax.platform_dependent(x, kernel,
                                    cpu=_cpu_conv_transpose_from_1x1,
                                    default=_conv_transpose_from_1x1)
