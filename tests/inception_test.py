"""FID Inception: parity with pytorch-fid, weight conversion, safe loading."""

import io
import os
import pickle
import zipfile

import jax
import numpy as np
import pytest

from dcgan_jax import convert_inception
from dcgan_jax import inception
from tests import inception_reference

GOLDEN = os.path.join(os.path.dirname(__file__), 'golden')


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
