"""The networks, chosen by name: `config.model.name` in `MODELS`.

Every model is a (G, D) pair of flax modules, and every pair, ours or one
passed to `steps.create_train_states(config, rng, networks=(G, D))`, meets
one contract:

- G maps z, shape (B, nz), to images (B, H, W, C) in [-1, 1] as float32; D
  maps images (B, H, W, C) to one float32 output per image, shape (B,): a
  logit, or a critic's score for objectives without probabilities.
- Both are called as `module.apply(variables, x, train=..., axis_name=...)`.
  `train=True` in the steps' updates (BatchNorm normalises with the batch's
  statistics, dropout is on); `train=False` at initialisation, for sampling
  and for evaluation. `axis_name` is the pmap axis or None: BatchNorm and
  `Dropout` use it to act on the global batch, so a run's numbers do not
  depend on the device count.
- Variables: float32 'params', and optionally 'batch_stats' (BatchNorm's
  running averages, updated by training passes); a network without
  BatchNorm has none. Computation may be in another dtype (`config.dtype`).
- Randomness inside a network (dropout) comes from the 'dropout' rng
  stream, which the steps derive from the step number as they do z, so a
  resumed run draws it again.

The models:
- `dcgan`: the PyTorch DCGAN tutorial's networks (the default). At 64x64 G
  lifts z from 1x1 to 4x4 with a 4x4 stride-1 transposed conv, then doubles
  the resolution with 4x4 stride-2 transposed convs; D mirrors it with 4x4
  stride-2 convs and ends in a 4x4 valid conv to one logit. Other sizes
  change only the number of doubling layers and the base resolution (7x7
  for 28x28 images).
- `dcgan_upsample`: the same layout with G's transposed convs replaced by
  upsampling and a 3x3 conv (no checkerboard artefacts), G starting from a
  dense projection of z, and D ending in a dense layer.
- `keras_dcgan`: the Keras DCGAN on Fashion-MNIST: a dense projection to
  7x7x128, two 5x5 stride-2 transposed convs (SELU, tanh); D two 5x5
  stride-2 convs with dropout 0.3 and 0.4 and a dense layer.
- `mlp`: fully connected G and D (the Kuzushiji-MNIST MLP GAN).
"""

import dataclasses
import functools
import math
from typing import Any, Callable, Optional

import flax.linen as nn
import jax
import jax.numpy as jnp

from dcgan_jax import winograd

# image_size -> (base resolution, number of stride-2 layers) of `dcgan` and
# `dcgan_upsample`.
ARCHITECTURES = {28: (7, 2), 32: (4, 3), 64: (4, 4), 128: (4, 5)}
SUPPORTED_CHANNELS = (1, 3)

conv_init = nn.initializers.normal(stddev=0.02)


def bn_scale_init(key: jax.Array, shape, dtype=jnp.float32) -> jax.Array:
  """BatchNorm scale ~ N(1, 0.02), as in the DCGAN paper's reference code."""
  return 1.0 + 0.02 * jax.random.normal(key, shape, dtype)


def _check_dcgan_size(image_size: int) -> None:
  if image_size not in ARCHITECTURES:
    raise ValueError(
        f'image_size={image_size} is not supported; supported sizes: '
        f'{", ".join(map(str, sorted(ARCHITECTURES)))}.')


def _check_multiple_of_4(image_size: int) -> None:
  if image_size < 4 or image_size % 4:
    raise ValueError(f'image_size={image_size} is not supported; '
                     'keras_dcgan needs a multiple of 4 (G doubles twice).')


def _batch_norm(train: bool, axis_name: Optional[str], dtype: Any,
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


D_NORMS = ('batch', 'layer', 'none')


def _d_norm(kind: str, x: jax.Array, train: bool, axis_name: Optional[str],
            dtype: Any) -> jax.Array:
  """D's normalisation of x, a hidden layer's output."""
  check_d_norm(kind)
  if kind == 'batch':
    return _batch_norm(train, axis_name, dtype)(x)
  if kind == 'layer':
    # Each image over all its features, with a scale and bias per channel
    # (the WGAN-GP critic's "layer norm"): images never interact, as a
    # gradient penalty needs.
    return nn.LayerNorm(epsilon=1e-5, reduction_axes=tuple(range(1, x.ndim)),
                        feature_axes=-1, dtype=dtype)(x)
  return x


def check_d_norm(kind: str) -> str:
  """Returns kind if it is in D_NORMS; else raises ValueError naming them."""
  if kind not in D_NORMS:
    raise ValueError(f'config.model.d_norm={kind!r} is not known; choose one '
                     f'of {", ".join(D_NORMS)}.')
  return kind


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
    y = conv4x4_stride2(x.astype(self.dtype), kernel.astype(self.dtype))
    if self.use_bias:
      y = y + self.param('bias', nn.initializers.zeros, (self.features,),
                         jnp.float32).astype(self.dtype)
    return y


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


class ConvTranspose4x4Stride2(nn.Module):
  """G's upsampling layer: `conv_transpose4x4_stride2` with a float32
  kernel."""
  features: int
  dtype: Any = jnp.float32  # Computation; the kernel is kept in float32.

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    kernel = self.param('kernel', conv_init,
                        (4, 4, x.shape[-1], self.features), jnp.float32)
    return conv_transpose4x4_stride2(x.astype(self.dtype),
                                     kernel.astype(self.dtype))


def _conv_transpose_from_1x1(x: jax.Array, kernel: jax.Array) -> jax.Array:
  return jax.lax.conv_transpose(x, kernel, (1, 1), 'VALID',
                                dimension_numbers=_NHWC)


def _cpu_conv_transpose_from_1x1(x: jax.Array,
                                 kernel: jax.Array) -> jax.Array:
  # One matmul: XLA:CPU runs the convolution of a 1x1 input at a few
  # percent of the matmul rate (benchmarks/layer_flops.py).
  return jnp.einsum('bk,ijkc->bijc', x[:, 0, 0], jnp.flip(kernel, (0, 1)))


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
    return jax.lax.platform_dependent(
        x.astype(self.dtype), kernel.astype(self.dtype),
        cpu=_cpu_conv_transpose_from_1x1, default=_conv_transpose_from_1x1)


def _check_images(x: jax.Array, image_size: int, channels: int) -> None:
  expected = (image_size, image_size, channels)
  if x.shape[1:] != expected:
    raise ValueError(
        f'Discriminator expects images of shape (batch, {expected[0]}, '
        f'{expected[1]}, {expected[2]}), got {x.shape}.')


def _leaky_relu(x: jax.Array) -> jax.Array:
  return nn.leaky_relu(x, negative_slope=0.2)


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
    _check_dcgan_size(self.image_size)
    base, num_up = ARCHITECTURES[self.image_size]
    features = self.ngf * 2 ** (num_up - 1)
    x = z.reshape(z.shape[0], 1, 1, z.shape[-1])
    x = ConvTransposeFrom1x1(features, base, self.dtype,
                             name='ConvTranspose_0')(x)
    x = nn.relu(_batch_norm(train, axis_name, self.dtype)(x))
    for i in range(1, num_up):
      features //= 2
      x = ConvTranspose4x4Stride2(features, self.dtype,
                                  name=f'ConvTranspose_{i}')(x)
      x = nn.relu(_batch_norm(train, axis_name, self.dtype)(x))
    x = ConvTranspose4x4Stride2(self.channels, self.dtype,
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
    _check_dcgan_size(self.image_size)
    _check_images(x, self.image_size, self.channels)
    base, num_down = ARCHITECTURES[self.image_size]
    for i in range(num_down):
      x = Conv4x4Stride2(self.ndf * 2**i, self.dtype, name=f'Conv_{i}')(x)
      if i > 0:  # No normalisation on D's first layer (Radford et al.).
        x = _d_norm(self.norm, x, train, axis_name, self.dtype)
      x = Dropout(self.dropout)(_leaky_relu(x), train, axis_name)
    x = nn.Conv(1, (base, base), padding='VALID', use_bias=False,
                kernel_init=conv_init, dtype=self.dtype,
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
    _check_dcgan_size(self.image_size)
    base, num_up = ARCHITECTURES[self.image_size]
    features = self.ngf * 2 ** (num_up - 1)
    x = nn.Dense(base * base * features, kernel_init=conv_init,
                 dtype=self.dtype)(z)
    x = x.reshape(z.shape[0], base, base, features)
    for _ in range(num_up):
      x = _batch_norm(train, axis_name, self.dtype)(x)
      batch, height, width, channels = x.shape
      x = jax.image.resize(x, (batch, 2 * height, 2 * width, channels),
                           self.upsample)
      features //= 2
      x = nn.relu(nn.Conv(features, (3, 3), padding=1, kernel_init=conv_init,
                          dtype=self.dtype)(x))
    x = nn.Conv(self.channels, (3, 3), padding=1, kernel_init=conv_init,
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
    _check_dcgan_size(self.image_size)
    _check_images(x, self.image_size, self.channels)
    _, num_down = ARCHITECTURES[self.image_size]
    for i in range(num_down):
      x = Conv4x4Stride2(self.ndf * 2**i, self.dtype, use_bias=True)(x)
      x = Dropout(self.dropout)(_leaky_relu(x), train, axis_name)
      if i > 0:
        x = _d_norm(self.norm, x, train, axis_name, self.dtype)
    x = nn.Dense(1, kernel_init=conv_init, dtype=self.dtype)(
        x.reshape(x.shape[0], -1))
    return x.reshape(x.shape[0]).astype(jnp.float32)


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
    _check_multiple_of_4(self.image_size)
    base = self.image_size // 4
    batch_norm = functools.partial(
        _batch_norm, train, axis_name, self.dtype, momentum=0.99,
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
  Dropout(0.3) -> Conv(2 ndf, 5x5, stride 2, same) -> [norm] ->
  LeakyReLU(0.2) -> Dropout(0.4) -> flatten -> Dense(1)."""
  image_size: int = 28
  channels: int = 1
  ndf: int = 64
  norm: str = 'none'
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = True,
               axis_name: Optional[str] = None) -> jax.Array:
    _check_multiple_of_4(self.image_size)
    _check_images(x, self.image_size, self.channels)
    for i, rate in enumerate(KERAS_D_DROPOUT):
      x = nn.Conv(self.ndf * 2**i, (5, 5), (2, 2), padding='SAME',
                  kernel_init=_keras_init, dtype=self.dtype)(x)
      if i > 0:
        x = _d_norm(self.norm, x, train, axis_name, self.dtype)
      x = Dropout(rate)(_leaky_relu(x), train, axis_name)
    x = nn.Dense(1, kernel_init=_keras_init, dtype=self.dtype)(
        x.reshape(x.shape[0], -1))
    return x.reshape(x.shape[0]).astype(jnp.float32)


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
    batch_norm = functools.partial(_batch_norm, train, axis_name, self.dtype,
                                   scale_init=nn.initializers.ones)
    x = batch_norm()(_leaky_relu(_linear(2 * self.ngf, z, self.dtype)))
    for width in (4 * self.ngf, 8 * self.ngf):
      x = _leaky_relu(batch_norm()(_linear(width, x, self.dtype)))
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
    _check_images(x, self.image_size, self.channels)
    x = x.reshape(x.shape[0], -1)
    for i, width in enumerate((8 * self.ndf, 4 * self.ndf)):
      x = _linear(width, x, self.dtype)
      if i > 0:
        x = _d_norm(self.norm, x, train, axis_name, self.dtype)
      x = Dropout(self.dropout)(_leaky_relu(x), train, axis_name)
    return _linear(1, x, self.dtype).reshape(x.shape[0]).astype(jnp.float32)


@dataclasses.dataclass(frozen=True)
class Model:
  """A registered architecture.

  Attributes:
    build: (model config, {'image_size', 'channels', 'dtype'}) -> (G, D).
    check_size: raises ValueError for an image size it cannot build.
    fixed_d_dropout: D's dropout is part of the architecture, and
      `model.d_dropout` does not apply.
  """
  build: Callable[[Any, dict[str, Any]], tuple[nn.Module, nn.Module]]
  check_size: Callable[[int], None]
  fixed_d_dropout: bool = False


MODELS = {
    'dcgan': Model(
        lambda m, shape: (
            Generator(**shape, ngf=m.ngf),
            Discriminator(**shape, ndf=m.ndf, norm=m.d_norm,
                          dropout=m.d_dropout)),
        _check_dcgan_size),
    'dcgan_upsample': Model(
        lambda m, shape: (
            UpsampleGenerator(**shape, ngf=m.ngf, upsample=m.upsample),
            UpsampleDiscriminator(**shape, ndf=m.ndf, norm=m.d_norm,
                                  dropout=m.d_dropout)),
        _check_dcgan_size),
    'keras_dcgan': Model(
        lambda m, shape: (
            KerasGenerator(**shape, ngf=m.ngf),
            KerasDiscriminator(**shape, ndf=m.ndf, norm=m.d_norm)),
        _check_multiple_of_4, fixed_d_dropout=True),
    'mlp': Model(
        lambda m, shape: (
            MLPGenerator(**shape, ngf=m.ngf),
            MLPDiscriminator(**shape, ndf=m.ndf, norm=m.d_norm,
                             dropout=m.d_dropout)),
        lambda size: None),
}
UPSAMPLING = ('nearest', 'bilinear')
# Model keys added after runs were saved without them, and the values
# those runs had.
MODEL_DEFAULTS = {'name': 'dcgan', 'd_norm': 'batch', 'd_dropout': 0.0,
                  'upsample': 'nearest'}


DTYPES = {'float32': jnp.float32, 'bfloat16': jnp.bfloat16}


def compute_dtype(config: Any) -> Any:
  """config.dtype ('float32' if absent) as a jnp dtype.

  Raises:
    ValueError: naming the key and the supported values.
  """
  name = config.get('dtype', 'float32')
  if name not in DTYPES:
    raise ValueError(f'config.dtype={name!r} is not supported; use one of '
                     f'{", ".join(DTYPES)}.')
  return DTYPES[name]


def model_config(config: Any) -> Any:
  """config.model with MODEL_DEFAULTS for absent keys, checked.

  Raises:
    ValueError: naming the config key and its known values, for an
      unknown model, normalisation or upsampling, a dropout rate outside
      [0, 1), or dropout on a model whose D has its own.
  """
  values = {**MODEL_DEFAULTS, **config.model}
  name = values['name']
  if name not in MODELS:
    raise ValueError(f'config.model.name={name!r} is not known; choose one '
                     f'of {", ".join(MODELS)}.')
  check_d_norm(values['d_norm'])
  if values['upsample'] not in UPSAMPLING:
    raise ValueError(f'config.model.upsample={values["upsample"]!r} is not '
                     f'known; choose one of {", ".join(UPSAMPLING)}.')
  if not 0.0 <= values['d_dropout'] < 1.0:
    raise ValueError(f'config.model.d_dropout={values["d_dropout"]} must be '
                     'in [0, 1).')
  if values['d_dropout'] and MODELS[name].fixed_d_dropout:
    raise ValueError(f'config.model.d_dropout={values["d_dropout"]}: '
                     f'{name}\'s D has its own dropout rates; the key '
                     'applies to the other models.')
  return type(config.model)(values)


def check_shape(config: Any) -> None:
  """Raises ValueError naming the supported values for a data shape the
  config's model cannot build."""
  channels = config.data.channels
  if channels not in SUPPORTED_CHANNELS:
    raise ValueError(
        f'channels={channels} is not supported; supported channel counts: '
        f'{", ".join(map(str, SUPPORTED_CHANNELS))}.')
  MODELS[model_config(config).name].check_size(config.data.image_size)


def create_models(config: Any) -> tuple[nn.Module, nn.Module]:
  """Builds config.model.name's G and D from the config's `data` and
  `model` fields and `dtype`.

  Raises:
    ValueError: for an unknown model, an unsupported shape or dtype, or a
      bad model key.
  """
  check_shape(config)
  model = model_config(config)
  return MODELS[model.name].build(
      model, {'image_size': config.data.image_size,
              'channels': config.data.channels,
              'dtype': compute_dtype(config)})


def d_uses_batch_norm(config: Any) -> bool:
  """Whether the config's D has BatchNorm (every model's D normalises as
  config.model.d_norm says)."""
  return model_config(config).d_norm == 'batch'
