"""Fashion-MNIST's original IDX files, as Debian's dataset-fashion-mnist
package installs them: the default dataset on a machine without TFDS data.
"""

import gzip

import numpy as np

from dcgan_jax.output import paths

DEBIAN_FASHION_MNIST_DIR = '/usr/share/datasets/fashion-mnist'
NUM_CLASSES = 10
_PREFIXES = {'train': 'train', 'test': 't10k'}
_COUNTS = {'train': 60_000, 'test': 10_000}
_IMAGES_MAGIC = 2051
_LABELS_MAGIC = 2049


def _read(p: paths.epath.Path, header: tuple[int, ...]) -> np.ndarray:
  """An IDX file's payload, after checking its header and size."""
  with p.open('rb') as raw, gzip.open(raw, 'rb') as f:
    data = f.read()
  offset = 4 * len(header)
  found = np.frombuffer(data[:offset], dtype='>u4')
  size = offset + int(np.prod(header[1:]))
  if tuple(found) != header or len(data) != size:
    raise ValueError(
        f'{p} is not a Fashion-MNIST IDX file: header '
        f'{tuple(int(h) for h in found)}, {len(data)} bytes; expected header '
        f'{header} and {size} bytes.')
  return np.frombuffer(data, np.uint8, offset=offset)


def read_images(directory: paths.PathLike, split: str) -> np.ndarray:
  """Fashion-MNIST images from IDX files as uint8 (N, 28, 28, 1).

  Debian rewrote the gzip headers, so TFDS's checksums reject these files;
  the header and size of the payload are checked here instead.
  """
  count = _COUNTS[split]
  return _read(
      paths.path(directory) / f'{_PREFIXES[split]}-images-idx3-ubyte.gz',
      (_IMAGES_MAGIC, count, 28, 28)).reshape(-1, 28, 28, 1)


def read_labels(directory: paths.PathLike, split: str) -> np.ndarray:
  """Fashion-MNIST labels (N,) int32 from IDX files, checked."""
  return _read(
      paths.path(directory) / f'{_PREFIXES[split]}-labels-idx1-ubyte.gz',
      (_LABELS_MAGIC, _COUNTS[split])).astype(np.int32)
