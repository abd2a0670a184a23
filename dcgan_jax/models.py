"""The DCGAN generator and discriminator (Radford et al. 2015).

The 64x64 layout is the PyTorch DCGAN tutorial's: G lifts z from 1x1 to 4x4
with a 4x4 stride-1 transposed conv, then doubles the resolution with 4x4
stride-2 transposed convs; D mirrors it with 4x4 stride-2 convs and ends in a
4x4 valid conv to one logit. Other sizes change only the number of doubling
layers and the base resolution (7x7 for 28x28 images).
"""

from typing import Any, Callable, Optional

import flax.linen as nn
import jax
import jax.numpy as jnp

# image_size -> (base resolution, number of stride-2 layers).
ARCHITECTURES = {28: (7, 2), 32: (4, 3), 64: (4, 4), 128: (4, 5)}
SUPPORTED_CHANNELS = (1, 3)

conv_init = nn.initializers.normal(stddev=0.02)


def bn_scale_init(key: jax.Array, shape, dtype=jnp.float32) -> jax.Array:
  """BatchNorm scale ~ N(1, 0.02), as in the DCGAN paper's reference code."""
  return 1.0 + 0.02 * jax.random.normal(key, shape, dtype)


def check_architecture(image_size: int, channels: int) -> None:
  """Raises ValueError naming the supported values for an unsupported shape."""
  if image_size not in ARCHITECTURES:
    raise ValueError(
        f'image_size={image_size} is not supported; supported sizes: '
        f'{", ".join(map(str, sorted(ARCHITECTURES)))}.')
  if channels not in SUPPORTED_CHANNELS:
    raise ValueError(
        f'channels={channels} is not supported; supported channel counts: '
        f'{", ".join(map(str, SUPPORTED_CHANNELS))}.')


def _batch_norm(train: bool, axis_name: Optional[str],
                dtype: Any) -> nn.BatchNorm:
  # momentum 0.9 / epsilon 1e-5 are PyTorch's BatchNorm2d defaults (its
  # momentum=0.1 weighs the new batch). Under pmap the batch statistics are
  # those of the global batch, so training does not depend on the device count.
  return nn.BatchNorm(
      use_running_average=not train,
      momentum=0.9,
      epsilon=1e-5,
      scale_init=bn_scale_init,
      dtype=dtype,  # Statistics are still reduced in float32.
      axis_name=axis_name if train else None)


D_NORMS = ('batch', 'layer', 'none')


def _d_norm(kind: str, train: bool, axis_name: Optional[str],
            dtype: Any) -> Any:
  """D's normalisation after each downsampling but the first."""
  check_d_norm(kind)
  if kind == 'batch':
    return _batch_norm(train, axis_name, dtype)
  if kind == 'layer':
    # Each image over its height, width and channels, with a scale and
    # bias per channel (the WGAN-GP critic's "layer norm"): images never
    # interact, as a gradient penalty needs.
    return nn.LayerNorm(epsilon=1e-5, reduction_axes=(1, 2, 3),
                        feature_axes=-1, dtype=dtype)
  return lambda x: x


def check_d_norm(kind: str) -> str:
  """Returns kind if it is in D_NORMS; else raises ValueError naming them."""
  if kind not in D_NORMS:
    raise ValueError(f'config.model.d_norm={kind!r} is not known; choose one '
                     f'of {", ".join(D_NORMS)}.')
  return kind


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


def _conv4x4_stride2_as_2x2(x: jax.Array, kernel: jax.Array) -> jax.Array:
  """The same convolution as a stride-1 2x2 one over 2x2 pixel blocks.

  Input pixel (2i + p, 2j + q) of the padded image becomes channel (p, q)
  of block (i, j), and kernel tap (2a + p, 2b + q) becomes tap (a, b) of
  that channel.
  """
  batch, height, width, channels = x.shape
  padded = jnp.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
  blocks = padded.reshape(batch, height // 2 + 1, 2, width // 2 + 1, 2,
                          channels).transpose(0, 1, 3, 2, 4, 5).reshape(
                              batch, height // 2 + 1, width // 2 + 1,
                              4 * channels)
  kernel = kernel.reshape(2, 2, 2, 2, channels, -1).transpose(
      0, 2, 1, 3, 4, 5).reshape(2, 2, 4 * channels, -1)
  return jax.lax.conv_general_dilated(blocks, kernel, (1, 1), 'VALID',
                                      dimension_numbers=_NHWC)


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


def _chunked_kernel_grad(x: jax.Array, out_grad: jax.Array) -> jax.Array:
  """Kernel gradient of the 4x4 stride-2 convolution at input x.

  Summed over batch chunks of 4 where the output is at least 16x16 and
  neither side has only 1 or 2 channels: there XLA:CPU computes chunks
  faster than the whole batch, elsewhere not (benchmarks/layer_flops.py,
  BENCHMARKS.md).
  """
  kernel_shape = (4, 4, x.shape[-1], out_grad.shape[-1])

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
    _chunked_kernel_grad,
    lambda x, out_grad, kernel_cotangent: (
        _cpu_conv4x4_stride2_input_grad(out_grad, kernel_cotangent),
        _cpu_conv4x4_stride2(x, kernel_cotangent)))


def _blockwise_input_grad(out_grad: jax.Array,
                          kernel: jax.Array) -> jax.Array:
  """Input gradient of the 4x4 stride-2 convolution (even input sizes)
  through the blockwise stride-1 form, which XLA:CPU runs faster than the
  strided convolution's transposed form (benchmarks/layer_flops.py)."""
  batch, height, width, _ = out_grad.shape
  x = jnp.zeros((batch, 2 * height, 2 * width, kernel.shape[2]),
                out_grad.dtype)
  return jax.vjp(lambda x: _conv4x4_stride2_as_2x2(x, kernel),
                 x)[1](out_grad)[0]


# Bilinear in (out_grad, kernel): its gradients are the convolution and the
# kernel gradient at the input cotangent.
_cpu_conv4x4_stride2_input_grad = _bilinear(
    _blockwise_input_grad,
    lambda out_grad, kernel, x_cotangent: (
        _cpu_conv4x4_stride2(x_cotangent, kernel),
        _cpu_conv4x4_stride2_kernel_grad(x_cotangent, out_grad)))


# The direct convolution, with the input gradient as `_blockwise_input_grad`
# and the kernel gradient as `_chunked_kernel_grad` compute them.
_cpu_conv4x4_stride2 = _bilinear(
    _conv4x4_stride2,
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
  """D's downsampling layer: `conv4x4_stride2` with a float32 kernel."""
  features: int
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    kernel = self.param('kernel', conv_init,
                        (4, 4, x.shape[-1], self.features), jnp.float32)
    return conv4x4_stride2(x.astype(self.dtype), kernel.astype(self.dtype))


def _phase_conv_transpose(x: jax.Array, kernel: jax.Array) -> jax.Array:
  """Output phase (r, s) of the transposed convolution: a 2x2 stride-1
  convolution with the kernel taps of parity (r, s); phases interleaved."""
  # Phase r reads input rows a - 1, a (r = 0) or a, a + 1 (r = 1).
  pads = ((1, 0), (0, 1))
  phases = jnp.stack([
      jnp.stack([
          jax.lax.conv_general_dilated(x, kernel[r::2, s::2], (1, 1),
                                       (pads[r], pads[s]),
                                       dimension_numbers=_NHWC)
          for s in (0, 1)], axis=3)
      for r in (0, 1)], axis=2)  # (B, H, r, W, s, C)
  batch, height, _, width, _, channels = phases.shape
  return phases.reshape(batch, 2 * height, 2 * width, channels)


def _adjoint_kernel(kernel: jax.Array) -> jax.Array:
  """The kernel of the strided convolution whose input gradient is this
  transposed convolution: taps flipped, input and output swapped. Its own
  inverse."""
  return jnp.flip(kernel, (0, 1)).transpose(0, 1, 3, 2)


# Forward: four 2x2 convolutions, one per output phase (output pixel
# (2a + r, 2b + s) only meets kernel taps of parity (r, s)). Backward: this
# operator is the input gradient of a 4x4 stride-2 convolution with the
# adjoint kernel, so its input gradient is that convolution of the output
# gradient, and its kernel gradient that convolution's kernel gradient (with
# the input as cotangent). All of these are plain convolutions, which
# XLA:CPU runs far faster than the dilated kernel gradient of
# `lax.conv_transpose` or the phase convolutions' own kernel gradients
# (benchmarks/layer_flops.py).
_cpu_conv_transpose4x4_stride2 = _bilinear(
    _phase_conv_transpose,
    lambda x, kernel, cotangent: (
        _cpu_conv4x4_stride2(cotangent, _adjoint_kernel(kernel)),
        _adjoint_kernel(_cpu_conv4x4_stride2_kernel_grad(cotangent, x))))


def conv_transpose4x4_stride2(x: jax.Array, kernel: jax.Array) -> jax.Array:
  """PyTorch's ConvTranspose2d(k=4, s=2, p=1, bias=False); equal to
  `nn.ConvTranspose(features, (4, 4), strides=(2, 2), padding=((2, 2), (2,
  2)))` with the same HWIO kernel.

  On CPU the phase-wise form `_cpu_conv_transpose4x4_stride2`; on other
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


class Generator(nn.Module):
  """Maps z of shape (B, nz) to float32 images (B, S, S, C) in [-1, 1].

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
    check_architecture(self.image_size, self.channels)
    base, num_up = ARCHITECTURES[self.image_size]
    features = self.ngf * 2 ** (num_up - 1)
    x = z.reshape(z.shape[0], 1, 1, z.shape[-1])
    x = nn.ConvTranspose(features, (base, base), padding='VALID',
                         use_bias=False, kernel_init=conv_init,
                         dtype=self.dtype, name='ConvTranspose_0')(x)
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
  """Maps images (B, S, S, C) to one float32 output per image, shape (B,),
  computing in `dtype` with float32 parameters. `norm` is one of D_NORMS:
  without 'batch' D has no BatchNorm state."""
  image_size: int = 64
  channels: int = 3
  ndf: int = 64
  dtype: Any = jnp.float32
  norm: str = 'batch'

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = True,
               axis_name: Optional[str] = None) -> jax.Array:
    check_architecture(self.image_size, self.channels)
    expected = (self.image_size, self.image_size, self.channels)
    if x.shape[1:] != expected:
      raise ValueError(
          f'Discriminator expects images of shape (batch, {expected[0]}, '
          f'{expected[1]}, {expected[2]}), got {x.shape}.')
    base, num_down = ARCHITECTURES[self.image_size]
    for i in range(num_down):
      x = Conv4x4Stride2(self.ndf * 2**i, self.dtype, name=f'Conv_{i}')(x)
      if i > 0:  # No normalisation on D's first layer (Radford et al.).
        x = _d_norm(self.norm, train, axis_name, self.dtype)(x)
      x = nn.leaky_relu(x, negative_slope=0.2)
    x = nn.Conv(1, (base, base), padding='VALID', use_bias=False,
                kernel_init=conv_init, dtype=self.dtype,
                name=f'Conv_{num_down}')(x)
    return x.reshape(x.shape[0]).astype(jnp.float32)


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


def create_models(config: Any) -> tuple[Generator, Discriminator]:
  """Builds G and D from a config's `data` and `model` fields and `dtype`.

  Raises:
    ValueError: for an unsupported shape, dtype or D normalisation.
  """
  image_size, channels = config.data.image_size, config.data.channels
  check_architecture(image_size, channels)
  dtype = compute_dtype(config)
  d_norm = d_norm_of(config)
  return (Generator(image_size=image_size, channels=channels,
                    ngf=config.model.ngf, dtype=dtype),
          Discriminator(image_size=image_size, channels=channels,
                        ndf=config.model.ndf, dtype=dtype, norm=d_norm))


def d_norm_of(config: Any) -> str:
  """config.model.d_norm ('batch' if absent, as in runs that predate it).

  Raises:
    ValueError: naming the key and the known values.
  """
  return check_d_norm(config.model.get('d_norm', 'batch'))
