"""The `Evaluator`: config.eval.metrics of a generator or of any images.

`Evaluator(config)` checks the metrics and loads (or trains) their feature
networks up front. Called on a replicated G state it generates
eval.num_samples images on the devices, rounds them to uint8 as a PNG
would hold them, embeds them there (images never leave the devices) and
compares them with the real data's features (`features.Features`: cached
under eval.cache_dir, or read from the statistics file
eval.reference_stats, written by `save_stats`). `score_images` compares
images from anywhere (a folder, an .npz) the same way. The comparisons
dispatch through `metrics.COMPARISONS`; process 0 computes them for all.
"""

import json
from typing import Any, Callable, Optional

import ml_collections
import numpy as np

from dcgan_jax.evaluation import distances
from dcgan_jax.evaluation import features as features_lib
from dcgan_jax.evaluation import metrics
from dcgan_jax.gan import train_states
from dcgan_jax.output import paths
from dcgan_jax.run import hosts


class Evaluator:
  """Computes config.eval.metrics for generator states or for images."""

  def __init__(self, config: ml_collections.ConfigDict):
    self.config = config
    self.names = metrics.metric_names(config)
    self.spaces = features_lib.load_spaces(config, self.names)
    self.features = features_lib.Features(config, self.names, self.spaces)

  def _compute(self, real: dict[str, np.ndarray],
               fake: dict[str, tuple[np.ndarray, Optional[np.ndarray]]],
               suffix: str = '') -> dict[str, float]:
    return metrics.compute(self.names, real, fake, self.config.eval, suffix)

  def _on_chief(self, compute: Callable[[], dict[str, float]]
                ) -> dict[str, float]:
    return json.loads(hosts.run_on_chief(
        lambda: json.dumps(compute()).encode(), 'compute the metrics'))

  def __call__(self, g_state: train_states.GeneratorState) -> dict[str, float]:
    """{metric: value} (and '<kid or IS metric>_std') for a replicated G
    state, of its EMA weights if it has them; with eval.raw_weights also of
    its trained weights, as '<metric>_raw'. The same on every process."""
    real = {space: self.features.real(space) for space in self.spaces}
    weights = {'': True}
    if (g_state.ema_params is not None and
        self.config.eval.raw_weights):
      weights['_raw'] = False
    fake = {suffix: {space: self.features.fake(space, g_state, use_ema)
                     for space in self.spaces}
            for suffix, use_ema in weights.items()}
    return self._on_chief(lambda: {
        name: value for suffix in fake
        for name, value in self._compute(real, fake[suffix], suffix).items()})

  def score_images(self, images: np.ndarray) -> dict[str, float]:
    """The metrics of uint8 images (N, H, W, C) from anywhere, as for a
    generator's."""
    real = {space: self.features.real(space) for space in self.spaces}
    fake = {space: self.features.of_images(space, images) for space in self.spaces}
    return self._on_chief(lambda: self._compute(real, fake))

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
        features = self.features.real(space)
      else:
        features = self.features.of_images(space, images)[0]
      mean, covariance = distances.gaussian_statistics(features)
      arrays.update({f'{space}/features': features, f'{space}/mu': mean,
                     f'{space}/sigma': covariance})
      meta['spaces'][space] = {**self.features.provenance(space),
                               'num_images': len(features)}
    arrays['meta'] = paths.json_to_array(meta)
    if hosts.is_chief():
      paths.write_npz(path, arrays)
    return meta
