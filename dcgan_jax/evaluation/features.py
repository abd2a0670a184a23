"""Feature spaces and their features: the feature networks a config's
metrics need (pytorch-fid's Inception, the dataset classifier), embedding
real data (cached on disk per data and weights), statistics files, images
from anywhere, and a generator's samples on the devices.

Images go through a feature network in global batches of eval.batch_size
(rounded up to a multiple of the device count); each host embeds its rows
and the features come back in the same order on any number of hosts.
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

from dcgan_jax.evaluation import classifier
from dcgan_jax.evaluation import inception
from dcgan_jax.evaluation import metrics
from dcgan_jax.gan import forward
from dcgan_jax.gan import noise
from dcgan_jax.gan import train_states
from dcgan_jax.output import images as images_lib
from dcgan_jax.output import paths
from dcgan_jax.run import hosts


def _digest(variables: Any) -> str:
  """Identifies a feature network's weights, for the feature cache."""
  digest = hashlib.sha256()
  for leaf in jax.tree.leaves(variables):
    digest.update(np.asarray(leaf).tobytes())
  return digest.hexdigest()[:16]


def _stats_mismatch(path: str, space: str, saved: dict[str, Any],
                    wanted: dict[str, Any]) -> str:
  differences = [f'{key} {saved.get(key)!r} (this evaluation: {value!r})'
                 for key, value in wanted.items() if saved.get(key) != value]
  return (f'{path} holds {space} features made with another '
          f'{" and ".join(differences)}: its numbers would not compare with '
          'these. Make the file again with `python -m dcgan_jax.evaluate '
          '--save_stats` and these settings, or change the settings.')


def load_spaces(config: ml_collections.ConfigDict, names: list[str]
                ) -> dict[str, tuple[Callable[..., jax.Array], Any]]:
  """Feature space -> (pure features fn, variables) for the spaces the
  metrics `names` use. Process 0 loads or trains the classifier, for all.

  Raises:
    ValueError: for Inception weights without the classifier layer the
      Inception Score needs.
  """
  spaces = {}
  wanted = {metrics.METRICS[m][0] for m in names}
  if 'inception' in wanted:
    variables = inception.load_variables(config.eval.inception_weights)
    if 'inception_score' in names and not inception.has_logits(variables):
      raise ValueError(
          f'config.eval.metrics asks for inception_score, but '
          f'eval.inception_weights={config.eval.inception_weights!r} has '
          'no classifier layer (fc.weight, fc.bias): convert '
          "pytorch-fid's .pth again with `python -m "
          'dcgan_jax.convert_inception`, which keeps it.')
    spaces['inception'] = (
        functools.partial(inception.features, resize=config.eval.resize),
        variables)
  if 'classifier' in wanted:
    data = hosts.run_on_chief(
        lambda: classifier.to_bytes(*classifier.load_or_train(config)),
        'load or train the evaluation classifier')
    spaces['classifier'] = (classifier.features,
                            classifier.from_bytes(data)[0])
  return spaces


class Features:
  """Features of real data, of images and of a generator's samples, in the
  feature spaces of `load_spaces`; real features and compiled functions
  are kept between calls."""

  def __init__(self, config: ml_collections.ConfigDict, names: list[str],
               spaces: dict[str, tuple[Callable[..., jax.Array], Any]]):
    self.config = config
    self.names = names
    self.spaces = spaces
    per_device = math.ceil(config.eval.batch_size / jax.device_count())
    self.layout = (jax.local_device_count(), per_device)
    self.global_batch = per_device * jax.device_count()
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
              v, images_lib.quantize(forward.generate(g_state, z, use_ema))),
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

  def real(self, space: str) -> np.ndarray:
    """Features of the real images: from eval.reference_stats if set, else
    of eval.num_samples training images, cached on disk."""
    if space in self._real:
      return self._real[space]
    stats_path = self.config.eval.reference_stats
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
          f'{[m for m in self.names if metrics.METRICS[m][0] == space]} '
          'need them. '
          'Make it with `python -m dcgan_jax.evaluate --save_stats` and '
          'those metrics.')
    saved = meta['spaces'][space]
    wanted = self.provenance(space)
    if {k: saved.get(k) for k in wanted} != wanted:
      raise ValueError(_stats_mismatch(path, space, saved, wanted))
    return arrays[f'{space}/features']

  def _embed_real_data(self, space: str) -> np.ndarray:
    # The pipeline imports TensorFlow: only when real features are computed.
    from dcgan_jax.data import input_pipeline  # pylint: disable=g-import-not-at-top
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

  def of_images(self, space: str, images: np.ndarray
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

  def fake(self, space: str, g_state: train_states.GeneratorState,
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
          noise.image_z(self.config.eval.seed, i * self.global_batch + rows,
                 self.config.model.nz).reshape(*self.layout, -1)
          for i in range(self._num_batches(num))]
    return self._in_global_order([
        jax.device_get(embed_fake(variables, g_state, z, use_ema))
        for z in self._fake_z], num)
