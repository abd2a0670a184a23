"""The metrics by name (`config.eval.metrics` in METRICS): each is a
comparison of generated with real images in a feature space, computed
through its entry in COMPARISONS.

Spaces: 'inception' (pytorch-fid's Inception; fid, kid, precision, recall,
density, coverage, inception_score) and 'classifier' (a classifier trained
on the dataset's labels, offline; the same with a classifier_ prefix).
"""

import dataclasses
from typing import Any, Callable, Optional

import numpy as np

from dcgan_jax import choices
from dcgan_jax.evaluation import distances
from dcgan_jax.evaluation import inception


@dataclasses.dataclass(frozen=True)
class Comparison:
  """How a metric compares features.

  Attributes:
    compute: (real features, fake features, fake logits or None, the eval
      config, a memo shared by one evaluation's comparisons) -> {suffix:
      value}: '' the metric, '_std' its spread where it has one.
    higher_is_better: for choosing the best checkpoint.
  """
  compute: Callable[[np.ndarray, np.ndarray, Optional[np.ndarray], Any,
                     dict[Any, Any]], dict[str, float]]
  higher_is_better: bool


def _fd(real, fake, logits, eval_config, memo):
  del logits, eval_config, memo
  return {'': distances.frechet_distance_of_features(real, fake)}


def _kid(real, fake, logits, eval_config, memo):
  del logits, memo
  value, std = distances.kernel_inception_distance(
      real, fake, eval_config.kid_subsets, eval_config.kid_subset_size,
      eval_config.seed)
  return {'': value, '_std': std}


def _inception_score(real, fake, logits, eval_config, memo):
  del real, fake, memo
  value, std = distances.inception_score(logits, eval_config.is_splits)
  return {'': value, '_std': std}


def _manifold(measure: str) -> Callable[..., dict[str, float]]:
  """One of precision, recall, density, coverage: all four come from one
  nearest-neighbour computation, kept in the memo for the others."""
  def compute(real, fake, logits, eval_config, memo):
    del logits
    key = ('manifold', id(real), id(fake))
    if key not in memo:
      memo[key] = distances.precision_recall_density_coverage(
          real, fake, eval_config.pr_k, eval_config.dc_k)
    return {'': memo[key][measure]}
  return compute


COMPARISONS = {
    'fd': Comparison(_fd, higher_is_better=False),
    'kid': Comparison(_kid, higher_is_better=False),
    'is': Comparison(_inception_score, higher_is_better=True),
    **{measure: Comparison(_manifold(measure), higher_is_better=True)
       for measure in ('precision', 'recall', 'density', 'coverage')},
}
# Metric -> (feature space, comparison).
METRICS = {
    'fid': ('inception', 'fd'), 'kid': ('inception', 'kid'),
    **{m: ('inception', m)
       for m in ('precision', 'recall', 'density', 'coverage')},
    **{f'classifier_{c}': ('classifier', c)
       for c in ('fd', 'kid', 'precision', 'recall', 'density', 'coverage')},
    'inception_score': ('inception', 'is'),
}


def metric_names(config: Any) -> list[str]:
  """The metrics eval.metrics asks for, checked against the other keys.

  Raises:
    ValueError: naming the key and value that are wrong.
  """
  names = choices.check_list('config.eval.metrics', config.eval.metrics,
                             METRICS)
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
  return 'max' if COMPARISONS[METRICS[metric][1]].higher_is_better else 'min'


def compute(names: list[str], real: dict[str, np.ndarray],
            fake: dict[str, tuple[np.ndarray, Optional[np.ndarray]]],
            eval_config: Any, suffix: str = '') -> dict[str, float]:
  """{metric + suffix (+ '_std'): value} of the named metrics, from the
  real features and the fake (features, logits or None) per space."""
  results, memo = {}, {}
  for name in names:
    space, comparison = METRICS[name]
    features, logits = fake[space]
    values = COMPARISONS[comparison].compute(real[space], features, logits,
                                             eval_config, memo)
    results.update({name + suffix + k: v for k, v in values.items()})
  return results
