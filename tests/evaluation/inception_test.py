"""FID Inception: parity with pytorch-fid, weight conversion, safe loading."""

import os
import pickle
import zipfile

import jax
import numpy as np
import pytest

from dcgan_jax import convert_inception
from dcgan_jax.evaluation import inception
from tests.conftest import GOLDEN
from tests.evaluation import inception_reference



def _golden():
  with np.load(os.path.join(GOLDEN, 'inception_golden.npz')) as data:
    return {k: data[k] for k in data.files}


def test_features_equal_pytorch_fid():
  # Golden features: tests/golden/make_inception_golden.py, pytorch-fid 0.3.0.
  variables = inception.variables_from_torch(
      inception_reference.random_state_dict())
  inputs = inception_reference.inputs()
  preprocess = jax.jit(inception.preprocess)
  batch = np.concatenate([preprocess(x) for x in inputs.values()])
  features = np.asarray(jax.jit(inception.InceptionV3().apply)(variables,
                                                              batch))
  golden = _golden()
  expected = np.concatenate([golden[f'features/{name}'] for name in inputs])
  assert features.shape == (4, inception.FEATURE_DIM)
  # Within 1e-4 of each feature vector's scale.
  scale = np.abs(expected).max(axis=1, keepdims=True)
  np.testing.assert_array_less(np.abs(features - expected),
                               np.broadcast_to(1e-4 * scale, expected.shape))
  assert scale.min() > 0.1  # Weights scaled so that features are not ~0.


def test_resize_matches_pytorch_bilinear_formula():
  # F.interpolate(align_corners=False) at a 2x upscale: weights 0.75/0.25,
  # edges clamped.
  row = np.arange(4, dtype=np.float32)
  resized = np.asarray(inception.resize_bilinear(
      np.broadcast_to(row[None, None, :, None], (1, 1, 4, 1)), 8))
  np.testing.assert_allclose(resized[0, 0, :, 0],
                             [0, 0.25, 0.75, 1.25, 1.75, 2.25, 2.75, 3],
                             atol=1e-6)


def test_resize_matches_tensorflow_graph_resize():
  # The TTUR graph's ResizeBilinear: TF1's resize_bilinear with
  # align_corners=False (no half-pixel centres), then (x - 128) / 128.
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  rng = np.random.default_rng(0)
  for shape in ((2, 28, 28, 1), (1, 32, 48, 3), (1, 331, 400, 3)):
    pixels = rng.integers(0, 256, shape, dtype=np.uint8)
    expected = tf.compat.v1.image.resize_bilinear(
        np.repeat(pixels, 3 // shape[-1], -1).astype(np.float32),
        (inception.INPUT_SIZE, inception.INPUT_SIZE), align_corners=False,
        half_pixel_centers=False).numpy()
    expected = (expected - 128) / 128
    for images in (pixels, pixels / 127.5 - 1):  # uint8 or in [-1, 1].
      got = np.asarray(jax.jit(inception.preprocess, static_argnames='resize')(
          images.astype(images.dtype if images.dtype == np.uint8
                        else np.float32), resize='tensorflow'))
      # TF computes the sample positions in float32: 0.01 of a grey level.
      np.testing.assert_allclose(got, expected, atol=1e-4)
  # The two modes differ: the published numbers of each need its own.
  pytorch = np.asarray(inception.preprocess(pixels, 'pytorch'))
  assert np.abs(pytorch - expected).max() > 0.05
  with pytest.raises(ValueError, match="eval.resize='area'"):
    inception.preprocess(pixels, 'area')


def test_classifier_layer_loads_and_gives_logits(tmp_path):
  state_dict = inception_reference.random_state_dict()
  rng = np.random.default_rng(1)
  state_dict['fc.weight'] = rng.normal(size=(1008, 2048)).astype(np.float32)
  state_dict['fc.bias'] = rng.normal(size=1008).astype(np.float32)
  variables = inception.variables_from_torch(state_dict)
  assert inception.has_logits(variables)
  pool = rng.normal(size=(3, 2048)).astype(np.float32)
  # The Inception Score's logits: pool3 times the weights, without the bias.
  np.testing.assert_allclose(inception.logits(variables, pool),
                             pool @ state_dict['fc.weight'].T, rtol=1e-5,
                             atol=1e-4)
  path = str(tmp_path / 'inception.npz')
  inception.save_state_dict(path, inception.variables_to_torch(variables))
  jax.tree.map(np.testing.assert_array_equal, inception.load_variables(path),
               variables)
  del state_dict['fc.weight'], state_dict['fc.bias']
  assert not inception.has_logits(inception.variables_from_torch(state_dict))


@pytest.mark.parametrize('name', ['state_dict_zip.pth',
                                  'state_dict_legacy.pth'])
def test_reads_both_torch_save_formats(name):
  state_dict = convert_inception.read_torch_state_dict(
      os.path.join(GOLDEN, name))
  golden = {k[len('pth/'):]: v for k, v in _golden().items()
            if k.startswith('pth/')}
  assert state_dict.keys() == golden.keys()
  for key, value in golden.items():
    assert state_dict[key].dtype == value.dtype, key
    np.testing.assert_array_equal(state_dict[key], value, err_msg=key)


class _RunsCode:

  def __reduce__(self):
    return (os.system, ('touch pwned',))


def test_refuses_pickles_that_run_code(tmp_path, monkeypatch):
  monkeypatch.chdir(tmp_path)
  path = tmp_path / 'evil.pth'
  with zipfile.ZipFile(path, 'w') as archive:
    archive.writestr('evil/data.pkl', pickle.dumps({'w': _RunsCode()}))
  with pytest.raises(ValueError, match=r'evil.pth .*system.*refusing'):
    convert_inception.read_torch_state_dict(str(path))
  legacy = tmp_path / 'evil_legacy.pth'
  legacy.write_bytes(pickle.dumps(_RunsCode()))
  with pytest.raises(ValueError, match='refusing'):
    convert_inception.read_torch_state_dict(str(legacy))
  assert not (tmp_path / 'pwned').exists()


def test_converted_weights_round_trip(tmp_path):
  state_dict = inception_reference.random_state_dict(seed=3)
  variables = inception.variables_from_torch(state_dict)
  path = str(tmp_path / 'inception.npz')
  inception.save_state_dict(path, inception.variables_to_torch(variables))
  loaded = inception.load_variables(path)
  jax.tree.map(np.testing.assert_array_equal, loaded, variables)
  assert os.listdir(tmp_path) == ['inception.npz']


def test_bad_weights_are_named():
  state_dict = inception_reference.random_state_dict()
  del state_dict['Mixed_6b.branch1x1.conv.weight']
  state_dict['Mixed_5b.branch1x1.bn.weight'] = np.ones(3, np.float32)
  state_dict['AuxLogits.fc.weight'] = np.ones(3, np.float32)
  with pytest.raises(ValueError) as error:
    inception.variables_from_torch(state_dict, source='w.pth')
  for part in ('w.pth', 'missing Mixed_6b.branch1x1.conv.weight',
               'Mixed_5b.branch1x1.bn.weight has shape (3,)',
               'unexpected AuxLogits.fc.weight'):
    assert part in str(error.value)
  with pytest.raises(FileNotFoundError, match='eval.inception_weights'):
    inception.load_variables('/nonexistent/inception.npz')
