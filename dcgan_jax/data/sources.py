"""Where a dataset's records come from: TFDS, a folder of images, Debian's
Fashion-MNIST files or random images, with labels where the evaluation
classifier needs them.

A Source is one split's records in a fixed order and how to decode them;
`input_pipeline` shuffles, shares and batches them. Records stay encoded
(file names, compressed bytes) until after the shuffle, so a shuffle holds
no pixels.
"""

import dataclasses
from typing import Any, Callable, Optional

from absl import logging
import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds

from dcgan_jax.data import decoding
from dcgan_jax.data import idx_files
from dcgan_jax.data import image_files
from dcgan_jax.gan import noise
from dcgan_jax.output import paths

FAKE_DATASET_SIZE = 1024
# Folder datasets with class subfolders: every n-th file of each class is
# held out as the 'test' split of the labeled data.
FOLDER_TEST_EVERY = 10
NO_LABEL = -1


def hide_gpus_from_tensorflow() -> None:
  """Keeps TensorFlow off the GPUs, which belong to JAX."""
  if tf.config.get_visible_devices('GPU'):
    tf.config.set_visible_devices([], 'GPU')


@dataclasses.dataclass(frozen=True)
class Source:
  """One split's records in a fixed order, and how to decode a record.

  Either a `table`: every record of the split (file names or uint8 images),
  the same on every host and read by index, so that any host can read any
  row of a global batch; or a `stream`: this host's share of the split, read
  in order (TFDS, whose hosts read disjoint files).
  """
  decode: Callable[[tf.Tensor], tf.Tensor]  # Record -> uint8 (H, W, C).
  num_examples: int  # In the table, or in this host's stream.
  table: Optional[np.ndarray] = None
  labels: Optional[np.ndarray] = None  # The table's, if labeled.
  stream: Optional[tf.data.Dataset] = None  # (record, label) elements.
  num_classes: int = 0
  shuffle_buffer: int = 0  # Stream records shuffled together in an epoch.

  def labeled_records(self) -> tf.data.Dataset:
    """(record, label) in the fixed order; label NO_LABEL if unlabeled."""
    if self.stream is not None:
      return self.stream
    labels = (self.labels if self.labels is not None
              else np.full(self.num_examples, NO_LABEL, np.int32))
    return tf.data.Dataset.from_tensor_slices((self.table, labels))


def _identity(image: tf.Tensor) -> tf.Tensor:
  return image


def _array_source(images: np.ndarray, labels: Optional[np.ndarray] = None,
                  num_classes: int = 0) -> Source:
  return Source(_identity, len(images), table=images, labels=labels,
                num_classes=num_classes)


def _file_decoder(root: str, image_size: int
                  ) -> Callable[[tf.Tensor], tf.Tensor]:
  """File name -> uint8 RGB image. TF reads local files itself; other
  paths (buckets) are read through the path layer."""
  decode = decoding.encoded_decoder(image_size)
  if paths.is_local(root):
    return lambda name: decode(tf.io.read_file(name))

  def read(name: tf.Tensor) -> bytes:
    return paths.path(name.numpy().decode()).read_bytes()

  return lambda name: decode(tf.py_function(read, [name], tf.string))


def _folder_source(config: Any, split: str, labeled: bool) -> Source:
  """Every readable image under data.path; labeled: the top-level
  subfolders are the classes, every FOLDER_TEST_EVERY-th file of a class
  in 'test'."""
  root = config.data.path
  files = image_files.check_image_files(
      image_files.list_image_files(root), config.data.max_bad_fraction)
  decode = _file_decoder(root, config.data.image_size)
  if not labeled:
    return Source(decode, len(files), table=np.array(files))
  top = paths.path(root)
  parts = [paths.path(f).relative_to(top).parts for f in files]
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
  seen = {label: 0 for label in label_of.values()}  # Files so far, in order.
  chosen, labels = [], []
  for f, p in zip(files, parts):
    label = label_of[p[0]]
    if (seen[label] % FOLDER_TEST_EVERY == 0) == (split == 'test'):
      chosen.append(f)
      labels.append(label)
    seen[label] += 1
  return Source(decode, len(chosen), table=np.array(chosen),
                labels=np.array(labels, np.int32), num_classes=len(classes))


def _missing_tfds_message(config: Any, split: str, error: Exception) -> str:
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
             f'({idx_files.DEBIAN_FASHION_MNIST_DIR})')
  return (f'TFDS dataset {name!r} (split {split!r}) was not found in '
          f'data_dir {data_dir!r}: {hint}. ({type(error).__name__}: {error})')


def _tfds_source(config: Any, split: str, labeled: bool,
                 shard: Optional[tuple[int, int]]) -> Source:
  """A TFDS split (with shard=(index, count): that host's disjoint share of
  its files), or for a missing fashion_mnist Debian's IDX files."""
  name = config.data.name
  tfds_split = split if shard is None else tfds.split_for_jax_process(
      split, process_index=shard[0], process_count=shard[1],
      drop_remainder=True)
  try:
    # Files in a fixed order: the pipeline's own seeded shuffle makes each
    # epoch's order, so that any step's batch can be found again.
    ds, info = tfds.load(
        name, split=tfds_split, data_dir=config.data.path or None,
        download=config.data.download, shuffle_files=False, with_info=True,
        decoders={'image': tfds.decode.SkipDecoding()})
  except (tfds.core.DatasetNotFoundError, AssertionError) as e:
    debian = idx_files.DEBIAN_FASHION_MNIST_DIR
    if name == 'fashion_mnist' and paths.path(debian).is_dir():
      logging.info('No prepared TFDS fashion_mnist; reading the IDX files in '
                   '%s.', debian)
      return _array_source(idx_files.read_images(debian, split),
                           idx_files.read_labels(debian, split),
                           idx_files.NUM_CLASSES)
    raise FileNotFoundError(_missing_tfds_message(config, split, e)) from e
  num_classes = 0
  if labeled:
    if 'label' not in info.features:
      raise ValueError(f'TFDS dataset {name!r} has no \'label\' feature to '
                       'train a classifier on.')
    num_classes = info.features['label'].num_classes
  num_examples = int(ds.cardinality())
  return Source(
      decoding.encoded_decoder(config.data.image_size), num_examples,
      stream=ds.map(lambda x: (x['image'], tf.cast(
          x['label'], tf.int32) if labeled else tf.constant(NO_LABEL))),
      num_classes=num_classes,
      shuffle_buffer=min(num_examples, config.data.shuffle_buffer))


def open_source(config: Any, split: str, labeled: bool = False,
                shard: Optional[tuple[int, int]] = None) -> Source:
  """The records of config.data's dataset.

  Args:
    config: uses the `data` fields (and `seed`: `noise.data_seed`).
    split: TFDS split, or for labeled folders and Debian's files 'train' or
      'test'.
    labeled: whether labels are needed (raises ValueError if there are none).
    shard: (process index, process count): TFDS reads only that host's
      share of the files. Tables hold the whole split regardless.
  """
  hide_gpus_from_tensorflow()
  name = config.data.name
  if name == 'fake':
    if labeled:
      raise ValueError("config.data.name='fake' has no labels to train a "
                       'classifier on.')
    size, channels = config.data.image_size, config.data.channels
    rng = np.random.default_rng(noise.data_seed(config))
    return _array_source(rng.integers(
        0, 256, (FAKE_DATASET_SIZE, size, size, channels), dtype=np.uint8))
  if name == 'folder':
    return _folder_source(config, split, labeled)
  return _tfds_source(config, split, labeled, shard)

