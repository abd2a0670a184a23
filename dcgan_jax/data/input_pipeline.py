"""The training input: every global batch, each host reading its rows.

Tables (folders, Debian's files, random images) are read by position:
global batch s is positions [s * B, (s + 1) * B) of an endless
stream of records in which epoch e is the whole table in an order drawn
from (seed, e) (a stateless random permutation, so any position is found
without reading the ones before it). Each host reads the rows its devices
train on (`hosts.local_rows`), so the global batch at every step is the
same images in the same order whatever the number of hosts, and a run
resumed after s batches, on any number of hosts, continues exactly there.

TFDS datasets are streams: each host reads its own share of the files
(`tfds.split_for_jax_process`) and shuffles each epoch of it with a seed of
(seed, host, epoch); the global batch is the hosts' batches together, so it
depends on the number of hosts (resumes are exact on the same number).

A table whose images, preprocessed, take at most config.data.cache_mb is
held in memory: each image is decoded the first time it is read and kept,
so later epochs decode nothing; the batches are the same either way.

Either way the batches are a function of the config and their number, and
come as (local_devices, per_device_batch, H, W, C) float32 numpy arrays in
[-1, 1]; a step of several D updates takes that many consecutive batches
together.
"""

from typing import Any, Iterator

from absl import logging
import jax
import numpy as np
import tensorflow as tf

from dcgan_jax.data import decoding
from dcgan_jax.data import sources
from dcgan_jax.gan import noise
from dcgan_jax.run import hosts


def _table_steps(source: sources.Source, config: Any, start_batch: int
                 ) -> tf.data.Dataset:
  """Per global batch, (positions, table indices) of this host's rows."""
  n = source.num_examples
  rows = tf.constant(hosts.local_rows(config.batch_size), tf.int64)
  seed = tf.constant(noise.data_seed(config), tf.int64)

  def index(position):
    # Epoch position // n is the table in the order drawn from (seed, epoch).
    return tf.random.experimental.index_shuffle(
        position % n, seed=tf.stack([seed, position // n]),
        max_index=tf.constant(n - 1, tf.int64))

  def step_rows(step):
    positions = step * config.batch_size + rows
    return positions, tf.map_fn(index, positions)

  return tf.data.Dataset.range(start_batch, 2**62).map(step_rows)


def _cache_bytes(config: Any, source: sources.Source) -> int:
  """What the table's preprocessed float32 images take in memory."""
  size, channels = config.data.image_size, config.data.channels
  return source.num_examples * size * size * channels * 4


def _cached(config: Any, source: sources.Source) -> bool:
  """Whether the table's images are held in memory once decoded."""
  return (source.table is not None and
          _cache_bytes(config, source) <= config.data.cache_mb * 2**20)


class _TableImages:
  """Table index -> preprocessed image; with the table held in memory
  (`_cached`), each image is decoded the first time it is read and kept."""

  def __init__(self, config: Any, source: sources.Source):
    self._config, self._source = config, source
    self._table = tf.constant(source.table)
    self._held = self._ready = None
    if _cached(config, source):
      size, channels = config.data.image_size, config.data.channels
      self._held = tf.Variable(
          tf.zeros((source.num_examples, size, size, channels)),
          trainable=False)
      self._ready = tf.Variable(tf.zeros(source.num_examples, tf.bool),
                                trainable=False)

  def _decoded(self, index: tf.Tensor) -> tf.Tensor:
    return decoding.preprocess(self._source.decode(self._table[index]),
                               self._config.data.image_size,
                               self._config.data.channels)

  def __call__(self, index: tf.Tensor) -> tf.Tensor:
    if self._held is None:
      return self._decoded(index)

    def decode_and_keep():
      image = self._decoded(index)
      # The image is stored before it is marked ready: a concurrent reader
      # of a ready index sees it whole. Reads and writes touch one row
      # (`sparse_read`, `scatter_update`), never copy the whole table.
      with tf.control_dependencies([self._held.scatter_update(
          tf.IndexedSlices(image[None], index[None]))]):
        with tf.control_dependencies([self._ready.scatter_update(
            tf.IndexedSlices(tf.constant([True]), index[None]))]):
          return tf.identity(image)

    return tf.cond(self._ready.sparse_read(index),
                   lambda: self._held.sparse_read(index), decode_and_keep)


def _epoch_seed(seed: int, epoch: tf.Tensor) -> tf.Tensor:
  return tf.constant(seed, tf.int64) * 1_000_003 + tf.cast(epoch, tf.int64)


def _stream_steps(source: sources.Source, seed: int, start_batch: int,
                  local_batch: int) -> tf.data.Dataset:
  """Per global batch, (positions, records) of this host's stream: epoch e
  is its share in an order drawn from (seed, e)."""
  n = source.num_examples
  first = start_batch * local_batch  # Position in this host's stream.
  first_epoch = first // n
  ds = tf.data.Dataset.range(first_epoch, 2**62).flat_map(
      lambda epoch: source.stream.shuffle(
          source.shuffle_buffer, seed=_epoch_seed(seed, epoch),
          reshuffle_each_iteration=False))
  ds = ds.skip(first - first_epoch * n).enumerate(start=first)
  return ds.map(lambda position, example: (position, example[0])).batch(
      local_batch, drop_remainder=True)


def _open(config: Any) -> tuple[sources.Source, int]:
  """The training split's source and its examples per epoch over all hosts."""
  source = sources.open_source(
      config, config.data.split,
      shard=(jax.process_index(), jax.process_count()))
  if source.table is not None:
    return source, source.num_examples
  return source, source.num_examples * jax.process_count()


def create_dataset(config: Any, start_batch: int = 0,
                   batches_per_step: int = 1
                   ) -> tuple[Iterator[np.ndarray], int]:
  """This host's endless stream of training batches from `start_batch` on.

  Args:
    config: uses `batch_size`, the `data` fields and `seed` where
      `data.seed` is -1 (`noise.data_seed`).
    start_batch: the number of global batches already trained on.
    batches_per_step: consecutive global batches delivered together (one
      per D update of a step).

  Returns:
    (iterator of float32 arrays (local_devices, per_device_batch, H, W, C)
    in [-1, 1], with batches_per_step > 1 (local_devices,
    batches_per_step, per_device_batch, H, W, C); number of examples per
    epoch over all hosts).
  """
  local_devices, per_device = hosts.local_batch_layout(config.batch_size)
  local_batch = local_devices * per_device
  size, channels = config.data.image_size, config.data.channels
  source, num_examples = _open(config)
  where = config.data.path or 'default location'
  if source.table is not None:
    needed, seed, whose = config.batch_size, noise.data_seed(config), ''
    steps = _table_steps(source, config, start_batch)
    image_of = _TableImages(config, source)  # Of a table index.
  else:
    needed, whose = local_batch, ' for this host'
    seed = noise.data_seed(config) + 7919 * jax.process_index()
    steps = _stream_steps(source, seed, start_batch, local_batch)
    image_of = lambda record: decoding.preprocess(  # Of an encoded record.
        source.decode(record), size, channels)
  if source.num_examples < needed:
    raise ValueError(
        f'Dataset {config.data.name!r} ({where}) has {source.num_examples} '
        f'examples{whose}, fewer than one batch of {needed}.')
  logging.info('%s', _describe(config, source, num_examples))

  def load(position, record):
    image = image_of(record)
    if config.data.random_flip:
      image = tf.image.stateless_random_flip_left_right(
          image, seed=tf.stack([tf.constant(seed, tf.int64), position]))
    return image

  def step_batch(positions, records):
    # A file that passed the start-up scan but still fails to decode (damage
    # inside it) is dropped with a logged warning, and the step's other
    # images fill its place: the batch stays a function of the step.
    images = tf.data.Dataset.from_tensor_slices((positions, records)).map(
        load).ignore_errors(log_warning=True)
    filled = images.repeat().take(local_batch).batch(local_batch)
    # A step none of whose images decode gives an empty batch, refused below.
    return filled.concatenate(tf.data.Dataset.from_tensors(
        tf.zeros((0, size, size, channels)))).take(1)

  def device_layout(batch):
    with tf.control_dependencies([tf.debugging.assert_equal(
        tf.shape(batch)[0], local_batch, message=(
            f'no image of a step of {config.data.name!r} ({where}) could be '
            'read and decoded'))]):
      return tf.reshape(batch, (local_devices, per_device, size, size,
                                channels))

  # Steps decoded in parallel, delivered in order.
  ds = steps.interleave(step_batch, num_parallel_calls=tf.data.AUTOTUNE,
                        deterministic=True)
  ds = ds.map(device_layout)
  if batches_per_step > 1:
    ds = ds.batch(batches_per_step).map(
        lambda batches: tf.transpose(batches, (1, 0, 2, 3, 4, 5)))
  ds = ds.prefetch(tf.data.AUTOTUNE)
  return ds.as_numpy_iterator(), num_examples


def create_datasets(configs: list[Any], start_batch: int = 0,
                    batches_per_step: int = 1
                    ) -> tuple[Iterator[np.ndarray], int]:
  """`create_dataset` of each config (a sweep's members with their own data
  order), their batches stacked on an axis after the devices' (local_devices,
  members, ...)."""
  streams = [create_dataset(config, start_batch, batches_per_step)
             for config in configs]
  batches = (np.stack(step, axis=1)
             for step in zip(*(stream for stream, _ in streams)))
  return batches, streams[0][1]


def _spans(rows: np.ndarray) -> str:
  """[0 1 2 5 6] -> '0-2, 5-6'."""
  spans, start = [], rows[0]
  for previous, row in zip(rows, [*rows[1:], None]):
    if row != previous + 1:
      spans.append(f'{start}-{previous}' if previous != start else
                   f'{start}')
      start = row
  return ', '.join(spans)


def _describe(config: Any, source: sources.Source, num_examples: int) -> str:
  local_devices, per_device = hosts.local_batch_layout(config.batch_size)
  if source.table is not None:
    share = (f'rows {_spans(hosts.local_rows(config.batch_size))} of each '
             f'global batch, drawn from all {num_examples} examples')
    if _cached(config, source):
      share += (f', held in memory once decoded '
                f'({_cache_bytes(config, source) / 2**20:.1f} MiB)')
  else:
    share = (f'its own {source.num_examples} of the {num_examples} '
             'examples (the TFDS files of this host)')
  return (f'Process {jax.process_index()} of {jax.process_count()}: '
          f'{local_devices} local devices of {jax.device_count()} (pmap axis '
          f'indices {", ".join(map(str, hosts.local_axis_indices()))}); '
          f'global batch {config.batch_size} = {jax.device_count()} devices x '
          f'{per_device}; this host reads {local_devices * per_device} '
          f'images per step: {share}.')


def describe_layout(config: Any) -> str:
  """This process's place in the run: devices, batch and data share. Opens
  the dataset (listing and checking a folder's files) without decoding it.

  Raises:
    ValueError: if the device count does not divide the global batch, or
      the dataset cannot be opened.
  """
  hosts.local_batch_layout(config.batch_size)
  return _describe(config, *_open(config))
