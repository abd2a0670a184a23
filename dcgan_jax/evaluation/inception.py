"""InceptionV3 as FID uses it: the 2015-12-05 TensorFlow graph of TTUR, in
pytorch-fid's port, returning the 2048-d pool features.

It differs from torchvision's InceptionV3 where pytorch-fid's FIDInception*
blocks do: the average pools inside the blocks ignore padding
(count_include_pad=False) and the last block (Mixed_7c) max-pools its pool
branch. Module names follow PyTorch's state-dict keys ("Mixed_5b.branch1x1.
conv.weight" is params Mixed_5b/branch1x1/conv/kernel), so pytorch-fid's
weights map over name by name; `convert_inception` writes them as a .npz.
"""

import functools
from typing import Any, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from dcgan_jax import choices
from dcgan_jax.output import paths

INPUT_SIZE = 299
FEATURE_DIM = 2048


class BasicConv2d(nn.Module):
  """Conv (no bias) -> BatchNorm (eps 1e-3, inference) -> ReLU."""
  features: int
  kernel_size: Sequence[int]
  strides: int = 1
  padding: Sequence[int] = (0, 0)

  @nn.compact
  def __call__(self, x):
    x = nn.Conv(self.features, tuple(self.kernel_size),
                strides=(self.strides, self.strides),
                padding=[(p, p) for p in self.padding], use_bias=False,
                name='conv')(x)
    x = nn.BatchNorm(use_running_average=True, epsilon=1e-3, name='bn')(x)
    return nn.relu(x)


def _avg_pool_3x3_same(x):
  return nn.avg_pool(x, (3, 3), padding=((1, 1), (1, 1)),
                     count_include_pad=False)


def _max_pool_3x3_stride2(x):
  return nn.max_pool(x, (3, 3), strides=(2, 2))


class InceptionA(nn.Module):
  pool_features: int

  @nn.compact
  def __call__(self, x):
    branch1x1 = BasicConv2d(64, (1, 1), name='branch1x1')(x)
    branch5x5 = BasicConv2d(48, (1, 1), name='branch5x5_1')(x)
    branch5x5 = BasicConv2d(64, (5, 5), padding=(2, 2),
                            name='branch5x5_2')(branch5x5)
    branch3x3dbl = BasicConv2d(64, (1, 1), name='branch3x3dbl_1')(x)
    branch3x3dbl = BasicConv2d(96, (3, 3), padding=(1, 1),
                               name='branch3x3dbl_2')(branch3x3dbl)
    branch3x3dbl = BasicConv2d(96, (3, 3), padding=(1, 1),
                               name='branch3x3dbl_3')(branch3x3dbl)
    branch_pool = BasicConv2d(self.pool_features, (1, 1), name='branch_pool')(
        _avg_pool_3x3_same(x))
    return jnp.concatenate([branch1x1, branch5x5, branch3x3dbl, branch_pool],
                           axis=-1)


class InceptionB(nn.Module):

  @nn.compact
  def __call__(self, x):
    branch3x3 = BasicConv2d(384, (3, 3), strides=2, name='branch3x3')(x)
    branch3x3dbl = BasicConv2d(64, (1, 1), name='branch3x3dbl_1')(x)
    branch3x3dbl = BasicConv2d(96, (3, 3), padding=(1, 1),
                               name='branch3x3dbl_2')(branch3x3dbl)
    branch3x3dbl = BasicConv2d(96, (3, 3), strides=2,
                               name='branch3x3dbl_3')(branch3x3dbl)
    return jnp.concatenate(
        [branch3x3, branch3x3dbl, _max_pool_3x3_stride2(x)], axis=-1)


class InceptionC(nn.Module):
  channels_7x7: int

  @nn.compact
  def __call__(self, x):
    c7 = self.channels_7x7
    branch1x1 = BasicConv2d(192, (1, 1), name='branch1x1')(x)
    branch7x7 = BasicConv2d(c7, (1, 1), name='branch7x7_1')(x)
    branch7x7 = BasicConv2d(c7, (1, 7), padding=(0, 3),
                            name='branch7x7_2')(branch7x7)
    branch7x7 = BasicConv2d(192, (7, 1), padding=(3, 0),
                            name='branch7x7_3')(branch7x7)
    dbl = BasicConv2d(c7, (1, 1), name='branch7x7dbl_1')(x)
    dbl = BasicConv2d(c7, (7, 1), padding=(3, 0), name='branch7x7dbl_2')(dbl)
    dbl = BasicConv2d(c7, (1, 7), padding=(0, 3), name='branch7x7dbl_3')(dbl)
    dbl = BasicConv2d(c7, (7, 1), padding=(3, 0), name='branch7x7dbl_4')(dbl)
    dbl = BasicConv2d(192, (1, 7), padding=(0, 3), name='branch7x7dbl_5')(dbl)
    branch_pool = BasicConv2d(192, (1, 1), name='branch_pool')(
        _avg_pool_3x3_same(x))
    return jnp.concatenate([branch1x1, branch7x7, dbl, branch_pool], axis=-1)


class InceptionD(nn.Module):

  @nn.compact
  def __call__(self, x):
    branch3x3 = BasicConv2d(192, (1, 1), name='branch3x3_1')(x)
    branch3x3 = BasicConv2d(320, (3, 3), strides=2,
                            name='branch3x3_2')(branch3x3)
    branch7x7x3 = BasicConv2d(192, (1, 1), name='branch7x7x3_1')(x)
    branch7x7x3 = BasicConv2d(192, (1, 7), padding=(0, 3),
                              name='branch7x7x3_2')(branch7x7x3)
    branch7x7x3 = BasicConv2d(192, (7, 1), padding=(3, 0),
                              name='branch7x7x3_3')(branch7x7x3)
    branch7x7x3 = BasicConv2d(192, (3, 3), strides=2,
                              name='branch7x7x3_4')(branch7x7x3)
    return jnp.concatenate(
        [branch3x3, branch7x7x3, _max_pool_3x3_stride2(x)], axis=-1)


class InceptionE(nn.Module):
  """Mixed_7b (average pool branch) and Mixed_7c (max pool: the FID graph's
  quirk)."""
  max_pool: bool = False

  @nn.compact
  def __call__(self, x):
    branch1x1 = BasicConv2d(320, (1, 1), name='branch1x1')(x)
    branch3x3 = BasicConv2d(384, (1, 1), name='branch3x3_1')(x)
    branch3x3 = jnp.concatenate([
        BasicConv2d(384, (1, 3), padding=(0, 1),
                    name='branch3x3_2a')(branch3x3),
        BasicConv2d(384, (3, 1), padding=(1, 0),
                    name='branch3x3_2b')(branch3x3)], axis=-1)
    dbl = BasicConv2d(448, (1, 1), name='branch3x3dbl_1')(x)
    dbl = BasicConv2d(384, (3, 3), padding=(1, 1), name='branch3x3dbl_2')(dbl)
    dbl = jnp.concatenate([
        BasicConv2d(384, (1, 3), padding=(0, 1), name='branch3x3dbl_3a')(dbl),
        BasicConv2d(384, (3, 1), padding=(1, 0), name='branch3x3dbl_3b')(dbl)],
                          axis=-1)
    if self.max_pool:
      pooled = nn.max_pool(x, (3, 3), padding=((1, 1), (1, 1)))
    else:
      pooled = _avg_pool_3x3_same(x)
    branch_pool = BasicConv2d(192, (1, 1), name='branch_pool')(pooled)
    return jnp.concatenate([branch1x1, branch3x3, dbl, branch_pool], axis=-1)


# How images reach 299x299 and [-1, 1]: the two FID implementations
# published numbers come from differ here.
#   pytorch: pytorch-fid (and torch-fidelity, clean-fid's legacy_pytorch):
#     F.interpolate(bilinear, align_corners=False), then x / 127.5 - 1.
#   tensorflow: the TensorFlow graph of the original TTUR code (and the
#     numbers of the FID, TTUR and most GAN papers before 2020):
#     tf.compat.v1.image.resize_bilinear(align_corners=False), which samples
#     source pixel i * in / out (no half-pixel offset), then (x - 128) / 128.
RESIZE_MODES = ('pytorch', 'tensorflow')
NUM_CLASSES = 1008


def _resize_matrix(in_size: int, out_size: int, mode: str) -> np.ndarray:
  """(out, in) weights of one axis's bilinear interpolation in `mode`."""
  scale = in_size / out_size
  if mode == 'pytorch':
    source = np.maximum((np.arange(out_size) + 0.5) * scale - 0.5, 0)
  else:
    source = np.arange(out_size) * scale
  lower = np.minimum(np.floor(source).astype(int), in_size - 1)
  upper = np.minimum(lower + 1, in_size - 1)
  frac = source - lower
  matrix = np.zeros((out_size, in_size), np.float64)
  np.add.at(matrix, (np.arange(out_size), lower), 1 - frac)
  np.add.at(matrix, (np.arange(out_size), upper), frac)
  return matrix.astype(np.float32)


def check_resize(mode: str) -> str:
  return choices.check('config.eval.resize', mode, RESIZE_MODES)


def resize_bilinear(images: jax.Array, size: int = INPUT_SIZE,
                    mode: str = 'pytorch') -> jax.Array:
  """(B, H, W, C) -> (B, size, size, C), bilinear as `mode` computes it
  (RESIZE_MODES), for any input size."""
  rows = _resize_matrix(images.shape[1], size, check_resize(mode))
  cols = _resize_matrix(images.shape[2], size, mode)
  precision = jax.lax.Precision.HIGHEST
  images = jnp.einsum('oh,bhwc->bowc', rows, images, precision=precision)
  return jnp.einsum('pw,bowc->bopc', cols, images, precision=precision)


def preprocess(images: jax.Array, resize: str = 'pytorch') -> jax.Array:
  """uint8 [0, 255] or float [-1, 1] images (B, H, W, 1 or 3) -> float32
  (B, 299, 299, 3) as the `resize` mode's implementation feeds its network.
  """
  if images.dtype == jnp.uint8:
    images = images.astype(jnp.float32) / 127.5 - 1
  images = images.astype(jnp.float32)
  if images.shape[-1] == 1:
    images = jnp.repeat(images, 3, axis=-1)
  elif images.shape[-1] != 3:
    raise ValueError(f'Images need 1 or 3 channels; got shape {images.shape}.')
  images = resize_bilinear(images, mode=resize)
  if resize == 'tensorflow':
    # Interpolation commutes with the affine map: resizing x * 127.5 +
    # 127.5 and then mapping to (x - 128) / 128 is this.
    images = (images * 127.5 - 0.5) / 128
  return images


class InceptionV3(nn.Module):
  """Preprocessed images (B, 299, 299, 3) -> (B, 2048) pool features."""

  @nn.compact
  def __call__(self, x):
    x = BasicConv2d(32, (3, 3), strides=2, name='Conv2d_1a_3x3')(x)
    x = BasicConv2d(32, (3, 3), name='Conv2d_2a_3x3')(x)
    x = BasicConv2d(64, (3, 3), padding=(1, 1), name='Conv2d_2b_3x3')(x)
    x = _max_pool_3x3_stride2(x)
    x = BasicConv2d(80, (1, 1), name='Conv2d_3b_1x1')(x)
    x = BasicConv2d(192, (3, 3), name='Conv2d_4a_3x3')(x)
    x = _max_pool_3x3_stride2(x)
    x = InceptionA(32, name='Mixed_5b')(x)
    x = InceptionA(64, name='Mixed_5c')(x)
    x = InceptionA(64, name='Mixed_5d')(x)
    x = InceptionB(name='Mixed_6a')(x)
    x = InceptionC(128, name='Mixed_6b')(x)
    x = InceptionC(160, name='Mixed_6c')(x)
    x = InceptionC(160, name='Mixed_6d')(x)
    x = InceptionC(192, name='Mixed_6e')(x)
    x = InceptionD(name='Mixed_7a')(x)
    x = InceptionE(name='Mixed_7b')(x)
    x = InceptionE(max_pool=True, name='Mixed_7c')(x)
    return x.mean(axis=(1, 2))


# Flax leaf (collection, module-relative name) <-> PyTorch state-dict suffix.
_LEAF_NAMES = {
    ('params', 'conv/kernel'): 'conv.weight',
    ('params', 'bn/scale'): 'bn.weight',
    ('params', 'bn/bias'): 'bn.bias',
    ('batch_stats', 'bn/mean'): 'bn.running_mean',
    ('batch_stats', 'bn/var'): 'bn.running_var',
}
# The classifier layer, used by the Inception Score alone.
FC_KEYS = ('fc.weight', 'fc.bias')
# State-dict entries nothing uses.
UNUSED_TORCH_SUFFIXES = ('.num_batches_tracked',)


@functools.cache
def variable_shapes() -> dict[tuple[str, str], tuple[int, ...]]:
  """{(collection, 'Mixed_5b/branch1x1/conv/kernel'): shape} of every
  variable, without computing anything."""
  shapes = jax.eval_shape(InceptionV3().init, jax.random.key(0),
                          jnp.zeros((1, INPUT_SIZE, INPUT_SIZE, 3)))
  return {(path[0].key, '/'.join(k.key for k in path[1:])): leaf.shape
          for path, leaf in jax.tree_util.tree_leaves_with_path(shapes)}


def torch_key(collection: str, name: str) -> str:
  """'Mixed_5b/branch1x1/conv/kernel' -> 'Mixed_5b.branch1x1.conv.weight'."""
  module, leaf = name.rsplit('/', 2)[0], '/'.join(name.rsplit('/', 2)[1:])
  return module.replace('/', '.') + '.' + _LEAF_NAMES[(collection, leaf)]


def _to_torch_layout(array: np.ndarray) -> np.ndarray:
  return array.transpose(3, 2, 0, 1) if array.ndim == 4 else array


def _from_torch_layout(array: np.ndarray) -> np.ndarray:
  return array.transpose(2, 3, 1, 0) if array.ndim == 4 else array


def variables_from_torch(state_dict: dict[str, np.ndarray],
                         source: str = 'the state dict') -> dict[str, Any]:
  """Flax variables from pytorch-fid's Inception state dict (numpy arrays).

  Raises:
    ValueError: naming source and every missing, unexpected or misshapen key.
  """
  problems = []
  variables = {'params': {}, 'batch_stats': {}}
  expected = set()
  for (collection, name), shape in variable_shapes().items():
    key = torch_key(collection, name)
    expected.add(key)
    if key not in state_dict:
      problems.append(f'missing {key}')
      continue
    array = _from_torch_layout(np.asarray(state_dict[key], np.float32))
    if array.shape != shape:
      problems.append(f'{key} has shape {state_dict[key].shape}')
      continue
    node = variables[collection]
    *modules, leaf = name.split('/')
    for module in modules:
      node = node.setdefault(module, {})
    node[leaf] = array
  unexpected = sorted(
      k for k in state_dict if k not in expected and k not in FC_KEYS
      and not k.endswith(UNUSED_TORCH_SUFFIXES))
  if all(k in state_dict for k in FC_KEYS):
    weight = np.asarray(state_dict['fc.weight'], np.float32)
    if weight.shape != (NUM_CLASSES, FEATURE_DIM):
      problems.append(f'fc.weight has shape {weight.shape}')
    variables['fc'] = {'kernel': weight.T,
                       'bias': np.asarray(state_dict['fc.bias'], np.float32)}
  problems += [f'unexpected {k}' for k in unexpected[:10]]
  if problems:
    raise ValueError(
        f'{source} is not pytorch-fid\'s FID Inception (pt_inception-'
        f'2015-12-05): {"; ".join(problems[:10])}'
        f'{f" and {len(problems) - 10} more" if len(problems) > 10 else ""}.')
  return variables


def variables_to_torch(variables: dict[str, Any]) -> dict[str, np.ndarray]:
  """The inverse of variables_from_torch (without the unused entries)."""
  state_dict = {}
  if 'fc' in variables:
    state_dict['fc.weight'] = np.asarray(variables['fc']['kernel']).T
    state_dict['fc.bias'] = np.asarray(variables['fc']['bias'])
  for (collection, name) in variable_shapes():
    node = variables[collection]
    for part in name.split('/'):
      node = node[part]
    state_dict[torch_key(collection, name)] = _to_torch_layout(np.asarray(node))
  return state_dict


def save_state_dict(path: paths.PathLike,
                    state_dict: dict[str, np.ndarray]) -> None:
  """Writes a state dict (PyTorch names and layouts) as a .npz, atomically."""
  paths.write_npz(path, state_dict)


def load_variables(path: paths.PathLike) -> dict[str, Any]:
  """Flax variables from a .npz written by `convert_inception`; loading
  never unpickles anything.

  Raises:
    FileNotFoundError, ValueError: naming the file and what is wrong.
  """
  try:
    state_dict = paths.read_npz(path)
  except FileNotFoundError:
    raise FileNotFoundError(
        f'eval.inception_weights={path!r} does not exist: convert '
        "pytorch-fid's pt_inception-2015-12-05-6726825d.pth with `python -m "
        'dcgan_jax.convert_inception --src=PTH --dst=NPZ`.') from None
  except (OSError, ValueError) as e:
    raise ValueError(f'eval.inception_weights={path!r} is not a .npz written '
                     f'by dcgan_jax.convert_inception: {e}') from e
  return variables_from_torch(state_dict, source=path)


def features(variables: dict[str, Any], images: jax.Array,
             resize: str = 'pytorch') -> jax.Array:
  """(B, 2048) FID features of images (B, H, W, 1 or 3), uint8 or in
  [-1, 1]. Pure: jit or pmap it."""
  network = {k: v for k, v in variables.items() if k != 'fc'}
  return InceptionV3().apply(network, preprocess(images, resize))


def has_logits(variables: dict[str, Any]) -> bool:
  return 'fc' in variables


def logits(variables: dict[str, Any], pool_features: jax.Array) -> jax.Array:
  """(B, 1008) class logits of pool features, as the Inception Score's
  original code takes them: the classifier layer's weights without its
  bias (torch-fidelity's 'logits_unbiased')."""
  return jnp.dot(pool_features, variables['fc']['kernel'],
                 precision=jax.lax.Precision.HIGHEST)
