"""A dataset's labeled images in memory, for the evaluation classifier."""

from typing import Any

import numpy as np
import tensorflow as tf

from dcgan_jax.data import decoding
from dcgan_jax.data import sources


def load_labeled(config: Any, split: str) -> tuple[np.ndarray, np.ndarray,
                                                   int]:
  """A labeled split, preprocessed as for training.

  TFDS datasets with a 'label' feature, Debian's Fashion-MNIST files, or a
  folder with one subfolder per class.

  Returns:
    (uint8 images (N, S, S, C), int32 labels (N,), number of classes).

  Raises:
    ValueError: if the configured dataset has no labels.
  """
  source = sources.open_source(config, split, labeled=True)
  size, channels = config.data.image_size, config.data.channels
  ds = source.labeled_records().map(
      lambda record, label: (
          tf.cast(tf.round((decoding.preprocess(source.decode(record), size,
                                                channels) + 1) * 127.5),
                  tf.uint8), label),
      num_parallel_calls=tf.data.AUTOTUNE).batch(1024)
  batches = list(ds.as_numpy_iterator())
  return (np.concatenate([b[0] for b in batches]),
          np.concatenate([b[1] for b in batches]), source.num_classes)
