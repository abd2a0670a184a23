"""Converts pytorch-fid's Inception weights to a .npz, without torch and
without unpickling arbitrary objects.

  python -m dcgan_jax.convert_inception \
      --src=pt_inception-2015-12-05-6726825d.pth --dst=inception_fid.npz

then train or evaluate with `--config.eval.inception_weights=inception_fid.npz`.

A .pth file is a pickle. It is read here by an unpickler that builds only
tensors (numpy arrays) and ordered dicts and refuses any other global, so a
malicious file fails with an error instead of running code. Both of
torch.save's formats are read: the zip archive (torch >= 1.6) and the legacy
single-stream format.
"""

import collections
import io
import pickle
import zipfile
from typing import Any, BinaryIO, Callable

from absl import app
from absl import flags
import numpy as np

from dcgan_jax.evaluation import inception
from dcgan_jax.output import paths
from dcgan_jax.run import cli

_STORAGE_DTYPES = {
    'FloatStorage': np.float32, 'DoubleStorage': np.float64,
    'HalfStorage': np.float16, 'LongStorage': np.int64,
    'IntStorage': np.int32, 'ShortStorage': np.int16,
    'CharStorage': np.int8, 'ByteStorage': np.uint8, 'BoolStorage': np.bool_,
}
_LEGACY_MAGIC = 0x1950a86a20f9469cfc6c


class _Storage:
  """A storage named by the pickle; its bytes are read afterwards."""

  def __init__(self, key: str, dtype: np.dtype):
    self.key, self.dtype, self.data = key, dtype, None


class _Tensor:

  def __init__(self, storage, offset, size, stride):
    self.storage, self.offset, self.size, self.stride = (
        storage, offset, tuple(size), tuple(stride))

  def to_numpy(self) -> np.ndarray:
    data = self.storage.data
    itemsize = data.itemsize
    return np.lib.stride_tricks.as_strided(
        data[self.offset:], self.size,
        [s * itemsize for s in self.stride]).copy()


def _rebuild_tensor_v2(storage, offset, size, stride, requires_grad=False,
                       backward_hooks=None, metadata=None):
  del requires_grad, backward_hooks, metadata
  return _Tensor(storage, offset, size, stride)


class _RestrictedUnpickler(pickle.Unpickler):
  """Builds tensors and dicts only; any other global is refused."""

  def __init__(self, file: BinaryIO, source: str):
    super().__init__(file)
    self.source = source
    self.storages: dict[str, _Storage] = {}

  def find_class(self, module: str, name: str) -> Any:
    if (module, name) == ('torch._utils', '_rebuild_tensor_v2'):
      return _rebuild_tensor_v2
    if (module, name) == ('collections', 'OrderedDict'):
      return collections.OrderedDict
    if module == 'torch' and name in _STORAGE_DTYPES:
      return np.dtype(_STORAGE_DTYPES[name])
    raise pickle.UnpicklingError(
        f'{self.source} refers to {module}.{name}, which a weights file has '
        'no use for; refusing to load it.')

  def persistent_load(self, pid: Any) -> _Storage:
    # ('storage', dtype, key, location, numel[, view metadata (legacy)]).
    if not (isinstance(pid, tuple) and pid and pid[0] == 'storage'):
      raise pickle.UnpicklingError(f'{self.source}: unknown record {pid!r}.')
    key = str(pid[2])
    if key not in self.storages:
      self.storages[key] = _Storage(key, pid[1])
    return self.storages[key]


def _materialize(tree: Any) -> dict[str, np.ndarray]:
  if not isinstance(tree, dict):
    raise ValueError('holds no state dict')
  result = {}
  for key, value in tree.items():
    if not isinstance(value, _Tensor):
      raise ValueError(f'entry {key!r} is not a tensor')
    result[key] = value.to_numpy()
  return result


def _read_zip(data: BinaryIO, path: str) -> dict[str, np.ndarray]:
  with zipfile.ZipFile(data) as archive:
    pickles = [n for n in archive.namelist() if n.endswith('/data.pkl')]
    if len(pickles) != 1:
      raise ValueError('is a zip archive without one data.pkl')
    prefix = pickles[0][:-len('data.pkl')]
    unpickler = _RestrictedUnpickler(
        io.BytesIO(archive.read(pickles[0])), path)
    tree = unpickler.load()
    for storage in unpickler.storages.values():
      storage.data = np.frombuffer(
          archive.read(f'{prefix}data/{storage.key}'), storage.dtype)
  return _materialize(tree)


def _read_legacy(f: BinaryIO, path: str) -> dict[str, np.ndarray]:
  load: Callable[[], Any] = lambda: _RestrictedUnpickler(f, path).load()
  if load() != _LEGACY_MAGIC:
    raise ValueError('is neither a zip archive nor a legacy torch.save file')
  load()  # Protocol version.
  load()  # System info.
  unpickler = _RestrictedUnpickler(f, path)
  tree = unpickler.load()
  for key in load():  # Storage keys, in the order their bytes follow.
    storage = unpickler.storages[str(key)]
    numel = int(np.frombuffer(f.read(8), '<i8')[0])
    storage.data = np.frombuffer(
        f.read(numel * storage.dtype.itemsize), storage.dtype)
  return _materialize(tree)


def read_torch_state_dict(path: str) -> dict[str, np.ndarray]:
  """The tensors of a state dict saved by torch.save, as numpy arrays.

  Raises:
    ValueError: naming the file, if it is not a state dict of tensors or
      refers to anything but tensors and dicts.
  """
  data = io.BytesIO(paths.path(path).read_bytes())
  try:
    if zipfile.is_zipfile(data):
      return _read_zip(data, path)
    data.seek(0)
    return _read_legacy(data, path)
  except (pickle.UnpicklingError, ValueError, EOFError, KeyError,
          IndexError) as e:
    raise ValueError(f'{path} is not a torch state dict of tensors: {e}'
                     ) from e


def convert(src: str, dst: str) -> None:
  """pytorch-fid's .pth -> a .npz that `inception.load_variables` reads."""
  state_dict = read_torch_state_dict(src)
  inception.variables_from_torch(state_dict, source=src)  # Checks it.
  used = {k: v for k, v in state_dict.items()
          if not k.endswith(inception.UNUSED_TORCH_SUFFIXES)}
  inception.save_state_dict(dst, used)


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'Unexpected arguments: {argv[1:]}')
  convert(flags.FLAGS.src, flags.FLAGS.dst)
  print(f'Wrote {flags.FLAGS.dst}')


if __name__ == '__main__':
  flags.DEFINE_string('src', None, "pytorch-fid's pt_inception-2015-12-05-"
                      '6726825d.pth')
  flags.DEFINE_string('dst', None, 'Output .npz')
  flags.mark_flags_as_required(['src', 'dst'])
  cli.run(main)
