"""Summaries of per-seed results for the benchmarks' tables."""

from typing import Sequence

import numpy as np


def mean_std(values: Sequence[float], digits: int = 1) -> str:
  """'mean +- std' (sample std over the values), or the value alone."""
  if len(values) == 1:
    return f'{values[0]:.{digits}f}'
  return f'{np.mean(values):.{digits}f} +- {np.std(values, ddof=1):.{digits}f}'
