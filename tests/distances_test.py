"""Frechet distance and KID against independent numpy/scipy computations."""

import numpy as np
import pytest
import scipy.linalg

from dcgan_jax import distances


def _scipy_frechet(mu1, sigma1, mu2, sigma2):
  # The reference implementations' formula: sqrtm of the product.
  covmean = scipy.linalg.sqrtm(sigma1 @ sigma2)
  diff = mu1 - mu2
  return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2)
               - 2 * np.trace(covmean.real))


def _random_statistics(rng, n, dim):
  features = rng.normal(size=(n, dim)) @ rng.normal(size=(dim, dim))
  return features.mean(0), np.cov(features, rowvar=False)


def test_frechet_distance_equals_scipy_sqrtm_reference():
  rng = np.random.default_rng(0)
  for dim in (4, 64):
    stats1 = _random_statistics(rng, 500, dim)
    stats2 = _random_statistics(rng, 500, dim)
    expected = _scipy_frechet(*stats1, *stats2)
    assert distances.frechet_distance(*stats1, *stats2) == pytest.approx(
        expected, rel=1e-6)


def test_frechet_distance_of_gaussians_is_analytic():
  rng = np.random.default_rng(1)
  features = rng.normal(size=(2000, 16))
  shift = rng.normal(size=16)
  assert distances.frechet_distance_of_features(features, features) == (
      pytest.approx(0, abs=1e-9))
  # Same covariance, shifted mean: the squared shift.
  assert distances.frechet_distance_of_features(
      features, features + shift) == pytest.approx(shift @ shift, rel=1e-9)
  # N(0, a^2 I) vs N(0, b^2 I) in D dimensions: D (a - b)^2.
  dim, a, b = 16, 1.5, 0.5
  assert distances.frechet_distance(
      np.zeros(dim), a**2 * np.eye(dim), np.zeros(dim),
      b**2 * np.eye(dim)) == pytest.approx(dim * (a - b)**2, rel=1e-12)


def test_frechet_distance_finite_for_singular_covariances():
  # 20 samples in 256 dimensions: rank-19 covariances.
  rng = np.random.default_rng(2)
  x, y = rng.normal(size=(20, 256)), rng.normal(size=(20, 256)) + 0.5
  value = distances.frechet_distance_of_features(x, y)
  assert np.isfinite(value) and value > 0
  # Zero up to the rounding of ~240 zero eigenvalues' square roots.
  assert distances.frechet_distance_of_features(x, x) == pytest.approx(
      0, abs=1e-6 * 2 * 256)


def test_frechet_distance_rejects_mismatched_statistics():
  with pytest.raises(ValueError, match='differ in shape'):
    distances.frechet_distance(np.zeros(3), np.eye(3), np.zeros(4), np.eye(4))


def _naive_mmd2(x, y):
  dim = x.shape[1]
  kernel = lambda a, b: (a @ b / dim + 1) ** 3
  m, n = len(x), len(y)
  xx = sum(kernel(x[i], x[j]) for i in range(m) for j in range(m) if i != j)
  yy = sum(kernel(y[i], y[j]) for i in range(n) for j in range(n) if i != j)
  xy = sum(kernel(x[i], y[j]) for i in range(m) for j in range(n))
  return xx / (m * (m - 1)) + yy / (n * (n - 1)) - 2 * xy / (m * n)


def test_kid_equals_naive_unbiased_mmd():
  rng = np.random.default_rng(3)
  x, y = rng.normal(size=(30, 5)), rng.normal(size=(30, 5)) + 0.3
  # One subset holding all of both sets: the plain unbiased MMD^2.
  mean, std = distances.kernel_inception_distance(x, y, num_subsets=1,
                                                  subset_size=100)
  assert mean == pytest.approx(_naive_mmd2(x, y), rel=1e-10)
  assert std == 0


def test_kid_near_zero_for_same_distribution_and_grows_with_shift():
  rng = np.random.default_rng(4)
  x, y = rng.normal(size=(1000, 8)), rng.normal(size=(1000, 8))
  same, same_std = distances.kernel_inception_distance(x, y, 20, 200)
  near, _ = distances.kernel_inception_distance(x, y + 0.2, 20, 200)
  far, _ = distances.kernel_inception_distance(x, y + 1.0, 20, 200)
  assert abs(same) < 3 * same_std + 1e-3
  assert same < near < far
