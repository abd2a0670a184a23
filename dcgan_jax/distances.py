"""Distances between two sets of image features: Frechet distance and KID.

Both run in float64 numpy on the host: the features are small (N x 2048 at
most) and the matrix square root needs the precision.
"""

import numpy as np


def gaussian_statistics(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """(mean, covariance) of (N, D) features, in float64."""
  features = np.asarray(features, np.float64)
  if features.ndim != 2 or len(features) < 2:
    raise ValueError(f'Need (N >= 2, D) features; got shape {features.shape}.')
  return features.mean(axis=0), np.cov(features, rowvar=False)


def _sqrt_psd(matrix: np.ndarray) -> np.ndarray:
  """Square root of a symmetric positive semi-definite matrix."""
  eigenvalues, eigenvectors = np.linalg.eigh(matrix)
  return (eigenvectors * np.sqrt(np.clip(eigenvalues, 0, None))) @ eigenvectors.T


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray,
                     sigma2: np.ndarray) -> float:
  """Frechet distance between N(mu1, sigma1) and N(mu2, sigma2).

  |mu1 - mu2|^2 + tr(s1) + tr(s2) - 2 tr((s1 s2)^(1/2)), with
  tr((s1 s2)^(1/2)) = tr((s1^(1/2) s2 s1^(1/2))^(1/2)): a symmetric PSD
  matrix, so both roots come from eigendecompositions. Unlike scipy's
  sqrtm of the non-symmetric s1 s2, this stays real and finite when the
  covariances are singular (fewer samples than dimensions) and needs no eps
  retry.
  """
  mu1, mu2 = np.asarray(mu1, np.float64), np.asarray(mu2, np.float64)
  sigma1 = np.asarray(sigma1, np.float64)
  sigma2 = np.asarray(sigma2, np.float64)
  if mu1.shape != mu2.shape or sigma1.shape != sigma2.shape:
    raise ValueError(f'Statistics differ in shape: means {mu1.shape} and '
                     f'{mu2.shape}, covariances {sigma1.shape} and '
                     f'{sigma2.shape}.')
  root1 = _sqrt_psd((sigma1 + sigma1.T) / 2)
  middle = root1 @ sigma2 @ root1
  middle_eigenvalues = np.linalg.eigvalsh((middle + middle.T) / 2)
  trace_sqrt = np.sqrt(np.clip(middle_eigenvalues, 0, None)).sum()
  diff = mu1 - mu2
  return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2)
               - 2 * trace_sqrt)


def frechet_distance_of_features(features1: np.ndarray,
                                 features2: np.ndarray) -> float:
  return frechet_distance(*gaussian_statistics(features1),
                          *gaussian_statistics(features2))


def _polynomial_mmd2(x: np.ndarray, y: np.ndarray) -> float:
  """Unbiased MMD^2 with the kernel k(a, b) = (a.b / D + 1)^3."""
  m, n, dim = len(x), len(y), x.shape[1]
  k_xx = (x @ x.T / dim + 1) ** 3
  k_yy = (y @ y.T / dim + 1) ** 3
  k_xy = (x @ y.T / dim + 1) ** 3
  return ((k_xx.sum() - np.trace(k_xx)) / (m * (m - 1))
          + (k_yy.sum() - np.trace(k_yy)) / (n * (n - 1))
          - 2 * k_xy.mean())


def kernel_inception_distance(features1: np.ndarray, features2: np.ndarray,
                              num_subsets: int = 100, subset_size: int = 1000,
                              seed: int = 0) -> tuple[float, float]:
  """KID (Binkowski et al. 2018): (mean, std) of the unbiased polynomial
  MMD^2 over random subsets drawn without replacement from each set.

  The subset size is capped at the smaller set's size.
  """
  x = np.asarray(features1, np.float64)
  y = np.asarray(features2, np.float64)
  if x.ndim != 2 or y.ndim != 2 or x.shape[1] != y.shape[1]:
    raise ValueError(f'Need (N, D) features of equal D; got {x.shape} and '
                     f'{y.shape}.')
  size = min(subset_size, len(x), len(y))
  if size < 2:
    raise ValueError(f'KID needs at least 2 samples per set; got {len(x)} and '
                     f'{len(y)}.')
  rng = np.random.default_rng(seed)
  values = [_polynomial_mmd2(x[rng.choice(len(x), size, replace=False)],
                             y[rng.choice(len(y), size, replace=False)])
            for _ in range(num_subsets)]
  return float(np.mean(values)), float(np.std(values))
