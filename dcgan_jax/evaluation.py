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
from typing import Any, Callable

from absl import logging
from flax import jax_utils
import jax
import ml_collections
import numpy as np

from dcgan_jax import classifier
from dcgan_jax import distances
from dcgan_jax import hosts
from dcgan_jax import inception
from dcgan_jax import paths
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


def _digest(variables: Any) -> str:
  """Identifies a feature network's weights, for the feature cache."""
  digest = hashlib.sha256()
  for leaf in jax.tree.leaves(variables):
    digest.update(np.asarray(leaf).tobytes())
  return digest.hexdigest()[:16]


def eval_z(seed: int, indices: np.ndarray, nz: int) -> jax.Array:
  """z of the generated images with these indices: image i's z comes from
  (seed, i) alone, whatever the batch or the devices computing it."""
  key = jax.random.key(seed)
  return jax.vmap(lambda i: jax.random.normal(jax.random.fold_in(key, i),
                                              (nz,)))(indices)


class Evaluator:
  """Computes config.eval.metrics for generator states.

  Images go through the feature network in global batches of
  eval.batch_size (rounded up to a multiple of the device count); each host
  embeds its rows and the features come back in the same order on any
  number of hosts. Process 0 loads or trains the classifier, reads and
  writes the real-feature cache and computes the distances, for all.
  """

  def __init__(self, config: ml_collections.ConfigDict):
    self.config = config
    self.names = metric_names(config)
    per_device = math.ceil(config.eval.batch_size / jax.device_count())
    self.layout = (jax.local_device_count(), per_device)
    self.global_batch = per_device * jax.device_count()
    # Feature space -> (pure features fn, variables).
    self.spaces: dict[str, tuple[Callable, Any]] = {}
    spaces = {METRICS[m][0] for m in self.names}
    if 'inception' in spaces:
      self.spaces['inception'] = (
          inception.features,
          inception.load_variables(config.eval.inception_weights))
    if 'classifier' in spaces:
      data = hosts.run_on_chief(
          lambda: classifier.to_bytes(*classifier.load_or_train(config)),
          'load or train the evaluation classifier')
      self.spaces['classifier'] = (classifier.features,
                                   classifier.from_bytes(data)[0])
    self._real: dict[str, np.ndarray] = {}
    self._fake_z: list[jax.Array] = []  # Per batch, this host's rows.
    self._compiled: dict[str, tuple[Callable, Callable, Any]] = {}

  def _functions(self, space: str) -> tuple[Callable, Callable, Any]:
    """(pmapped embed(images), pmapped embed(G(z)) with G's EMA weights
    or not) and replicated variables of a feature space."""
    fn, variables = self.spaces[space]
    if space not in self._compiled:
      embed_real = jax.pmap(fn)
      embed_fake = jax.pmap(
          lambda v, g_state, z, use_ema: fn(v, steps.generate(g_state, z,
                                                               use_ema)),
          static_broadcasted_argnums=3)
      self._compiled[space] = (embed_real, embed_fake,
                               jax_utils.replicate(variables))
    return self._compiled[space]

  def _num_batches(self) -> int:
    return math.ceil(self.config.eval.num_samples / self.global_batch)

  def _in_global_order(self, chunks: list[np.ndarray]) -> np.ndarray:
    """This host's features of each batch -> all features, in order."""
    local = np.stack([c.reshape(-1, c.shape[-1]) for c in chunks])
    return hosts.gather_rows(local, self.global_batch)[
        :self.config.eval.num_samples]

  def _cache_path(self, space: str) -> paths.epath.Path:
    config = self.config
    key = json.dumps({
        'space': space, 'weights': _digest(self.spaces[space][1]),
        'data': {k: config.data[k] for k in (
            'name', 'path', 'split', 'image_size', 'channels')},
        'num': config.eval.num_samples, 'seed': config.seed,
        # Tables give the same images on any number of hosts.
        'processes': (jax.process_count()
                      if hosts.reads_own_files(config) else 1)},
                     sort_keys=True)
    return paths.path(config.eval.cache_dir) / (
        f'real_features_{hashlib.sha256(key.encode()).hexdigest()[:16]}.npz')

  def real_features(self, space: str) -> np.ndarray:
    """Features of eval.num_samples training images, cached on disk."""
    if space in self._real:
      return self._real[space]
    path = self._cache_path(space)
    cached = hosts.run_on_chief(
        lambda: path.read_bytes() if path.exists() else b'',
        'read the cached real features')
    if cached:
      features = paths.arrays_from_npz(cached)['features']
    else:
      features = self._embed_real_data(space)
      if hosts.is_chief():
        paths.write_npz(path, {'features': features})
        logging.info('Cached %d real %s features in %s.', len(features),
                     space, path)
    self._real[space] = features
    return features

  def _embed_real_data(self, space: str) -> np.ndarray:
    # The pipeline imports TensorFlow: only when real features are computed.
    from dcgan_jax import input_pipeline  # pylint: disable=g-import-not-at-top
    config = ml_collections.ConfigDict(self.config.to_dict())
    config.batch_size = self.global_batch
    config.data.random_flip = False
    batches, num_examples = input_pipeline.create_dataset(config)
    if self.config.eval.num_samples > num_examples:
      logging.warning('config.eval.num_samples=%d exceeds the %d real '
                      'examples; real features repeat some.',
                      self.config.eval.num_samples, num_examples)
    embed_real, _, variables = self._functions(space)
    return self._in_global_order([
        np.asarray(embed_real(variables, next(batches)))
        for _ in range(self._num_batches())])

  def fake_features(self, space: str, g_state: steps.GeneratorState,
                    use_ema: bool = True) -> np.ndarray:
    """Features of eval.num_samples images from a replicated G state (its
    EMA weights if it has them and use_ema); the same z every call, so
    values over training differ by G alone."""
    _, embed_fake, variables = self._functions(space)
    if not self._fake_z:
      rows = hosts.local_rows(self.global_batch)
      self._fake_z = [
          eval_z(self.config.eval.seed, i * self.global_batch + rows,
                 self.config.model.nz).reshape(*self.layout, -1)
          for i in range(self._num_batches())]
    return self._in_global_order([
        np.asarray(embed_fake(variables, g_state, z, use_ema))
        for z in self._fake_z])

  def _distances(self, real: dict[str, np.ndarray],
                 fake: dict[str, np.ndarray], suffix: str = ''
                 ) -> dict[str, float]:
    results = {}
    eval_config = self.config.eval
    for name in self.names:
      space, distance = METRICS[name]
      name += suffix
      if distance == 'fd':
        results[name] = distances.frechet_distance_of_features(
            real[space], fake[space])
      else:
        results[name], results[f'{name}_std'] = (
            distances.kernel_inception_distance(
                real[space], fake[space], eval_config.kid_subsets,
                eval_config.kid_subset_size, eval_config.seed))
    return results

  def __call__(self, g_state: steps.GeneratorState) -> dict[str, float]:
    """{metric: value} (and '<kid metric>_std') for a replicated G state,
    of its EMA weights if it has them; with eval.raw_weights also of its
    trained weights, as '<metric>_raw'. The same on every process."""
    real = {space: self.real_features(space) for space in self.spaces}
    weights = {'': True}
    if (g_state.ema_params is not None and
        self.config.eval.get('raw_weights', False)):
      weights['_raw'] = False
    fake = {suffix: {space: self.fake_features(space, g_state, use_ema)
                     for space in self.spaces}
            for suffix, use_ema in weights.items()}

    def distances() -> bytes:
      return json.dumps({
          name: value for suffix in fake
          for name, value in self._distances(real, fake[suffix],
                                             suffix).items()}).encode()
    return json.loads(hosts.run_on_chief(distances, 'compute the metrics'))
