"""A small classifier trained on the dataset's labels, whose penultimate
layer is the feature space of the offline metrics (classifier_fd,
classifier_kid): usable where Inception's weights cannot be downloaded.

Trained once per dataset and shape and cached as a .npz (weights and, under
'meta', a JSON record of its dataset and test accuracy); loading never
unpickles anything.
"""

import hashlib
import time
from typing import Any

from absl import logging
from flax import traverse_util
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

from dcgan_jax.output import paths

FEATURE_DIM = 128


class Classifier(nn.Module):
  """Images (B, S, S, C), uint8 or in [-1, 1] -> (logits, features)."""
  num_classes: int

  @nn.compact
  def __call__(self, x):
    if x.dtype == jnp.uint8:
      x = x.astype(jnp.float32) / 127.5 - 1
    for features in (32, 64, 128):
      x = nn.relu(nn.Conv(features, (3, 3), strides=2)(x))
    features = nn.relu(nn.Dense(FEATURE_DIM)(x.mean(axis=(1, 2))))
    return nn.Dense(self.num_classes)(features), features


def features(variables: dict[str, Any], images: jax.Array) -> jax.Array:
  """(B, FEATURE_DIM) features. Pure: jit or pmap it."""
  num_classes = variables['params']['Dense_1']['bias'].shape[0]
  return Classifier(num_classes).apply(variables, images)[1]


def _data_path(config: Any) -> str:
  return str(paths.path(config.data.path)) if config.data.path else ''


def default_path(config: Any) -> paths.epath.Path:
  """eval.classifier_path, else one file per dataset, location and shape
  under eval.cache_dir."""
  if config.eval.classifier_path:
    return paths.path(config.eval.classifier_path)
  data = config.data
  where = hashlib.sha1(_data_path(config).encode()).hexdigest()[:8]
  name = data.name.replace('/', '_')
  return paths.path(config.eval.cache_dir) / (
      f'classifier_{name}_{where}_{data.image_size}x{data.image_size}x'
      f'{data.channels}.npz')


def _accuracy(variables, images, labels, batch_size=1000) -> float:
  apply = jax.jit(lambda v, x: Classifier(
      v['params']['Dense_1']['bias'].shape[0]).apply(v, x)[0].argmax(-1))
  predictions = np.concatenate([
      np.asarray(apply(variables, images[i:i + batch_size]))
      for i in range(0, len(images), batch_size)])
  return float(np.mean(predictions == labels))


def train(config: Any, train_data: tuple[np.ndarray, np.ndarray],
          test_data: tuple[np.ndarray, np.ndarray],
          num_classes: int) -> tuple[dict[str, Any], float]:
  """Trains with Adam on the train split; returns (variables, test
  accuracy)."""
  images, labels = train_data
  batch_size = min(128, len(images))
  model = Classifier(num_classes)
  rng = np.random.default_rng(config.seed)
  variables = model.init(jax.random.key(config.seed), images[:1])
  tx = optax.adam(1e-3)
  opt_state = tx.init(variables)

  @jax.jit
  def step(variables, opt_state, x, y):
    def loss_fn(v):
      logits = model.apply(v, x)[0]
      return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()
    loss, grads = jax.value_and_grad(loss_fn)(variables)
    updates, opt_state = tx.update(grads, opt_state)
    return optax.apply_updates(variables, updates), opt_state, loss

  start = time.time()
  for epoch in range(config.eval.classifier_epochs):
    order = rng.permutation(len(images))
    for i in range(0, len(order) - batch_size + 1, batch_size):
      batch = order[i:i + batch_size]
      variables, opt_state, loss = step(variables, opt_state, images[batch],
                                        labels[batch])
    logging.info('Classifier epoch %d: loss %.4f (%.0f s).', epoch + 1,
                 float(loss), time.time() - start)
  return variables, _accuracy(variables, *test_data)


def to_bytes(variables: dict[str, Any], meta: dict[str, Any]) -> bytes:
  """Weights and meta (JSON) as the bytes of one .npz."""
  flat = {'/'.join(k.key for k in p): np.asarray(v) for p, v in
          jax.tree_util.tree_leaves_with_path(variables)}
  flat['meta'] = paths.json_to_array(meta)
  return paths.npz_bytes(flat)


def from_bytes(data: bytes) -> tuple[dict[str, Any], dict[str, Any]]:
  """(variables, meta) from to_bytes(); loading unpickles nothing."""
  flat = paths.arrays_from_npz(data)
  meta = paths.json_from_array(flat.pop('meta'))
  return traverse_util.unflatten_dict(flat, sep='/'), meta


def save(path: paths.PathLike, variables: dict[str, Any],
         meta: dict[str, Any]) -> None:
  """Writes weights and meta to one .npz, atomically."""
  with paths.atomic_write(path) as f:
    f.write(to_bytes(variables, meta))


def load(path: paths.PathLike) -> tuple[dict[str, Any], dict[str, Any]]:
  """(variables, meta) from a file written by save()."""
  try:
    return from_bytes(paths.path(path).read_bytes())
  except (OSError, ValueError, KeyError) as e:
    raise ValueError(f'{path} is not a classifier written by dcgan_jax: {e}'
                     ) from e


def describe(config: Any) -> dict[str, Any]:
  """What a cached classifier must have been trained on to be reused."""
  data = config.data
  return {'data.name': data.name, 'data.path': _data_path(config),
          'data.image_size': data.image_size, 'data.channels': data.channels}


def train_and_save(config: Any) -> tuple[dict[str, Any], dict[str, Any]]:
  """Trains on the configured dataset's labels and caches the result."""
  # The data imports TensorFlow: only here, not for using a classifier.
  from dcgan_jax.data import labeled_data  # pylint: disable=g-import-not-at-top
  train_images, train_labels, num_classes = labeled_data.load_labeled(
      config, 'train')
  test_data = labeled_data.load_labeled(config, 'test')[:2]
  logging.info('Training the evaluation classifier on %d images (%d '
               'classes), testing on %d.', len(train_images), num_classes,
               len(test_data[0]))
  variables, accuracy = train(config, (train_images, train_labels), test_data,
                              num_classes)
  meta = {**describe(config), 'num_classes': num_classes,
          'test_accuracy': accuracy, 'num_train': len(train_images),
          'num_test': len(test_data[0]),
          'epochs': config.eval.classifier_epochs}
  path = default_path(config)
  save(path, variables, meta)
  logging.info('Classifier test accuracy %.4f; saved to %s.', accuracy, path)
  return variables, meta


def check_accuracy(meta: dict[str, Any], path: str, config: Any) -> None:
  """Refuses a classifier below eval.min_classifier_accuracy."""
  if meta['test_accuracy'] < config.eval.min_classifier_accuracy:
    raise ValueError(
        f'The classifier {path} has test accuracy '
        f'{meta["test_accuracy"]:.4f}, below config.eval.'
        f'min_classifier_accuracy={config.eval.min_classifier_accuracy}: its '
        'features would not measure much. Train a better one with `python -m '
        'dcgan_jax.train_classifier --config=... '
        '--config.eval.classifier_epochs=N`, or lower the threshold.')


def load_or_train(config: Any) -> tuple[dict[str, Any], dict[str, Any]]:
  """The cached classifier for the configured data, trained if missing.

  Raises:
    ValueError: if the cached file was trained on other data, or its
      accuracy is below eval.min_classifier_accuracy.
  """
  path = default_path(config)
  if path.exists():
    variables, meta = load(path)
    wanted = describe(config)
    if {k: meta.get(k) for k in wanted} != wanted:
      raise ValueError(
          f'The classifier {path} was trained on '
          f'{ {k: meta.get(k) for k in wanted} }, not on {wanted}; set '
          'config.eval.classifier_path to another file.')
    logging.info('Using the classifier %s (test accuracy %.4f).', path,
                 meta['test_accuracy'])
  else:
    variables, meta = train_and_save(config)
  check_accuracy(meta, path, config)
  return variables, meta
