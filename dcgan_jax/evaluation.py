"""Sample-quality metrics of a generator or of any images: FID, KID,
precision, recall, density, coverage and the Inception Score in
Inception's feature space, and their offline counterparts in a dataset
classifier's.

`Evaluator(config)` loads (or trains) the feature networks and validates
the eval config up front; calling it on a replicated G state generates
eval.num_samples images on the devices, rounds them to uint8 as a PNG
would hold them, embeds them there (images never leave the devices) and
compares them with the real data's features, which are computed once and
cached under eval.cache_dir, or read from a statistics file
(eval.reference_stats, written by `save_stats`). `score_images` compares
images from anywhere (a folder, an .npz) the same way.
"""

import functools
import hashlib
import json
import math
from typing import Any, Callable, Optional

from absl import logging
from flax import jax_utils
import jax
import ml_collections
import numpy as np

from dcgan_jax import classifier
from dcgan_jax import distances
from dcgan_jax import hosts
from dcgan_jax import images as images_lib
from dcgan_jax import inception
from dcgan_jax import paths
from dcgan_jax import steps

# Metric -> (feature space, comparison), for each space the same five
# comparisons; the Inception Score needs Inception's classifier layer.
_COMPARISONS = {'fd': 'fid', 'kid': 'kid', 'precision': 'precision',
                'recall': 'recall', 'density': 'density',
                'coverage': 'coverage'}
METRICS = {
    **{name: ('inception', comparison)
       for comparison, name in _COMPARISONS.items()},
    **{f'classifier_{comparison}': ('classifier', comparison)
       for comparison in _COMPARISONS},
    'inception_score': ('inception', 'is'),
}
# Higher is better for these; lower for the distances.
_HIGHER_IS_BETTER = ('precision', 'recall', 'density', 'coverage', 'is')
_MANIFOLD = ('precision', 'recall', 'density', 'coverage')


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
  inception.check_resize(config.eval.resize)
  for key in ('pr_k', 'dc_k', 'is_splits'):
    if config.eval[key] < 1:
      raise ValueError(f'config.eval.{key}={config.eval[key]} must be '
                       'positive.')
  return names


def best_metric(config: Any) -> str:
  """The metric the best checkpoint is chosen by."""
  return config.eval.best_metric or metric_names(config)[0]


def best_mode(metric: str) -> str:
  """'max' for metrics where higher is better, else 'min'."""
  return 'max' if METRICS[metric][1] in _HIGHER_IS_BETTER else 'min'


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


def _stats_mismatch(path: str, space: str, saved: dict[str, Any],
                    wanted: dict[str, Any]) -> str:
  differences = [f'{key} {saved.get(key)!r} (this evaluation: {value!r})'
                 for key, value in wanted.items() if saved.get(key) != value]
  return (f'{path} holds {space} features made with another '
          f'{" and ".join(differences)}: its numbers would not compare with '
          'these. Make the file again with `python -m dcgan_jax.evaluate '
          '--save_stats` and these settings, or change the settings.')


class Evaluator:
  """Computes config.eval.metrics for generator states or for images.

  Images go through the feature network in global batches of
  eval.batch_size (rounded up to a multiple of the device count); each host
  embeds its rows and the features come back in the same order on any
  number of hosts. Process 0 loads or trains the classifier, reads and
  writes the real-feature cache and computes the metrics, for all.
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
      variables = inception.load_variables(config.eval.inception_weights)
      if 'inception_score' in self.names and not inception.has_logits(
          variables):
        raise ValueError(
            f'config.eval.metrics asks for inception_score, but '
            f'eval.inception_weights={config.eval.inception_weights!r} has '
            'no classifier layer (fc.weight, fc.bias): convert '
            "pytorch-fid's .pth again with `python -m "
            'dcgan_jax.convert_inception`, which keeps it.')
      self.spaces['inception'] = (
          functools.partial(inception.features, resize=config.eval.resize),
          variables)
    if 'classifier' in spaces:
      data = hosts.run_on_chief(
          lambda: classifier.to_bytes(*classifier.load_or_train(config)),
          'load or train the evaluation classifier')
      self.spaces['classifier'] = (classifier.features,
                                   classifier.from_bytes(data)[0])
    self._real: dict[str, np.ndarray] = {}
    self._digests: dict[str, str] = {}
    self._fake_z: list[jax.Array] = []  # Per batch, this host's rows.
    self._compiled: dict[str, tuple[Callable, Callable, Any]] = {}

  def provenance(self, space: str) -> dict[str, Any]:
    """What features of a space depend on, besides the images."""
    if space not in self._digests:
      self._digests[space] = _digest(self.spaces[space][1])
    record = {'extractor': space, 'weights': self._digests[space]}
    if space == 'inception':
      record['resize'] = self.config.eval.resize
    return record

  def _wants_logits(self, space: str) -> bool:
    return space == 'inception' and 'inception_score' in self.names

  def _functions(self, space: str) -> tuple[Callable, Callable, Any]:
    """(pmapped embed(images), pmapped embed(G(z)) with G's EMA weights
    or not, rounded to uint8) and replicated variables of a feature space.
    Both give (features, Inception's logits or None)."""
    fn, variables = self.spaces[space]
    if space not in self._compiled:
      def embed(v, images):
        features = fn(v, images)
        if not self._wants_logits(space):
          return features, None
        return features, inception.logits(v, features)
      embed_fake = jax.pmap(
          lambda v, g_state, z, use_ema: embed(
              v, images_lib.quantize(steps.generate(g_state, z, use_ema))),
          static_broadcasted_argnums=3)
      self._compiled[space] = (jax.pmap(embed), embed_fake,
                               jax_utils.replicate(variables))
    return self._compiled[space]

  def _num_batches(self, num: int) -> int:
    return math.ceil(num / self.global_batch)

  def _in_global_order(self, chunks: list[Any], num: int) -> Any:
    """This host's outputs of each batch -> all outputs, in order."""
    def gather(*arrays):
      local = np.stack([a.reshape(-1, a.shape[-1]) for a in arrays])
      return hosts.gather_rows(local, self.global_batch)[:num]
    return jax.tree.map(gather, *chunks)

  def _cache_path(self, space: str) -> paths.epath.Path:
    config = self.config
    key = json.dumps({
        **self.provenance(space),
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
    """Features of the real images: from eval.reference_stats if set, else
    of eval.num_samples training images, cached on disk."""
    if space in self._real:
      return self._real[space]
    stats_path = self.config.eval.get('reference_stats', '')
    if stats_path:
      self._real[space] = self._features_from_stats(stats_path, space)
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

  def _features_from_stats(self, path: str, space: str) -> np.ndarray:
    arrays = paths.arrays_from_npz(hosts.run_on_chief(
        lambda: paths.path(path).read_bytes(),
        f'read the statistics file {path}'))
    meta = paths.json_from_array(arrays['meta']) if 'meta' in arrays else {}
    if space not in meta.get('spaces', {}):
      raise ValueError(
          f'{path} holds no {space} features (it has '
          f'{sorted(meta.get("spaces", {}))}); the metrics '
          f'{[m for m in self.names if METRICS[m][0] == space]} need them. '
          'Make it with `python -m dcgan_jax.evaluate --save_stats` and '
          'those metrics.')
    saved = meta['spaces'][space]
    wanted = self.provenance(space)
    if {k: saved.get(k) for k in wanted} != wanted:
      raise ValueError(_stats_mismatch(path, space, saved, wanted))
    return arrays[f'{space}/features']

  def _embed_real_data(self, space: str) -> np.ndarray:
    # The pipeline imports TensorFlow: only when real features are computed.
    from dcgan_jax import input_pipeline  # pylint: disable=g-import-not-at-top
    config = ml_collections.ConfigDict(self.config.to_dict())
    config.batch_size = self.global_batch
    config.data.random_flip = False
    num = self.config.eval.num_samples
    batches, num_examples = input_pipeline.create_dataset(config)
    if num > num_examples:
      logging.warning('config.eval.num_samples=%d exceeds the %d real '
                      'examples; real features repeat some.', num,
                      num_examples)
    embed_real, _, variables = self._functions(space)
    return self._in_global_order([
        jax.device_get(embed_real(variables, next(batches))[0])
        for _ in range(self._num_batches(num))], num)

  def _embed_images(self, space: str, images: np.ndarray
                    ) -> tuple[np.ndarray, Optional[np.ndarray]]:
    """(features, logits or None) of host images, uint8 (N, H, W, C)."""
    if jax.process_count() > 1:
      raise ValueError('Scoring images runs in one process.')
    embed, _, variables = self._functions(space)
    num = len(images)
    padded = np.concatenate([images, np.zeros(
        (self._num_batches(num) * self.global_batch - num, *images.shape[1:]),
        images.dtype)])
    return self._in_global_order([
        jax.device_get(embed(variables, batch.reshape(
            *self.layout, *images.shape[1:])))
        for batch in np.split(padded, self._num_batches(num))], num)

  def fake_features(self, space: str, g_state: steps.GeneratorState,
                    use_ema: bool = True
                    ) -> tuple[np.ndarray, Optional[np.ndarray]]:
    """(features, Inception's logits or None) of eval.num_samples images
    from a replicated G state (its EMA weights if it has them and use_ema);
    the same z every call, so values over training differ by G alone."""
    _, embed_fake, variables = self._functions(space)
    num = self.config.eval.num_samples
    if not self._fake_z:
      rows = hosts.local_rows(self.global_batch)
      self._fake_z = [
          eval_z(self.config.eval.seed, i * self.global_batch + rows,
                 self.config.model.nz).reshape(*self.layout, -1)
          for i in range(self._num_batches(num))]
    return self._in_global_order([
        jax.device_get(embed_fake(variables, g_state, z, use_ema))
        for z in self._fake_z], num)

  def _metrics(self, real: dict[str, np.ndarray],
               fake: dict[str, tuple[np.ndarray, Optional[np.ndarray]]],
               suffix: str = '') -> dict[str, float]:
    results = {}
    eval_config = self.config.eval
    manifold = {}
    for name in self.names:
      space, comparison = METRICS[name]
      features, logits = fake[space]
      key = name + suffix
      if comparison == 'fd':
        results[key] = distances.frechet_distance_of_features(real[space],
                                                               features)
      elif comparison == 'kid':
        results[key], results[f'{key}_std'] = (
            distances.kernel_inception_distance(
                real[space], features, eval_config.kid_subsets,
                eval_config.kid_subset_size, eval_config.seed))
      elif comparison == 'is':
        results[key], results[f'{key}_std'] = distances.inception_score(
            logits, eval_config.is_splits)
      else:
        if space not in manifold:
          manifold[space] = distances.precision_recall_density_coverage(
              real[space], features, eval_config.pr_k, eval_config.dc_k)
        results[key] = manifold[space][comparison]
    return results

  def _on_chief(self, compute: Callable[[], dict[str, float]]
                ) -> dict[str, float]:
    return json.loads(hosts.run_on_chief(
        lambda: json.dumps(compute()).encode(), 'compute the metrics'))

  def __call__(self, g_state: steps.GeneratorState) -> dict[str, float]:
    """{metric: value} (and '<kid or IS metric>_std') for a replicated G
    state, of its EMA weights if it has them; with eval.raw_weights also of
    its trained weights, as '<metric>_raw'. The same on every process."""
    real = {space: self.real_features(space) for space in self.spaces}
    weights = {'': True}
    if (g_state.ema_params is not None and
        self.config.eval.get('raw_weights', False)):
      weights['_raw'] = False
    fake = {suffix: {space: self.fake_features(space, g_state, use_ema)
                     for space in self.spaces}
            for suffix, use_ema in weights.items()}
    return self._on_chief(lambda: {
        name: value for suffix in fake
        for name, value in self._metrics(real, fake[suffix], suffix).items()})

  def score_images(self, images: np.ndarray) -> dict[str, float]:
    """The metrics of uint8 images (N, H, W, C) from anywhere, as for a
    generator's."""
    real = {space: self.real_features(space) for space in self.spaces}
    fake = {space: self._embed_images(space, images) for space in self.spaces}
    return self._on_chief(lambda: self._metrics(real, fake))

  def save_stats(self, path: paths.PathLike,
                 images: Optional[np.ndarray] = None,
                 source: str = '') -> dict[str, Any]:
    """Writes a statistics file of the real data (or of `images`) for every
    feature space the metrics use: features, mean and covariance, and
    under 'meta' their provenance. Returns the meta record."""
    meta = {'source': source or {k: self.config.data[k] for k in (
        'name', 'path', 'split', 'image_size', 'channels')}, 'spaces': {}}
    arrays = {}
    for space in self.spaces:
      if images is None:
        features = self.real_features(space)
      else:
        features = self._embed_images(space, images)[0]
      mean, covariance = distances.gaussian_statistics(features)
      arrays.update({f'{space}/features': features, f'{space}/mu': mean,
                     f'{space}/sigma': covariance})
      meta['spaces'][space] = {**self.provenance(space),
                               'num_images': len(features)}
    arrays['meta'] = paths.json_to_array(meta)
    if hosts.is_chief():
      paths.write_npz(path, arrays)
    return meta
