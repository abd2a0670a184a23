"""Input pipelines: TFDS datasets, a folder of images, or random images.

Every source yields uint8 images; one shared tf.data tail shuffles, repeats,
preprocesses (resize the shorter side, center crop, scale to [-1, 1]),
batches this host's share of the global batch and lays it out as
(local_devices, per_device_batch, H, W, C) float32 numpy arrays.
"""

import gzip
import os
from typing import Any, Callable, Iterator

from absl import logging
import jax
import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds

IMAGE_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.bmp', '.gif')
FAKE_DATASET_SIZE = 1024
# Debian's dataset-fashion-mnist package: the original IDX files.
DEBIAN_FASHION_MNIST_DIR = '/usr/share/datasets/fashion-mnist'
_IDX_FILES = {'train': 'train-images-idx3-ubyte.gz',
              'test': 't10k-images-idx3-ubyte.gz'}
_IDX_COUNTS = {'train': 60_000, 'test': 10_000}
_IDX_IMAGES_MAGIC = 2051


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


def read_fashion_mnist_idx(directory: str, split: str) -> np.ndarray:
  """Reads Fashion-MNIST images from IDX files as uint8 (N, 28, 28, 1).

  Debian rewrote the gzip headers, so TFDS's checksums reject these files;
  the header and size of the payload are checked here instead.
  """
  path = os.path.join(directory, _IDX_FILES[split])
  with gzip.open(path, 'rb') as f:
    data = f.read()
  header = np.frombuffer(data[:16], dtype='>u4')
  expected = (_IDX_IMAGES_MAGIC, _IDX_COUNTS[split], 28, 28)
  if len(header) != 4 or tuple(header) != expected or (
      len(data) != 16 + np.prod(expected[1:])):
    raise ValueError(
        f'{path} is not a Fashion-MNIST {split} image file: header '
        f'{tuple(int(h) for h in header)}, {len(data)} bytes; expected header '
        f'{expected} and {16 + np.prod(expected[1:])} bytes.')
  return np.frombuffer(data, np.uint8, offset=16).reshape(-1, 28, 28, 1)


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


def _decode_encoded(contents: tf.Tensor) -> tf.Tensor:
  # As RGB whatever the file holds (gray, RGBA, palette, GIF, which TF only
  # decodes to RGB); preprocess() converts to the configured channels.
  image = tf.io.decode_image(contents, channels=3, expand_animations=False)
  image.set_shape([None, None, 3])
  return image


def _identity(image: tf.Tensor) -> tf.Tensor:
  return image


# A source returns (dataset of records, record -> uint8 image, number of
# examples on this host). Records stay encoded until after the shuffle, so
# the shuffle buffer holds file names or compressed bytes, not pixels.
Source = tuple[tf.data.Dataset, Callable[[tf.Tensor], tf.Tensor], int]


def _tfds_source(config: Any, seed: int) -> Source:
  """This host's share of a TFDS split."""
  split = tfds.split_for_jax_process(config.data.split, drop_remainder=True)
  try:
    ds = tfds.load(
        config.data.name, split=split, data_dir=config.data.path or None,
        download=config.data.download, shuffle_files=True,
        decoders={'image': tfds.decode.SkipDecoding()},
        read_config=tfds.ReadConfig(shuffle_seed=seed))
  except (tfds.core.DatasetNotFoundError, AssertionError) as e:
    if (config.data.name == 'fashion_mnist' and
        os.path.isdir(DEBIAN_FASHION_MNIST_DIR)):
      logging.info('No prepared TFDS fashion_mnist; reading the IDX files in '
                   '%s.', DEBIAN_FASHION_MNIST_DIR)
      images = read_fashion_mnist_idx(DEBIAN_FASHION_MNIST_DIR,
                                      config.data.split)
      images = images[jax.process_index()::jax.process_count()]
      return (tf.data.Dataset.from_tensor_slices(images), _identity,
              len(images))
    raise FileNotFoundError(_missing_tfds_message(config, e)) from e
  return (ds.map(lambda x: x['image']), _decode_encoded,
          int(ds.cardinality()))


def list_image_files(root: str) -> list[str]:
  """Every image file under root, at any depth, in a stable order."""
  if not os.path.isdir(root):
    raise FileNotFoundError(
        f'config.data.path={root!r} is not a directory of images.')
  files = sorted(
      os.path.join(dirpath, name)
      for dirpath, _, names in os.walk(root)
      for name in names if name.lower().endswith(IMAGE_EXTENSIONS))
  if not files:
    raise FileNotFoundError(
        f'No image files ({", ".join(IMAGE_EXTENSIONS)}) under '
        f'config.data.path={root!r}.')
  return files


def _folder_source(config: Any) -> Source:
  """This host's share of the image files under config.data.path."""
  files = list_image_files(config.data.path)
  files = files[jax.process_index()::jax.process_count()]
  return (tf.data.Dataset.from_tensor_slices(files).map(tf.io.read_file),
          _decode_encoded, len(files))


def _fake_source(config: Any, seed: int) -> Source:
  size, channels = config.data.image_size, config.data.channels
  images = np.random.default_rng(seed).integers(
      0, 256, (FAKE_DATASET_SIZE, size, size, channels), dtype=np.uint8)
  return (tf.data.Dataset.from_tensor_slices(images), _identity,
          FAKE_DATASET_SIZE)


def preprocess(image: tf.Tensor, image_size: int, channels: int) -> tf.Tensor:
  """uint8 (H, W, C) -> float32 (S, S, channels) in [-1, 1].

  Resizes the shorter side to image_size, then center-crops, as
  torchvision's Resize(S) + CenterCrop(S) does.
  """
  if image.shape[-1] != channels:
    image = (tf.image.rgb_to_grayscale(image[..., :3]) if channels == 1
             else tf.image.grayscale_to_rgb(image[..., :1]))
  image = tf.cast(image, tf.float32)
  height, width = tf.shape(image)[0], tf.shape(image)[1]
  scale = image_size / tf.cast(tf.minimum(height, width), tf.float32)
  new_size = tf.cast(
      tf.math.round(tf.cast(tf.stack([height, width]), tf.float32) * scale),
      tf.int32)
  new_size = tf.maximum(new_size, image_size)
  image = tf.image.resize(image, new_size, antialias=True)
  top = (new_size[0] - image_size) // 2
  left = (new_size[1] - image_size) // 2
  image = image[top:top + image_size, left:left + image_size]
  image.set_shape([image_size, image_size, channels])
  return image / 127.5 - 1.0


def create_dataset(config: Any, start_step: int = 0
                   ) -> tuple[Iterator[np.ndarray], int]:
  """Builds this host's infinite stream of training batches.

  Args:
    config: uses `seed`, `batch_size` and the `data` fields.
    start_step: the step a run starts from; a resumed run reshuffles with a
      seed derived from it rather than replaying the first batches.

  Returns:
    (iterator of float32 arrays (local_devices, per_device_batch, H, W, C)
    in [-1, 1], number of examples this host reads per epoch).
  """
  hide_gpus_from_tensorflow()
  local_devices, per_device = local_batch_layout(config.batch_size)
  local_batch = local_devices * per_device
  size, channels = config.data.image_size, config.data.channels
  seed = int(np.random.SeedSequence(
      [config.seed, start_step, jax.process_index()]).generate_state(1)[0])

  name = config.data.name
  if name == 'fake':
    ds, decode, num_examples = _fake_source(config, seed)
  elif name == 'folder':
    ds, decode, num_examples = _folder_source(config)
  else:
    ds, decode, num_examples = _tfds_source(config, seed)
  if num_examples < local_batch:
    raise ValueError(
        f'Dataset {name!r} ({config.data.path or "default location"}) has '
        f'{num_examples} examples for this host, fewer than one batch of '
        f'{local_batch}.')

  ds = ds.shuffle(config.data.shuffle_buffer, seed=seed)
  ds = ds.repeat()
  ds = ds.map(lambda record: preprocess(decode(record), size, channels),
              num_parallel_calls=tf.data.AUTOTUNE)
  ds = ds.batch(local_batch, drop_remainder=True)
  ds = ds.map(lambda x: tf.reshape(
      x, (local_devices, per_device, size, size, channels)))
  ds = ds.prefetch(tf.data.AUTOTUNE)
  return ds.as_numpy_iterator(), num_examples
