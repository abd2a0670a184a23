"""Two recipes compared over seeds: each one's mean +- std, and their
difference with a confidence interval from Student's t (paired by seed
where both were trained on the same seeds, Welch's otherwise). A t
interval, not a bootstrap: with the 3 to 16 seeds a sweep has, a
bootstrap's interval is too narrow.
"""

import dataclasses
import math
from typing import Sequence

import numpy as np


def t_quantile(probability: float, df: float) -> float:
  """Student's t distribution's quantile, for probability in (0.5, 1): the
  density integrated numerically (Simpson's rule) and inverted by
  bisection; accurate to about 1e-6."""
  log_scale = (math.lgamma((df + 1) / 2) - math.lgamma(df / 2)
               - 0.5 * math.log(df * math.pi))

  def cdf(t: float) -> float:
    x = np.linspace(0.0, t, 20_001)
    density = np.exp(log_scale - (df + 1) / 2 * np.log1p(x * x / df))
    weights = np.ones_like(x)
    weights[1:-1:2], weights[2:-1:2] = 4, 2
    return 0.5 + float(np.sum(weights * density)) * (x[1] - x[0]) / 3

  low, high = 0.0, 1.0
  while cdf(high) < probability:
    low, high = high, high * 2
  for _ in range(60):
    middle = (low + high) / 2
    low, high = (middle, high) if cdf(middle) < probability else (low, middle)
  return (low + high) / 2


@dataclasses.dataclass
class Difference:
  """B - A: its mean, confidence interval, t statistic and test."""
  mean: float
  low: float
  high: float
  t: float
  df: float
  paired: bool


def difference(a: Sequence[float], b: Sequence[float], paired: bool,
               confidence: float = 0.95) -> Difference:
  """The mean of b - a with its t interval: paired (a[k] and b[k] from the
  same seed) or Welch's (independent samples of any sizes).

  Raises:
    ValueError: with fewer than 2 values a side, or unequal sizes paired.
  """
  a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
  if min(len(a), len(b)) < 2:
    raise ValueError('A confidence interval needs at least 2 seeds a side; '
                     f'got {len(a)} and {len(b)}.')
  if paired:
    if len(a) != len(b):
      raise ValueError(f'Paired values need equal counts: {len(a)} and '
                       f'{len(b)}.')
    deltas = b - a
    mean, df = deltas.mean(), len(deltas) - 1
    error = deltas.std(ddof=1) / math.sqrt(len(deltas))
  else:
    va, vb = a.var(ddof=1) / len(a), b.var(ddof=1) / len(b)
    mean, error = b.mean() - a.mean(), math.sqrt(va + vb)
    df = (va + vb) ** 2 / (va ** 2 / (len(a) - 1) + vb ** 2 / (len(b) - 1)
                           ) if va + vb else len(a) + len(b) - 2
  margin = t_quantile(0.5 + confidence / 2, df) * error
  return Difference(mean=float(mean), low=float(mean - margin),
                    high=float(mean + margin),
                    t=float(mean / error) if error else
                    (0.0 if mean == 0 else math.copysign(math.inf, mean)),
                    df=float(df), paired=paired)
