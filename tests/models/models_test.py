"""Shapes, value ranges, initialisation and parameter counts of G and D."""

import collections
import functools
import re

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dcgan_jax.cpu import convolutions
from dcgan_jax.gan import forward
from dcgan_jax.gan import steps
from dcgan_jax.gan import train_states
from dcgan_jax import models
from dcgan_jax.models import dcgan
from dcgan_jax.models import layers
from dcgan_jax.models import registry
from tests.conftest import tiny_config


def _count(tree) -> int:
  return sum(x.size for x in jax.tree.leaves(tree))


def _model_config(name, image_size=28, channels=1, width=8, nz=16, **model):
  config = tiny_config(image_size, channels, width=width, nz=nz)
  config.model.update({'name': name, **model})
  return config


def _shapes(config):
  """(g_state, d_state) as shapes: parameter counts without computing."""
  return jax.eval_shape(
      lambda: train_states.create_train_states(config, jax.random.key(0)))


# Every supported shape builds: test_every_model_builds_every_supported_shape.
@pytest.mark.parametrize('image_size,channels', [(28, 1), (32, 3), (64, 3)])
def test_shapes_and_ranges(image_size, channels):
  config = tiny_config(image_size, channels)
  g_state, d_state = jax.jit(
      lambda: train_states.create_train_states(config, jax.random.key(0)))()

  @jax.jit
  def outputs(z):
    fake = forward.generate(g_state, z)
    fake_train, _ = g_state.apply_fn(
        {'params': g_state.params, 'batch_stats': g_state.batch_stats}, z,
        train=True, mutable=['batch_stats'])
    return fake, fake_train, d_state.apply_fn(
        {'params': d_state.params, 'batch_stats': d_state.batch_stats}, fake,
        train=False)

  fake, fake_train, logits = outputs(
      jax.random.normal(jax.random.key(1), (4, config.model.nz)))
  assert fake.shape == (4, image_size, image_size, channels)
  assert float(jnp.min(fake)) >= -1.0 and float(jnp.max(fake)) <= 1.0
  # With batch statistics the pre-tanh activations are O(1): the output
  # spreads over the range instead of sitting at 0 or saturating.
  assert 0.05 < float(jnp.std(fake_train)) < 0.99
  assert logits.shape == (4,)
  assert bool(jnp.all(jnp.isfinite(logits)))


def test_pytorch_reference_parameter_counts():
  g_state, d_state = _shapes(tiny_config(64, 3, width=64, nz=100))
  assert _count(g_state.params) == 3_576_704
  assert _count(d_state.params) == 2_765_568
  # Running statistics are state, not trainable parameters.
  assert 'mean' not in str(jax.tree_util.tree_structure(g_state.params))


def test_init_statistics():
  config = tiny_config(64, 3, width=64, nz=100)
  g_state, d_state = jax.jit(
      lambda: train_states.create_train_states(config, jax.random.key(0)))()
  for params in (g_state.params, d_state.params):
    flat = jax.tree_util.tree_flatten_with_path(params)[0]
    kernels = np.concatenate([np.ravel(v) for p, v in flat
                              if 'kernel' in jax.tree_util.keystr(p)])
    scales = np.concatenate([np.ravel(v) for p, v in flat
                             if 'scale' in jax.tree_util.keystr(p)])
    biases = np.concatenate([np.ravel(v) for p, v in flat
                             if 'bias' in jax.tree_util.keystr(p)])
    assert abs(kernels.mean()) < 1e-3
    assert kernels.std() == pytest.approx(0.02, rel=0.02)
    assert scales.mean() == pytest.approx(1.0, abs=3e-3)
    assert scales.std() == pytest.approx(0.02, rel=0.15)
    assert np.all(biases == 0.0)
    # No conv biases: BatchNorm follows every conv but the first of D and
    # the last of each, as in the reference.
    assert not any('Conv' in jax.tree_util.keystr(p) and 'bias' in
                   jax.tree_util.keystr(p) for p, _ in flat)


def test_discriminator_has_no_batchnorm_on_first_layer():
  _, d_state = _shapes(tiny_config(64, 3))
  # 4 stride-2 convs at 64x64: BatchNorm after the last three only.
  assert sorted(d_state.params) == [
      'BatchNorm_0', 'BatchNorm_1', 'BatchNorm_2',
      'Conv_0', 'Conv_1', 'Conv_2', 'Conv_3', 'Conv_4']
  assert d_state.params['BatchNorm_0']['scale'].shape == (16,)  # After Conv_1.


@pytest.mark.parametrize('image_size,channels,match', [
    (48, 3, 'image_size=48 is not supported; supported sizes: 28, 32, 64, 128'),
    (64, 2, 'channels=2 is not supported; supported channel counts: 1, 3'),
])
def test_unsupported_shapes_fail_clearly(image_size, channels, match):
  with pytest.raises(ValueError, match=match):
    train_states.create_train_states(tiny_config(image_size, channels),
                              jax.random.key(0))


def test_discriminator_rejects_wrong_image_shape():
  d = dcgan.Discriminator(image_size=32, channels=3, ndf=8)
  with pytest.raises(ValueError, match=r'\(batch, 32, 32, 3\)'):
    d.init(jax.random.key(0), jnp.zeros((2, 28, 28, 1)), train=False)


def test_original_architectures_have_their_parameter_counts():
  # The Keras DCGAN's model summary: G 413,825 trainable + 384 BatchNorm
  # moving statistics = 414,209; D 212,865.
  g_state, d_state = _shapes(_model_config('keras_dcgan', width=64, nz=32,
                                           d_norm='none'))
  assert _count(g_state.params) == 413_825
  assert _count(g_state.batch_stats) == 384
  assert _count(d_state.params) == 212_865 and d_state.batch_stats is None
  # The MLP GAN at 28x28x1, nz 100 (BatchNorm scale and bias included).
  g_state, d_state = _shapes(_model_config('mlp', width=64, nz=100,
                                           d_norm='none'))
  assert _count(g_state.params) == 581_520
  assert _count(d_state.params) == 533_505 and d_state.batch_stats is None
  # dcgan_upsample at 64x64x3, ngf = ndf = 64, nz 100, by layer.
  g_state, d_state = _shapes(_model_config('dcgan_upsample', 64, 3,
                                           width=64, nz=100))
  g_layers = [100 * 4 * 4 * 512 + 4 * 4 * 512]  # Dense to 4x4x512.
  for c in (512, 256, 128, 64):  # BatchNorm, 3x3 conv c -> c / 2.
    g_layers += [2 * c, 9 * c * (c // 2) + c // 2]
  g_layers.append(9 * 32 * 3 + 3)  # 3x3 conv to RGB.
  assert _count(g_state.params) == sum(g_layers) == 2_397_379
  d_layers = [16 * 3 * 64 + 64]  # 4x4 stride-2 convs with biases...
  for c in (64, 128, 256):  # ... and BatchNorm after all but the first.
    d_layers += [16 * c * 2 * c + 2 * c, 2 * 2 * c]
  d_layers.append(4 * 4 * 512 + 1)  # Dense to one logit.
  assert _count(d_state.params) == sum(d_layers) == 2_766_529


def test_the_standard_cnn_has_the_papers_layers():
  """Miyato et al. 2018, table 3, at 32x32x3 with z of 128."""
  g_state, d_state = _shapes(_model_config('sngan_cnn', 32, 3, width=64,
                                           nz=128, d_norm='spectral'))
  g_layers = [128 * 4 * 4 * 512 + 4 * 4 * 512, 2 * 512]  # Dense, BatchNorm.
  for c in (256, 128, 64):  # 4x4 stride-2 transposed convs, BatchNorm.
    g_layers += [16 * 2 * c * c, 2 * c]
  g_layers.append(9 * 64 * 3 + 3)  # 3x3 conv to RGB.
  assert _count(g_state.params) == sum(g_layers) == 3_812_931
  d_layers, inputs = [], 3
  for i, c in enumerate((64, 64, 128, 128, 256, 256, 512)):
    d_layers.append((16 if i % 2 else 9) * inputs * c + c)  # With biases.
    inputs = c
  d_layers.append(4 * 4 * 512 + 1)
  assert _count(d_state.params) == sum(d_layers) == 2_935_873
  assert len(_spectral_state(d_state.batch_stats)) == 8


@pytest.mark.parametrize('name', sorted(registry.MODELS))
def test_every_model_builds_every_supported_shape(name):
  sizes = {'keras_dcgan': (28, 32, 64, 128), 'mlp': (28, 32, 64, 128, 48),
           'sngan_cnn': (32, 48, 64)}
  for image_size in sizes.get(name, tuple(models.ARCHITECTURES)):
    for channels in registry.SUPPORTED_CHANNELS:
      config = _model_config(name, image_size, channels)
      g_state, d_state = _shapes(config)
      generator, discriminator = models.create_models(config)
      z = jax.ShapeDtypeStruct((4, config.model.nz), jnp.float32)
      fake = jax.eval_shape(
          functools.partial(generator.apply, train=False),
          {'params': g_state.params, 'batch_stats': g_state.batch_stats}, z)
      assert fake.shape == (4, image_size, image_size, channels)
      assert fake.dtype == jnp.float32
      logits = jax.eval_shape(
          functools.partial(discriminator.apply, train=False),
          {'params': d_state.params, 'batch_stats': d_state.batch_stats},
          fake)
      assert (logits.shape, logits.dtype) == ((4,), jnp.float32)


@pytest.mark.parametrize('name,image_size,channels', [
    ('dcgan_upsample', 28, 1), ('keras_dcgan', 32, 3), ('mlp', 28, 1),
    ('sngan_cnn', 32, 3)])
def test_every_model_ranges_and_bfloat16(name, image_size, channels):
  config = _model_config(name, image_size, channels)
  g_state, d_state = jax.jit(
      lambda: train_states.create_train_states(config, jax.random.key(0)))()
  config.dtype = 'bfloat16'
  g16, d16 = models.create_models(config)
  g_variables = {'params': g_state.params, 'batch_stats': g_state.batch_stats}
  d_variables = {'params': d_state.params}
  if d_state.batch_stats is not None:
    d_variables['batch_stats'] = d_state.batch_stats

  @jax.jit
  def outputs(z):
    fake, _ = g_state.apply_fn(g_variables, z, train=True,
                               mutable=['batch_stats'])
    fake16, _ = g16.apply(g_variables, z, train=True, mutable=['batch_stats'])
    return (fake, d_state.apply_fn(d_variables, fake, train=False), fake16,
            d16.apply(d_variables, fake, train=False))

  fake, logits, fake16, logits16 = outputs(
      jax.random.normal(jax.random.key(1), (4, config.model.nz)))
  assert float(jnp.min(fake)) >= -1.0 and float(jnp.max(fake)) <= 1.0
  assert 0.01 < float(jnp.std(fake)) < 0.99
  assert bool(jnp.all(jnp.isfinite(logits)))
  # In bfloat16, the same parameters give float32 outputs within bf16
  # rounding of float32's.
  assert fake16.dtype == logits16.dtype == jnp.float32
  np.testing.assert_allclose(fake16, fake, atol=0.1)
  np.testing.assert_allclose(logits16, logits,
                             atol=0.05 * float(jnp.max(jnp.abs(logits))) + 0.05)


def test_model_choices_fail_at_start_naming_the_known_values():
  for model, message in [
      ({'name': 'resnet'}, r"config.model.name='resnet' is not known; choose "
       'one of dcgan, dcgan_upsample, keras_dcgan, mlp, sngan_cnn'),
      ({'name': 'dcgan_upsample', 'upsample': 'cubic'},
       r"config.model.upsample='cubic' is not known; choose one of nearest, "
       'bilinear'),
      ({'name': 'keras_dcgan', 'd_dropout': 0.5},
       r"keras_dcgan's D has its own dropout rates"),
      ({'d_dropout': 1.0}, r'config.model.d_dropout=1.0 must be in \[0, 1\)'),
      ({'name': 'keras_dcgan', 'd_norm': 'none'},
       'image_size=30 is not supported; keras_dcgan needs a multiple of 4'),
  ]:
    config = _model_config(**{'name': 'dcgan', **model},
                           image_size=30 if 'd_norm' in model else 28)
    with pytest.raises(ValueError, match=message):
      models.check_shape(config)


def test_dropout_masks_follow_the_image_not_the_device():
  """Image i's mask is the same alone, in a batch, or on device j of 4."""
  dropout = layers.Dropout(0.5)
  x = jnp.ones((8, 3, 3, 2))
  rngs = {'dropout': jax.random.key(0)}
  whole = dropout.apply({}, x, train=True, rngs=rngs)
  assert set(np.unique(whole)) == {0.0, 2.0}
  assert 0.3 < float(jnp.mean(whole == 0)) < 0.7
  on_devices = jax.pmap(
      lambda x: dropout.apply({}, x, train=True, axis_name='batch',
                              rngs=rngs), axis_name='batch')(
                                  x.reshape(4, 2, 3, 3, 2))
  np.testing.assert_array_equal(on_devices.reshape(whole.shape), whole)
  assert not np.array_equal(whole[0], whole[1])
  np.testing.assert_array_equal(dropout.apply({}, x, train=False), x)


def _assert_equals_flax(ours, reference, shape, out_shape, to_scale=False,
                        kernel_to_scale=False):
  """ours and the flax reference agree in outputs and both gradients to
  1e-5 (with to_scale, each to 1e-5 of its largest magnitude: sums of many
  products, in another order than XLA's; with kernel_to_scale, the kernel
  gradient only)."""
  x = jax.random.normal(jax.random.key(0), shape)
  params = ours.init(jax.random.key(1), x)
  cotangent = jax.random.normal(jax.random.key(2), out_shape)

  def loss(module, params, x):
    return jnp.sum(module.apply(params, x) * cotangent)

  def assert_close(got, want, scaled):
    if scaled:
      np.testing.assert_allclose(got, want, rtol=0,
                                 atol=1e-5 * np.abs(want).max())
    else:
      np.testing.assert_allclose(got, want, atol=1e-5, rtol=1e-5)

  out, want = ours.apply(params, x), reference.apply(params, x)
  assert out.shape == want.shape == out_shape
  assert_close(out, want, to_scale)
  (got_params, got_x), (want_params, want_x) = (
      jax.jit(jax.grad(functools.partial(loss, module), argnums=(0, 1)))(
          params, x) for module in (ours, reference))
  assert_close(got_x, want_x, to_scale)
  assert_close(got_params['params']['kernel'],
               want_params['params']['kernel'], to_scale or kernel_to_scale)


def _flax_conv_transpose(features):
  return nn.ConvTranspose(features, (4, 4), strides=(2, 2),
                          padding=((2, 2), (2, 2)), use_bias=False)


def _flax_conv(features):
  return nn.Conv(features, (4, 4), strides=(2, 2), padding=((1, 1), (1, 1)),
                 use_bias=False)


@pytest.mark.parametrize('shape,features', [
    ((2, 4, 4, 8), 5), ((3, 7, 5, 3), 4), ((2, 16, 16, 64), 1),  # One matmul.
    ((2, 4, 4, 8), 24)])  # Phase convolutions.
def test_conv_transpose_equals_flax(shape, features):
  """Outputs and gradients equal flax's (lax.conv_transpose) to 1e-5."""
  batch, height, width, _ = shape
  _assert_equals_flax(layers.ConvTranspose4x4Stride2(features),
                      _flax_conv_transpose(features), shape,
                      (batch, 2 * height, 2 * width, features))


@pytest.mark.parametrize('shape,features', [((3, 16, 16, 3), 8),
                                            ((2, 8, 8, 16), 32)])
def test_strided_conv_equals_flax_conv(shape, features):
  """Outputs and gradients equal nn.Conv(4x4, stride 2, pad 1)'s to 1e-5."""
  batch, height, width, _ = shape
  _assert_equals_flax(layers.Conv4x4Stride2(features), _flax_conv(features),
                      shape, (batch, height // 2, width // 2, features))


def test_kernel_gradient_in_batch_chunks_equals_flax():
  """Shapes whose kernel gradient is summed over batch chunks on CPU. Each
  entry sums 2,048 products, in another order than flax's: equal to 1e-5
  of the gradient's scale."""
  _assert_equals_flax(layers.Conv4x4Stride2(4), _flax_conv(4),
                      (8, 32, 32, 3), (8, 16, 16, 4), kernel_to_scale=True)
  _assert_equals_flax(layers.ConvTranspose4x4Stride2(3),
                      _flax_conv_transpose(3), (8, 16, 16, 4), (8, 32, 32, 3),
                      kernel_to_scale=True)


# Shapes whose forward pass and both gradients run as Winograd on CPU.
_WINOGRAD_CONV = ((2, 16, 16, 64), (2, 8, 8, 64))
_WINOGRAD_CONV_TRANSPOSE = ((2, 4, 4, 64), (2, 8, 8, 64))


def test_layers_in_winograd_form_equal_flax():
  """Outputs and both gradients to 1e-5 of their scale, for shapes the CPU
  computes in the Winograd form (64 channels, outputs up to 16x16)."""
  assert convolutions._uses_winograd(_WINOGRAD_CONV[0], 64)
  assert convolutions._uses_winograd((2, 8, 8, 64), 64)  # The transposed conv.
  assert not convolutions._uses_winograd((2, 64, 64, 3), 64)
  _assert_equals_flax(layers.Conv4x4Stride2(64), _flax_conv(64),
                      *_WINOGRAD_CONV, to_scale=True)
  _assert_equals_flax(layers.ConvTranspose4x4Stride2(64),
                      _flax_conv_transpose(64), *_WINOGRAD_CONV_TRANSPOSE,
                      to_scale=True)


def test_first_generator_layer_equals_flax():
  """G's layer from 1x1 (a matmul on CPU) equals nn.ConvTranspose with the
  same kernel, in outputs and both gradients."""
  _assert_equals_flax(
      layers.ConvTransposeFrom1x1(6, 4),
      nn.ConvTranspose(6, (4, 4), padding='VALID', use_bias=False),
      (3, 1, 1, 10), (3, 4, 4, 6))


@pytest.mark.parametrize('conv,shape,out_shape', [
    ('conv', (3, 8, 8, 16), (3, 4, 4, 8)),
    ('conv', *_WINOGRAD_CONV),
    ('conv_transpose', *_WINOGRAD_CONV_TRANSPOSE),
    ('conv', (8, 32, 32, 3), (8, 16, 16, 4)),  # Chunked kernel gradients.
    ('conv_transpose', (2, 4, 4, 8), (2, 8, 8, 5)),
    ('conv_transpose', (8, 16, 16, 4), (8, 32, 32, 3)),
])
def test_second_derivatives_equal_flax(conv, shape, out_shape):
  """The gradient of a function of both first gradients (as a gradient
  penalty or an unrolled D update takes it), to 1e-5 of its scale."""
  features = out_shape[-1]
  ours, reference = {
      'conv': (layers.Conv4x4Stride2(features), _flax_conv(features)),
      'conv_transpose': (layers.ConvTranspose4x4Stride2(features),
                         _flax_conv_transpose(features))}[conv]
  x = jax.random.normal(jax.random.key(0), shape)
  params = ours.init(jax.random.key(1), x)
  cotangent = jax.random.normal(jax.random.key(2), out_shape)

  def second_order(module, params, x):
    def loss(params, x):
      return jnp.sum(jnp.tanh(module.apply(params, x)) * cotangent)
    grad_params, grad_x = jax.grad(loss, argnums=(0, 1))(params, x)
    return (jnp.sum(grad_x ** 2) +
            jnp.sum(grad_params['params']['kernel'] ** 2))

  got, want = (jax.jit(jax.grad(functools.partial(second_order, module),
                                argnums=(0, 1)))(params, x)
               for module in (ours, reference))
  for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(want)):
    np.testing.assert_allclose(a, b, rtol=0, atol=1e-5 * np.abs(b).max())


def _lowered_ops(platform, config, op):
  """The `op` lines of one train_step lowered for `platform` (no device of
  that kind needed), without value names: a sorted list of signatures."""
  states = jax.eval_shape(
      lambda: train_states.create_train_states(config, jax.random.key(0)))
  batch = jax.ShapeDtypeStruct(
      (8, config.data.image_size, config.data.image_size,
       config.data.channels), jnp.float32)
  # A fresh function each call: jit's cache would keep an earlier trace.
  exported = jax.export.export(
      jax.jit(lambda *args: steps.train_step(*args)), platforms=[platform])(
          *states, batch, jax.random.key(1))
  return sorted(
      re.sub(r'%[\w#]+', '%', re.sub(r' loc\(.*', '', line)).strip()
      for line in exported.mlir_module().splitlines()
      if f'stablehlo.{op}' in line)


def _flax_forms(monkeypatch):
  """Our conv layers computed by flax's own nn.Conv / nn.ConvTranspose."""
  def conv(x, kernel):
    return _flax_conv(kernel.shape[-1]).apply({'params': {'kernel': kernel}},
                                              x)

  def conv_transpose(x, kernel):
    return _flax_conv_transpose(kernel.shape[-1]).apply(
        {'params': {'kernel': kernel}}, x)
  monkeypatch.setattr(convolutions, 'conv4x4_stride2', conv)
  monkeypatch.setattr(convolutions, 'conv_transpose4x4_stride2',
                      conv_transpose)


def test_other_platforms_get_xla_ordinary_convolutions(monkeypatch):
  """Lowered for a GPU or TPU, a train step holds exactly the convolutions
  flax's nn.Conv / nn.ConvTranspose lower to (cuDNN's kernels on GPUs) and
  no matmul; lowered for the CPU it holds the CPU forms instead: the
  Winograd form's 9 matmuls, G's first layer as a matmul, G's last (to 1
  channel) as one matmul with its 16 taps. 64 channels: a shape where the
  CPU picks Winograd."""
  config = tiny_config()
  config.model.ngf = config.model.ndf = 64
  platforms = ('cuda', 'tpu', 'cpu')
  ours = {p: _lowered_ops(p, config, 'convolution') for p in platforms}
  with monkeypatch.context() as patch:
    _flax_forms(patch)
    monkeypatch.setattr(layers, 'ConvTransposeFrom1x1',
                        lambda features, size, dtype, name: nn.ConvTranspose(
                            features, (size, size), padding='VALID',
                            use_bias=False, dtype=dtype, name=name))
    flax_forms = {p: _lowered_ops(p, config, 'convolution')
                  for p in platforms}
  for platform in ('cuda', 'tpu'):
    assert ours[platform] == flax_forms[platform], platform
    assert not any('2x2x' in line for line in ours[platform])  # No phases.
    assert not _lowered_ops(platform, config, 'dot_general'), platform
  assert ours['cpu'] != flax_forms['cpu']
  cpu_matmuls = _lowered_ops('cpu', config, 'dot_general')
  assert any('tensor<64x16xf32>' in line for line in cpu_matmuls)
  # Winograd: one convolution's 9 matmuls share one signature.
  assert max(collections.Counter(cpu_matmuls).values()) >= 9


def _spectral_state(batch_stats):
  """{kernel path under params: (u, sigma)} of spectral normalisation."""
  found = {}
  for module in batch_stats.values():
    for name, value in module.items():
      *kernel, leaf = name.split('/')
      if leaf in ('u', 'sigma'):
        found.setdefault(tuple(kernel), {})[leaf] = value
  return found


def _kernel(params, path):
  for key in path:
    params = params[key]
  return np.asarray(params)


@pytest.mark.parametrize('name', sorted(registry.MODELS))
def test_spectral_norm_covers_every_weight_matrix_of_every_model(name):
  """d_norm='spectral' and g_spectral: a power-iteration vector for each
  kernel of G and D (not BatchNorm's or LayerNorm's vectors or biases)."""
  config = _model_config(name, 32, d_norm='spectral', g_spectral=True)
  for state in _shapes(config):
    kernels = {tuple(p.key for p in path)
               for path, leaf in jax.tree_util.tree_flatten_with_path(
                   state.params)[0] if len(leaf.shape) >= 2}
    assert set(_spectral_state(state.batch_stats)) == kernels
  d_state = _shapes(config)[1]
  assert not layers.has_batch_norm(d_state.batch_stats)
  assert not any('Norm' in key for key in d_state.params['network'])


def test_spectrally_normalised_kernels_have_largest_singular_value_one():
  """After power iterations in training passes, each kept sigma is the
  kernel's largest singular value (numpy's SVD of the kernel reshaped to
  (inputs, outputs)) to 1e-3, and D computes with kernel / sigma: its
  output is the plain D's with each kernel divided by that value."""
  config = _model_config('dcgan', d_norm='spectral')
  _, d_state = train_states.create_train_states(config, jax.random.key(0))
  images = jax.random.uniform(jax.random.key(1), (4, 28, 28, 1), minval=-1)
  batch_stats = d_state.batch_stats
  train_pass = jax.jit(lambda batch_stats: forward.apply_training(
      d_state, d_state.params, batch_stats, images, None,
      jax.random.key(2))[1])
  for _ in range(30):
    batch_stats = train_pass(batch_stats)
  normalised = {}
  for path, state in _spectral_state(batch_stats).items():
    kernel = _kernel(d_state.params, path)
    largest = np.linalg.svd(kernel.reshape(-1, kernel.shape[-1]),
                            compute_uv=False)[0]
    assert float(state['sigma']) == pytest.approx(largest, rel=1e-3), path
    assert np.linalg.svd((kernel / float(state['sigma'])).reshape(
        -1, kernel.shape[-1]), compute_uv=False)[0] == pytest.approx(
            1.0, abs=1e-3)
    normalised[path[1:]] = kernel / largest
  plain = config.copy_and_resolve_references()
  plain.model.d_norm = 'none'
  _, plain_d = registry.create_models(plain)
  params = jax.tree_util.tree_map_with_path(
      lambda path, x: normalised.get(tuple(p.key for p in path), x),
      d_state.params['network'])
  out = d_state.apply_fn({'params': d_state.params,
                          'batch_stats': batch_stats}, images, train=False)
  np.testing.assert_allclose(
      out, plain_d.apply({'params': params}, images, train=False),
      rtol=2e-3, atol=1e-5)


def test_bad_spectral_settings_are_named():
  with pytest.raises(ValueError, match=r"config.model.g_spectral='yes' must "
                     'be True or False'):
    registry.create_models(_model_config('dcgan', g_spectral='yes'))
  with pytest.raises(ValueError, match='choose one of batch, layer, none, '
                     'spectral'):
    registry.create_models(_model_config('dcgan', d_norm='sn'))
