"""Frechet distance and KID against independent numpy/scipy computations."""

import os

import numpy as np
import pytest
import scipy.linalg

from dcgan_jax.evaluation import distances
from tests.conftest import GOLDEN


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
  # One subset holding all of both sets: the plain unbiased MMD^2 (kernel
  # values in float32 on the device).
  mean, std = distances.kernel_inception_distance(x, y, num_subsets=1,
                                                  subset_size=100)
  assert mean == pytest.approx(_naive_mmd2(x, y), rel=1e-6)
  assert std == 0


def test_kid_near_zero_for_same_distribution_and_grows_with_shift():
  rng = np.random.default_rng(4)
  x, y = rng.normal(size=(1000, 8)), rng.normal(size=(1000, 8))
  same, same_std = distances.kernel_inception_distance(x, y, 20, 200)
  near, _ = distances.kernel_inception_distance(x, y + 0.2, 20, 200)
  far, _ = distances.kernel_inception_distance(x, y + 1.0, 20, 200)
  assert abs(same) < 3 * same_std + 1e-3
  assert same < near < far


def test_kid_subsets_equal_a_numpy_loop():
  rng = np.random.default_rng(5)
  x, y = rng.normal(size=(300, 64)), rng.normal(size=(250, 64)) * 1.2
  mean, std = distances.kernel_inception_distance(x, y, 7, 40, seed=3)
  # The same subsets, drawn in the same order.
  choice = np.random.default_rng(3)
  values = []
  for _ in range(7):
    a = x[choice.choice(300, 40, replace=False)]
    b = y[choice.choice(250, 40, replace=False)]
    k = lambda u, v: (u @ v.T / 64 + 1) ** 3
    values.append((k(a, a).sum() - np.trace(k(a, a))) / (40 * 39)
                  + (k(b, b).sum() - np.trace(k(b, b))) / (40 * 39)
                  - 2 * k(a, b).mean())
  assert mean == pytest.approx(np.mean(values), rel=1e-5)
  assert std == pytest.approx(np.std(values), rel=1e-4)


def _prdc_loop(real, fake, k_pr, k_dc):
  """The papers' definitions, one point at a time, in float64."""
  d = lambda a, b: np.sqrt(((a - b) ** 2).sum())
  def radius(points, i, k):
    others = sorted(d(points[i], points[j]) for j in range(len(points))
                    if j != i)
    return others[k - 1]
  r_pr = [radius(real, i, k_pr) for i in range(len(real))]
  r_dc = [radius(real, i, k_dc) for i in range(len(real))]
  f_pr = [radius(fake, j, k_pr) for j in range(len(fake))]
  cross = [[d(r, f) for f in fake] for r in real]
  precision = np.mean([any(cross[i][j] < r_pr[i] for i in range(len(real)))
                       for j in range(len(fake))])
  recall = np.mean([any(cross[i][j] < f_pr[j] for j in range(len(fake)))
                    for i in range(len(real))])
  density = sum(cross[i][j] < r_dc[i] for i in range(len(real))
                for j in range(len(fake))) / (k_dc * len(fake))
  coverage = np.mean([min(cross[i]) < r_dc[i] for i in range(len(real))])
  return {'precision': precision, 'recall': recall, 'density': density,
          'coverage': coverage}


def test_precision_recall_density_coverage_equal_the_definitions(
    monkeypatch):
  # Blocks smaller than the sets, so rows cross block edges and padding.
  monkeypatch.setattr(distances, 'BLOCK', 16)
  rng = np.random.default_rng(6)
  real = rng.normal(size=(45, 6))
  fake = rng.normal(size=(38, 6)) * 0.8 + 0.4
  for k_pr, k_dc in ((3, 5), (1, 2)):
    expected = _prdc_loop(real, fake, k_pr, k_dc)
    got = distances.precision_recall_density_coverage(real, fake, k_pr, k_dc)
    for name, value in expected.items():
      assert got[name] == pytest.approx(value, abs=1e-12), (name, k_pr)


def test_precision_recall_density_coverage_equal_the_prdc_package():
  # Golden: tests/golden/make_prdc_golden.py (prdc 0.2, Naeem et al.'s).
  with np.load(os.path.join(GOLDEN,
                            'prdc_golden.npz')) as golden:
    real, fake = golden['real'], golden['fake']
    got = distances.precision_recall_density_coverage(real, fake, 3, 5)
    for name in ('precision', 'recall'):
      assert got[name] == pytest.approx(float(golden[f'k3/{name}']),
                                        abs=1e-12), name
    for name in ('density', 'coverage'):
      assert got[name] == pytest.approx(float(golden[f'k5/{name}']),
                                        abs=1e-12), name


def test_identical_sets_are_precise_and_covered():
  rng = np.random.default_rng(7)
  x = rng.normal(size=(200, 8))
  got = distances.precision_recall_density_coverage(x, x)
  assert got['precision'] == got['recall'] == got['coverage'] == 1.0
  with pytest.raises(ValueError, match='more than 5 samples'):
    distances.precision_recall_density_coverage(x[:5], x[:5])


def test_inception_score_equals_the_formula():
  rng = np.random.default_rng(8)
  logits = rng.normal(size=(50, 7)) * 3
  p = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
  scores = []
  for i in range(5):
    part = p[i * 10:(i + 1) * 10]
    marginal = part.mean(0)
    scores.append(np.exp(np.mean([
        sum(q[c] * np.log(q[c] / marginal[c]) for c in range(7))
        for q in part])))
  mean, std = distances.inception_score(logits, num_splits=5)
  assert mean == pytest.approx(np.mean(scores), rel=1e-12)
  assert std == pytest.approx(np.std(scores), rel=1e-9)
  # One class per image, each class equally often: IS = number of classes.
  one_hot = np.eye(7)[np.arange(70) % 7] * 100
  assert distances.inception_score(one_hot, 1)[0] == pytest.approx(7)
