"""Input pipelines: TFDS datasets, a folder of images, or random images.

Each host reads its own disjoint share of the data. Every source gives one
epoch of records in a fixed order; one shared tf.data tail shuffles each
epoch with a seed of its own, decodes and preprocesses (resize the shorter
side, center crop, optional flip, scale to [-1, 1]), batches this host's
share of the global batch and lays it out as
(local_devices, per_device_batch, H, W, C) float32 numpy arrays. The batches
depend only on the config and the step, so a resumed run sees exactly what
an uninterrupted one would.
"""

import collections
import concurrent.futures
import dataclasses
import functools
import gzip
import io
import os
from typing import Any, Callable, Iterator, Sequence

from absl import logging
import jax
import numpy as np
import PIL.features
from PIL import Image
import tensorflow as tf
import tensorflow_datasets as tfds

IMAGE_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.bmp', '.gif')
FAKE_DATASET_SIZE = 1024
# Debian's dataset-fashion-mnist package: the original IDX files.
DEBIAN_FASHION_MNIST_DIR = '/usr/share/datasets/fashion-mnist'
_IDX_PREFIXES = {'train': 'train', 'test': 't10k'}
_IDX_COUNTS = {'train': 60_000, 'test': 10_000}
_IDX_IMAGES_MAGIC = 2051
_IDX_LABELS_MAGIC = 2049
# Folder datasets with class subfolders: every n-th file of each class is
# held out as the 'test' split of the labeled data.
FOLDER_TEST_EVERY = 10


def hide_gpus_from_tensorflow() -> None:
  """Keeps TensorFlow off the GPUs, which belong to JAX."""
  if tf.config.get_visible_devices('GPU'):
    tf.config.set_visible_devices([], 'GPU')


def local_batch_layout(global_batch: int) -> tuple[int, int]:
  """Returns (local_devices, per_device_batch) for a global batch size.

  Raises:
    ValueError: if the device count does not divide the global batch.
  """
  num_devices = jax.device_count()
  if global_batch <= 0 or global_batch % num_devices:
    raise ValueError(
        f'config.batch_size={global_batch} must be a positive multiple of the '
        f'number of devices ({num_devices}).')
  return jax.local_device_count(), global_batch // num_devices


def _read_idx(path: str, header: tuple[int, ...]) -> np.ndarray:
  """An IDX file's payload, after checking its header and size."""
  with gzip.open(path, 'rb') as f:
    data = f.read()
  offset = 4 * len(header)
  found = np.frombuffer(data[:offset], dtype='>u4')
  size = offset + int(np.prod(header[1:]))
  if tuple(found) != header or len(data) != size:
    raise ValueError(
        f'{path} is not a Fashion-MNIST IDX file: header '
        f'{tuple(int(h) for h in found)}, {len(data)} bytes; expected header '
        f'{header} and {size} bytes.')
  return np.frombuffer(data, np.uint8, offset=offset)


def read_fashion_mnist_idx(directory: str, split: str) -> np.ndarray:
  """Reads Fashion-MNIST images from IDX files as uint8 (N, 28, 28, 1).

  Debian rewrote the gzip headers, so TFDS's checksums reject these files;
  the header and size of the payload are checked here instead.
  """
  count = _IDX_COUNTS[split]
  return _read_idx(
      os.path.join(directory, f'{_IDX_PREFIXES[split]}-images-idx3-ubyte.gz'),
      (_IDX_IMAGES_MAGIC, count, 28, 28)).reshape(-1, 28, 28, 1)


def read_fashion_mnist_idx_labels(directory: str, split: str) -> np.ndarray:
  """Reads Fashion-MNIST labels (N,) int32 from IDX files, checked."""
  return _read_idx(
      os.path.join(directory, f'{_IDX_PREFIXES[split]}-labels-idx1-ubyte.gz'),
      (_IDX_LABELS_MAGIC, _IDX_COUNTS[split])).astype(np.int32)


def _missing_tfds_message(config: Any, error: Exception) -> str:
  name, data_dir = config.data.name, config.data.path or '~/tensorflow_datasets'
  hint = (f'set --config.data.download=True to let TFDS download it, or '
          f'prepare it with `tfds build {name} --data_dir={data_dir}`')
  if name == 'celeb_a':
    hint = ('TFDS cannot download CelebA automatically: place the files for '
            "TFDS's manual download and build it, or point "
            '--config.data.name=folder --config.data.path at an extracted '
            'img_align_celeba/ directory')
  elif name == 'fashion_mnist':
    hint += (', or install Debian\'s dataset-fashion-mnist package '
             f'({DEBIAN_FASHION_MNIST_DIR})')
  return (f'TFDS dataset {name!r} (split {config.data.split!r}) was not found '
          f'in data_dir {data_dir!r}: {hint}. ({type(error).__name__}: '
          f'{error})')


def _decode_with_pil(contents: tf.Tensor) -> np.ndarray:
  with Image.open(io.BytesIO(contents.numpy())) as image:
    return np.asarray(image.convert('RGB'))


def _decode_jpeg_near(contents: tf.Tensor, image_size: int) -> tf.Tensor:
  """Decodes a JPEG at the smallest DCT scale (1, 1/2, 1/4, 1/8) whose
  shorter side is still >= image_size.

  Scaling inside the decoder (as Pillow's draft mode does) skips most of the
  decoding work for images much larger than the training size; the resize
  in preprocess() then brings the shorter side to image_size as before.
  """
  shape = tf.image.extract_jpeg_shape(contents)
  shorter = tf.minimum(shape[0], shape[1])
  halvings = tf.add_n([tf.cast(shorter >= image_size * 2**k, tf.int32)
                       for k in (1, 2, 3)])
  return tf.switch_case(halvings, [
      functools.partial(tf.io.decode_jpeg, contents, channels=3, ratio=2**k)
      for k in range(4)])


def _encoded_decoder(image_size: int) -> Callable[[tf.Tensor], tf.Tensor]:
  """Encoded bytes -> uint8 RGB, whatever the file holds.

  Gray, RGBA and palette images come out as RGB (TF decodes GIFs only to
  RGB; their first frame is kept); preprocess() converts to the configured
  channels. WebP, which TF cannot decode, goes through Pillow.
  """
  def decode(contents: tf.Tensor) -> tf.Tensor:
    image = tf.case([
        (tf.io.is_jpeg(contents),
         lambda: _decode_jpeg_near(contents, image_size)),
        (tf.strings.substr(contents, 8, 4) == b'WEBP',
         lambda: tf.py_function(_decode_with_pil, [contents], tf.uint8)),
    ], default=lambda: tf.io.decode_image(contents, channels=3,
                                          expand_animations=False))
    image.set_shape([None, None, 3])
    return image
  return decode


def _identity(image: tf.Tensor) -> tf.Tensor:
  return image


@dataclasses.dataclass(frozen=True)
class Source:
  """One epoch of this host's records, in a fixed order.

  Records stay encoded (file names, compressed bytes) until after the
  shuffle, so the shuffle buffer holds no pixels.
  """
  records: tf.data.Dataset
  decode: Callable[[tf.Tensor], tf.Tensor]  # Record -> uint8 (H, W, C).
  num_examples: int
  shuffle_buffer: int  # Records shuffled together within an epoch.


def host_share(items: Sequence[Any]) -> Sequence[Any]:
  """This host's disjoint share of items; shares differ in size by <= 1."""
  return items[jax.process_index()::jax.process_count()]


def _use_debian_fashion_mnist(name: str) -> bool:
  """Whether a missing TFDS dataset can come from Debian's files instead."""
  if name != 'fashion_mnist' or not os.path.isdir(DEBIAN_FASHION_MNIST_DIR):
    return False
  logging.info('No prepared TFDS fashion_mnist; reading the IDX files in %s.',
               DEBIAN_FASHION_MNIST_DIR)
  return True


def _array_source(images: np.ndarray) -> Source:
  images = host_share(images)
  return Source(tf.data.Dataset.from_tensor_slices(images), _identity,
                len(images), len(images))


def _tfds_source(config: Any) -> Source:
  """This host's share of a TFDS split."""
  split = tfds.split_for_jax_process(config.data.split, drop_remainder=True)
  try:
    # Files in a fixed order: the pipeline's own seeded shuffle makes each
    # epoch's order, so that any step's batch can be found again.
    ds = tfds.load(
        config.data.name, split=split, data_dir=config.data.path or None,
        download=config.data.download, shuffle_files=False,
        decoders={'image': tfds.decode.SkipDecoding()})
  except (tfds.core.DatasetNotFoundError, AssertionError) as e:
    if _use_debian_fashion_mnist(config.data.name):
      return _array_source(read_fashion_mnist_idx(DEBIAN_FASHION_MNIST_DIR,
                                                  config.data.split))
    raise FileNotFoundError(_missing_tfds_message(config, e)) from e
  num_examples = int(ds.cardinality())
  return Source(ds.map(lambda x: x['image']),
                _encoded_decoder(config.data.image_size), num_examples,
                min(num_examples, config.data.shuffle_buffer))


def image_extensions() -> tuple[str, ...]:
  """Extensions the folder source reads; WebP only if Pillow can decode it."""
  return IMAGE_EXTENSIONS + (('.webp',) if PIL.features.check('webp') else ())


def list_image_files(root: str) -> list[str]:
  """Every image file under root, at any depth, in a stable order."""
  if not os.path.isdir(root):
    raise FileNotFoundError(
        f'config.data.path={root!r} is not a directory of images.')
  extensions = image_extensions()
  files = sorted(
      os.path.join(dirpath, name)
      for dirpath, _, names in os.walk(root)
      for name in names if name.lower().endswith(extensions))
  if not files:
    raise FileNotFoundError(
        f'No image files ({", ".join(extensions)}) under '
        f'config.data.path={root!r}.')
  return files


def _looks_complete(path: str) -> bool:
  """Whether a file has a known image signature and its format's end marker.

  Reads only the first and last bytes: catches empty, truncated and
  non-image files in a fraction of the time a decode takes.
  """
  try:
    size = os.path.getsize(path)
    with open(path, 'rb') as f:
      head = f.read(16)
      f.seek(max(0, size - 1024))
      tail = f.read()
  except OSError:
    return False
  if head.startswith(b'\xff\xd8\xff'):  # JPEG: an end-of-image marker.
    return b'\xff\xd9' in tail
  if head.startswith(b'\x89PNG\r\n\x1a\n'):  # PNG: an IEND chunk.
    return b'IEND' in tail[-12:]
  if head[:6] in (b'GIF87a', b'GIF89a'):  # GIF: the trailer byte.
    return tail.rstrip(b'\x00').endswith(b';')
  if head.startswith(b'BM'):  # BMP: the size its header declares.
    return len(head) >= 6 and int.from_bytes(head[2:6], 'little') <= size
  if head.startswith(b'RIFF') and head[8:12] == b'WEBP':
    return int.from_bytes(head[4:8], 'little') + 8 <= size
  return False


def check_image_files(files: list[str], max_bad_fraction: float) -> list[str]:
  """Drops unreadable or truncated files, warning with the first few.

  Raises:
    ValueError: if more than max_bad_fraction of the files are bad.
  """
  with concurrent.futures.ThreadPoolExecutor(16) as pool:
    complete = list(pool.map(_looks_complete, files))
  bad = [f for f, ok in zip(files, complete) if not ok]
  if not bad:
    return files
  message = (f'{len(bad)} of {len(files)} image files are unreadable or '
             f'truncated, e.g. {", ".join(bad[:5])}')
  if len(bad) > max_bad_fraction * len(files):
    raise ValueError(f'{message}: more than config.data.max_bad_fraction='
                     f'{max_bad_fraction}.')
  logging.warning('%s. Skipping them.', message)
  return [f for f, ok in zip(files, complete) if ok]


def _folder_source(config: Any) -> Source:
  """This host's disjoint share of the readable images under data.path."""
  files = check_image_files(list_image_files(config.data.path),
                            config.data.max_bad_fraction)
  files = host_share(files)
  return Source(
      tf.data.Dataset.from_tensor_slices(files).map(tf.io.read_file),
      _encoded_decoder(config.data.image_size), len(files), len(files))


def _fake_source(config: Any) -> Source:
  size, channels = config.data.image_size, config.data.channels
  return _array_source(np.random.default_rng(config.seed).integers(
      0, 256, (FAKE_DATASET_SIZE, size, size, channels), dtype=np.uint8))


def _labeled_folder(config: Any, split: str
                    ) -> tuple[tf.data.Dataset, Callable, int]:
  """(file contents, label) from a folder whose top-level subfolders are
  the classes; every FOLDER_TEST_EVERY-th file of a class is 'test'."""
  root = config.data.path
  files = check_image_files(list_image_files(root),
                            config.data.max_bad_fraction)
  parts = [os.path.relpath(f, root).split(os.sep) for f in files]
  if any(len(p) == 1 for p in parts):
    raise ValueError(
        f'config.data.path={root!r} has images outside class subfolders; '
        'labels come from the top-level subfolder of each image '
        '(root/CLASS/.../image).')
  classes = sorted({p[0] for p in parts})
  if len(classes) < 2:
    raise ValueError(f'config.data.path={root!r} has {len(classes)} class '
                     'subfolder(s); a classifier needs at least 2.')
  label_of = {c: i for i, c in enumerate(classes)}
  seen = collections.Counter()  # Files of each class so far, in path order.
  chosen, labels = [], []
  for f, p in zip(files, parts):
    label = label_of[p[0]]
    if (seen[label] % FOLDER_TEST_EVERY == 0) == (split == 'test'):
      chosen.append(f)
      labels.append(label)
    seen[label] += 1
  records = tf.data.Dataset.from_tensor_slices(
      (chosen, np.array(labels, np.int32))).map(
          lambda f, y: (tf.io.read_file(f), y))
  return records, _encoded_decoder(config.data.image_size), len(classes)


def load_labeled(config: Any, split: str) -> tuple[np.ndarray, np.ndarray,
                                                   int]:
  """A labeled split in memory, preprocessed as for training.

  For the evaluation classifier: TFDS datasets with a 'label' feature,
  Debian's Fashion-MNIST files, or a folder with one subfolder per class.

  Returns:
    (uint8 images (N, S, S, C), int32 labels (N,), number of classes).

  Raises:
    ValueError: if the configured dataset has no labels.
  """
  hide_gpus_from_tensorflow()
  name = config.data.name
  if name == 'fake':
    raise ValueError("config.data.name='fake' has no labels to train a "
                     'classifier on.')
  if name == 'folder':
    records, decode, num_classes = _labeled_folder(config, split)
  else:
    try:
      ds, info = tfds.load(
          name, split=split, data_dir=config.data.path or None,
          download=config.data.download, shuffle_files=False, with_info=True,
          decoders={'image': tfds.decode.SkipDecoding()})
    except (tfds.core.DatasetNotFoundError, AssertionError) as e:
      if _use_debian_fashion_mnist(name):
        records = tf.data.Dataset.from_tensor_slices((
            read_fashion_mnist_idx(DEBIAN_FASHION_MNIST_DIR, split),
            read_fashion_mnist_idx_labels(DEBIAN_FASHION_MNIST_DIR, split)))
        return (*_materialize(records, _identity, config), 10)
      raise FileNotFoundError(_missing_tfds_message(config, e)) from e
    if 'label' not in info.features:
      raise ValueError(f'TFDS dataset {name!r} has no \'label\' feature to '
                       'train a classifier on.')
    num_classes = info.features['label'].num_classes
    records = ds.map(lambda x: (x['image'], tf.cast(x['label'], tf.int32)))
    decode = _encoded_decoder(config.data.image_size)
  return (*_materialize(records, decode, config), num_classes)


def _materialize(records: tf.data.Dataset, decode: Callable,
                 config: Any) -> tuple[np.ndarray, np.ndarray]:
  size, channels = config.data.image_size, config.data.channels
  ds = records.map(
      lambda record, label: (
          tf.cast(tf.round((preprocess(decode(record), size, channels) + 1)
                           * 127.5), tf.uint8), label),
      num_parallel_calls=tf.data.AUTOTUNE).batch(1024)
  batches = list(ds.as_numpy_iterator())
  return (np.concatenate([b[0] for b in batches]),
          np.concatenate([b[1] for b in batches]))


def preprocess(image: tf.Tensor, image_size: int, channels: int) -> tf.Tensor:
  """uint8 (H, W, C) -> float32 (S, S, channels) in [-1, 1].

  Resizes the shorter side to image_size, then center-crops, as
  torchvision's Resize(S) + CenterCrop(S) does. Downscaling averages over
  each output pixel's footprint (the area filter: antialiased like
  torchvision's, and several times faster in TF than its antialiased
  bilinear); upscaling is bilinear.
  """
  if image.shape[-1] != channels:
    image = (tf.image.rgb_to_grayscale(image[..., :3]) if channels == 1
             else tf.image.grayscale_to_rgb(image[..., :1]))
  height, width = tf.shape(image)[0], tf.shape(image)[1]
  scale = image_size / tf.cast(tf.minimum(height, width), tf.float32)
  new_size = tf.cast(
      tf.math.round(tf.cast(tf.stack([height, width]), tf.float32) * scale),
      tf.int32)
  new_size = tf.maximum(new_size, image_size)
  image = tf.cond(
      scale < 1.0,
      lambda: tf.image.resize(image, new_size, method='area'),
      lambda: tf.image.resize(image, new_size, method='bilinear'))
  top = (new_size[0] - image_size) // 2
  left = (new_size[1] - image_size) // 2
  image = image[top:top + image_size, left:left + image_size]
  image.set_shape([image_size, image_size, channels])
  return image / 127.5 - 1.0


def _epoch_seed(seed: int, epoch: tf.Tensor) -> tf.Tensor:
  return tf.constant(seed, tf.int64) * 1_000_003 + tf.cast(epoch, tf.int64)


def create_dataset(config: Any, start_step: int = 0
                   ) -> tuple[Iterator[np.ndarray], int]:
  """Builds this host's infinite stream of training batches.

  The stream is a function of the config and the step alone: epoch e is the
  host's records shuffled with a seed made from (config.seed, e), so a run
  started at `start_step` gets exactly the batches an uninterrupted run sees
  from that step on, without replaying the ones before it.

  Args:
    config: uses `seed`, `batch_size` and the `data` fields.
    start_step: the number of batches already trained on.

  Returns:
    (iterator of float32 arrays (local_devices, per_device_batch, H, W, C)
    in [-1, 1], number of examples this host reads per epoch).
  """
  hide_gpus_from_tensorflow()
  local_devices, per_device = local_batch_layout(config.batch_size)
  local_batch = local_devices * per_device
  size, channels = config.data.image_size, config.data.channels
  seed = config.seed + 7919 * jax.process_index()

  name = config.data.name
  if name == 'fake':
    source = _fake_source(config)
  elif name == 'folder':
    source = _folder_source(config)
  else:
    source = _tfds_source(config)
  if source.num_examples < local_batch:
    raise ValueError(
        f'Dataset {name!r} ({config.data.path or "default location"}) has '
        f'{source.num_examples} examples for this host, fewer than one batch '
        f'of {local_batch}.')

  first_index = start_step * local_batch  # Of this host's record stream.
  first_epoch = first_index // source.num_examples
  ds = tf.data.Dataset.range(first_epoch, 2**62).flat_map(
      lambda epoch: source.records.shuffle(
          source.shuffle_buffer, seed=_epoch_seed(seed, epoch),
          reshuffle_each_iteration=False))
  ds = ds.skip(first_index - first_epoch * source.num_examples)
  ds = ds.enumerate(start=first_index)

  def load(index, record):
    image = preprocess(source.decode(record), size, channels)
    if config.data.random_flip:
      image = tf.image.stateless_random_flip_left_right(
          image, seed=tf.stack([tf.constant(seed, tf.int64), index]))
    return image

  ds = ds.map(load, num_parallel_calls=tf.data.AUTOTUNE)
  # A file that passed the start-up scan but still fails to decode (damage
  # inside it) is dropped with a logged warning rather than ending the run.
  ds = ds.ignore_errors(log_warning=True)
  ds = ds.batch(local_batch, drop_remainder=True)
  ds = ds.map(lambda x: tf.reshape(
      x, (local_devices, per_device, size, size, channels)))
  ds = ds.prefetch(tf.data.AUTOTUNE)
  return ds.as_numpy_iterator(), source.num_examples
