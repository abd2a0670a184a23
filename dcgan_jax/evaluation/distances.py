"""Comparisons of two sets of image features, and the Inception Score.

The Frechet distance runs in float64 numpy on the host (the matrix square
root needs the precision; the statistics are D x D). KID and the k-nearest-
neighbour metrics (precision, recall, density, coverage) do their pairwise
work on a device in float32 blocks, and their sums in float64 on the host.
"""

import functools

import jax
from jax import lax
import jax.numpy as jnp
import numpy as np

# Rows per block of the pairwise distances: a (block, N) matrix at a time.
BLOCK = 1024


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


@jax.jit
def _mmd_sums(x: jax.Array, y: jax.Array, x_subsets: jax.Array,
              y_subsets: jax.Array) -> jax.Array:
  """Per subset and row, the sums of k(a, b) = (a.b / D + 1)^3 over
  x-x pairs (i != j), y-y pairs (i != j) and x-y pairs: (S, 3, m)."""
  dim = x.shape[1]
  kernel = lambda a, b: (jnp.dot(a, b.T, precision=lax.Precision.HIGHEST)
                         / dim + 1) ** 3

  def subset(indices):
    a, b = x[indices[0]], y[indices[1]]
    k_xx, k_yy = kernel(a, a), kernel(b, b)
    return jnp.stack([k_xx.sum(1) - jnp.diagonal(k_xx),
                      k_yy.sum(1) - jnp.diagonal(k_yy),
                      kernel(a, b).sum(1)])
  return lax.map(subset, jnp.stack([x_subsets, y_subsets], axis=1))


def kernel_inception_distance(features1: np.ndarray, features2: np.ndarray,
                              num_subsets: int = 100, subset_size: int = 1000,
                              seed: int = 0) -> tuple[float, float]:
  """KID (Binkowski et al. 2018): (mean, std) of the unbiased polynomial
  MMD^2 over random subsets drawn without replacement from each set.

  The subset size is capped at the smaller set's size. The kernel sums run
  on the default device, per row in float32; the rest in float64.
  """
  x = np.asarray(features1, np.float32)
  y = np.asarray(features2, np.float32)
  if x.ndim != 2 or y.ndim != 2 or x.shape[1] != y.shape[1]:
    raise ValueError(f'Need (N, D) features of equal D; got {x.shape} and '
                     f'{y.shape}.')
  size = min(subset_size, len(x), len(y))
  if size < 2:
    raise ValueError(f'KID needs at least 2 samples per set; got {len(x)} and '
                     f'{len(y)}.')
  rng = np.random.default_rng(seed)
  subsets = [(rng.choice(len(x), size, replace=False),
              rng.choice(len(y), size, replace=False))
             for _ in range(num_subsets)]
  sums = np.asarray(_mmd_sums(x, y, np.stack([s[0] for s in subsets]),
                              np.stack([s[1] for s in subsets])),
                    np.float64).sum(axis=2)
  values = ((sums[:, 0] + sums[:, 1]) / (size * (size - 1))
            - 2 * sums[:, 2] / size**2)
  return float(np.mean(values)), float(np.std(values))


def _squared_distances(a: jax.Array, b: jax.Array) -> jax.Array:
  return jnp.maximum(
      jnp.sum(a * a, 1)[:, None] + jnp.sum(b * b, 1)[None, :]
      - 2 * jnp.dot(a, b.T, precision=lax.Precision.HIGHEST), 0)


def _blocks(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """(num_blocks, BLOCK, D) rows padded with zeros, and which are real."""
  padded = -len(x) % BLOCK
  valid = np.arange(len(x) + padded) < len(x)
  x = np.concatenate([x, np.zeros((padded, x.shape[1]), x.dtype)])
  return x.reshape(-1, BLOCK, x.shape[1]), valid.reshape(-1, BLOCK)


@functools.partial(jax.jit, static_argnames='ks')
def _neighbour_radii(blocks: jax.Array, valid: jax.Array,
                     ks: tuple[int, ...]) -> jax.Array:
  """Squared distance of each row to its k-th nearest other row, for each
  k: (rows, len(ks)); padded rows are not neighbours."""
  points = blocks.reshape(-1, blocks.shape[-1])
  is_point = valid.reshape(-1)

  def block(rows):
    d = jnp.where(is_point[None], _squared_distances(rows, points), jnp.inf)
    # The nearest is the row itself (distance 0): the k-th other is k.
    nearest = -lax.top_k(-d, max(ks) + 1)[0]
    return nearest[:, jnp.array(ks)]
  return lax.map(block, blocks).reshape(-1, len(ks))


@jax.jit
def _manifold_counts(real_blocks, real_valid, real_radii, fake, fake_valid,
                     fake_radii):
  """Over real blocks: which fakes fall in some real ball (precision), how
  many real balls hold each fake (density), which reals fall in some fake
  ball (recall) and which real balls hold a fake (coverage)."""
  def block(carry, inputs):
    in_some_ball, num_balls = carry
    rows, valid, radii = inputs
    d = jnp.where(fake_valid[None], _squared_distances(rows, fake), jnp.inf)
    in_pr = (d < radii[:, :1]) & valid[:, None]
    in_dc = (d < radii[:, 1:]) & valid[:, None]
    recalled = jnp.any(d < fake_radii[None], axis=1) & valid
    covered = (jnp.min(d, axis=1) < radii[:, 1]) & valid
    return ((in_some_ball | jnp.any(in_pr, axis=0),
             num_balls + jnp.sum(in_dc, axis=0, dtype=jnp.int32)),
            (recalled, covered))
  init = (jnp.zeros(fake.shape[0], bool), jnp.zeros(fake.shape[0], jnp.int32))
  (in_some_ball, num_balls), (recalled, covered) = lax.scan(
      block, init, (real_blocks, real_valid,
                    real_radii.reshape(*real_valid.shape, 2)))
  return in_some_ball, num_balls, recalled, covered


def precision_recall_density_coverage(
    real: np.ndarray, fake: np.ndarray, k_pr: int = 3, k_dc: int = 5
) -> dict[str, float]:
  """Precision and recall (Kynkaanniemi et al. 2019, k_pr nearest
  neighbours), density and coverage (Naeem et al. 2020, k_dc), as the
  authors' `prdc` package computes them: a point is inside a ball when its
  distance is below the radius.

  Pairwise distances run on the default device in blocks of BLOCK rows (10k
  x 10k features never form one matrix); the counts are exact integers.
  """
  real = np.asarray(real, np.float32)
  fake = np.asarray(fake, np.float32)
  if real.ndim != 2 or fake.ndim != 2 or real.shape[1] != fake.shape[1]:
    raise ValueError(f'Need (N, D) features of equal D; got {real.shape} and '
                     f'{fake.shape}.')
  k_max = max(k_pr, k_dc)
  if min(len(real), len(fake)) <= k_max:
    raise ValueError(f'k-nearest-neighbour metrics with k={k_max} need more '
                     f'than {k_max} samples per set; got {len(real)} and '
                     f'{len(fake)}.')
  # Centred on the real mean: smaller norms, less cancellation in
  # |a|^2 + |b|^2 - 2 a.b.
  center = real.mean(axis=0)
  real_blocks, real_valid = _blocks(real - center)
  fake_blocks, fake_valid = _blocks(fake - center)
  real_radii = _neighbour_radii(real_blocks, real_valid, (k_pr, k_dc))
  fake_radii = _neighbour_radii(fake_blocks, fake_valid, (k_pr,))[:, 0]
  in_some_ball, num_balls, recalled, covered = jax.device_get(
      _manifold_counts(real_blocks, real_valid, real_radii,
                       fake_blocks.reshape(-1, fake.shape[1]),
                       fake_valid.reshape(-1), fake_radii))
  fake_valid, real_valid = fake_valid.reshape(-1), real_valid.reshape(-1)
  return {
      'precision': float(in_some_ball[fake_valid].mean()),
      'recall': float(recalled.reshape(-1)[real_valid].mean()),
      'density': float(num_balls[fake_valid].astype(np.float64).sum()
                       / (k_dc * len(fake))),
      'coverage': float(covered.reshape(-1)[real_valid].mean()),
  }


def inception_score(logits: np.ndarray, num_splits: int = 10
                    ) -> tuple[float, float]:
  """Inception Score (Salimans et al. 2016): mean and std over num_splits
  consecutive splits of exp(E_x KL(p(y|x) || p(y))), in float64, split as
  the original code splits."""
  logits = np.asarray(logits, np.float64)
  if logits.ndim != 2 or len(logits) < num_splits:
    raise ValueError(f'Need (N >= {num_splits}, classes) logits; got shape '
                     f'{logits.shape}.')
  logits = logits - logits.max(axis=1, keepdims=True)
  log_p = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
  scores = []
  n = len(log_p)
  for i in range(num_splits):
    part = log_p[i * n // num_splits:(i + 1) * n // num_splits]
    log_marginal = np.log(np.exp(part).mean(axis=0))
    kl = (np.exp(part) * (part - log_marginal)).sum(axis=1)
    scores.append(np.exp(kl.mean()))
  return float(np.mean(scores)), float(np.std(scores))
