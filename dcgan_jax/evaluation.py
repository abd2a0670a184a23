"""Sample-quality metrics of a generator: FID and KID in Inception's feature
space, and their offline counterparts in a dataset classifier's.

`Evaluator(config)` loads (or trains) the feature networks and validates
the eval config up front; calling it on a replicated G state generates
eval.num_samples images on the devices, embeds them there (images never
leave the devices) and compares them with the real data's features, which
are computed once and cached under eval.cache_dir.
"""

import hashlib
import json
import math
import os
from typing import Any, Callable

from absl import logging
from flax import jax_utils
import jax
from jax.experimental import multihost_utils
import ml_collections
import numpy as np

from dcgan_jax import classifier
from dcgan_jax import distances
from dcgan_jax import inception
from dcgan_jax import steps

# Metric -> (feature space, distance).
METRICS = {
    'fid': ('inception', 'fd'),
    'kid': ('inception', 'kid'),
    'classifier_fd': ('classifier', 'fd'),
    'classifier_kid': ('classifier', 'kid'),
}


def metric_names(config: Any) -> list[str]:
  """The metrics eval.metrics asks for, checked against the other keys.

  Raises:
    ValueError: naming the key and value that are wrong.
  """
  names = [m.strip() for m in config.eval.metrics.split(',') if m.strip()]
  unknown = [m for m in names if m not in METRICS]
  if unknown:
    raise ValueError(f'config.eval.metrics={config.eval.metrics!r}: unknown '
                     f'{unknown}; choose from {sorted(METRICS)}.')
  if not names:
    return names
  if (any(METRICS[m][0] == 'inception' for m in names) and
      not config.eval.inception_weights):
    raise ValueError(
        f'config.eval.metrics={config.eval.metrics!r} needs Inception '
        'weights: set config.eval.inception_weights to pytorch-fid\'s '
        'weights converted by `python -m dcgan_jax.convert_inception`, or '
        'use classifier_fd,classifier_kid, which need none.')
  if config.eval.best_metric and config.eval.best_metric not in names:
    raise ValueError(f'config.eval.best_metric={config.eval.best_metric!r} '
                     f'is not one of config.eval.metrics={names}.')
  if config.eval.num_samples < 2:
    raise ValueError(f'config.eval.num_samples={config.eval.num_samples} '
                     'must be at least 2.')
  return names


def best_metric(config: Any) -> str:
  """The metric the best checkpoint is chosen by (lower is better)."""
  return config.eval.best_metric or metric_names(config)[0]


def _file_digest(path: str) -> str:
  digest = hashlib.sha256()
  with open(path, 'rb') as f:
    for block in iter(lambda: f.read(1 << 20), b''):
      digest.update(block)
  return digest.hexdigest()[:16]


class Evaluator:
  """Computes config.eval.metrics for generator states."""

  def __init__(self, config: ml_collections.ConfigDict):
    self.config = config
    self.names = metric_names(config)
    per_device = math.ceil(config.eval.batch_size / jax.local_device_count())
    self.layout = (jax.local_device_count(), per_device)
    # Feature space -> (pure features fn, variables, identity for caching).
    self.spaces: dict[str, tuple[Callable, Any, str]] = {}
    spaces = {METRICS[m][0] for m in self.names}
    if 'inception' in spaces:
      path = config.eval.inception_weights
      self.spaces['inception'] = (inception.features,
                                  inception.load_variables(path),
                                  _file_digest(path))
    if 'classifier' in spaces:
      variables, _ = classifier.load_or_train(config)
      self.spaces['classifier'] = (classifier.features, variables,
                                   _file_digest(classifier.default_path(config)))
    self._real: dict[str, np.ndarray] = {}
    self._compiled: dict[str, tuple[Callable, Callable, Any]] = {}

  def _functions(self, space: str) -> tuple[Callable, Callable, Any]:
    """(pmapped embed(images), pmapped embed(G(z))) and replicated
    variables of a feature space."""
    fn, variables, _ = self.spaces[space]
    if space not in self._compiled:
      embed_real = jax.pmap(fn)
      embed_fake = jax.pmap(
          lambda v, g_state, z: fn(v, steps.generate(g_state, z)))
      self._compiled[space] = (embed_real, embed_fake,
                               jax_utils.replicate(variables))
    return self._compiled[space]

  def _num_local(self) -> int:
    return math.ceil(self.config.eval.num_samples / jax.process_count())

  def _gather(self, local: np.ndarray) -> np.ndarray:
    if jax.process_count() == 1:
      return local
    return np.asarray(multihost_utils.process_allgather(local, tiled=True))

  def real_features(self, space: str) -> np.ndarray:
    """Features of eval.num_samples training images, cached on disk."""
    if space in self._real:
      return self._real[space]
    config = self.config
    key = json.dumps({
        'space': space, 'weights': self.spaces[space][2],
        'data': {k: config.data[k] for k in (
            'name', 'path', 'split', 'image_size', 'channels')},
        'num': config.eval.num_samples, 'seed': config.seed,
        'processes': jax.process_count(), 'process': jax.process_index()},
                     sort_keys=True)
    path = os.path.join(
        os.path.expanduser(config.eval.cache_dir),
        f'real_features_{hashlib.sha256(key.encode()).hexdigest()[:16]}.npz')
    if os.path.exists(path):
      with np.load(path, allow_pickle=False) as data:
        local = data['features']
    else:
      local = self._embed_real_data(space)
      os.makedirs(os.path.dirname(path), exist_ok=True)
      np.savez(path + '.tmp.npz', features=local, key=np.array(key))
      os.replace(path + '.tmp.npz', path)
      logging.info('Cached %d real %s features in %s.', len(local), space,
                   path)
    self._real[space] = self._gather(local)
    return self._real[space]

  def _embed_real_data(self, space: str) -> np.ndarray:
    # The pipeline imports TensorFlow: only when real features are computed.
    from dcgan_jax import input_pipeline  # pylint: disable=g-import-not-at-top
    config = ml_collections.ConfigDict(self.config.to_dict())
    config.batch_size = math.prod(self.layout) * jax.process_count()
    config.data.random_flip = False
    batches, num_examples = input_pipeline.create_dataset(config)
    num = self._num_local()
    if num > num_examples:
      logging.warning('config.eval.num_samples=%d exceeds the %d real '
                      'examples per host; real features repeat some.',
                      self.config.eval.num_samples, num_examples)
    embed_real, _, variables = self._functions(space)
    chunks = []
    for _ in range(math.ceil(num / math.prod(self.layout))):
      out = embed_real(variables, next(batches))
      chunks.append(np.asarray(out).reshape(-1, out.shape[-1]))
    return np.concatenate(chunks)[:num]

  def fake_features(self, space: str, g_state: steps.GeneratorState
                    ) -> np.ndarray:
    """Features of eval.num_samples images from a replicated G state; the
    same z every call, so values over training differ by G alone."""
    _, embed_fake, variables = self._functions(space)
    num, batch = self._num_local(), math.prod(self.layout)
    num_batches = math.ceil(num / batch)
    rng = jax.random.fold_in(jax.random.key(self.config.eval.seed),
                             jax.process_index())
    z = jax.random.normal(rng, (num_batches, *self.layout,
                                self.config.model.nz))
    chunks = []
    for i in range(num_batches):
      out = embed_fake(variables, g_state, z[i])
      chunks.append(np.asarray(out).reshape(-1, out.shape[-1]))
    return self._gather(np.concatenate(chunks)[:num])

  def __call__(self, g_state: steps.GeneratorState) -> dict[str, float]:
    """{metric: value} (and '<kid metric>_std') for a replicated G state."""
    results = {}
    eval_config = self.config.eval
    for space in self.spaces:
      real = self.real_features(space)
      fake = self.fake_features(space, g_state)
      for name in self.names:
        if METRICS[name][0] != space:
          continue
        if METRICS[name][1] == 'fd':
          results[name] = distances.frechet_distance_of_features(real, fake)
        else:
          results[name], results[f'{name}_std'] = (
              distances.kernel_inception_distance(
                  real, fake, eval_config.kid_subsets,
                  eval_config.kid_subset_size, eval_config.seed))
    return results
