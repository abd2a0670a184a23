"""GAN objectives against hand computations, the gradient penalty against
closed forms, and extreme logits."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dcgan_jax.gan import losses

REAL, FAKE = [2.0, -1.0, 0.5], [-3.0, 0.0, 1.5]


def _sigmoid(x: float) -> float:
  return 1.0 / (1.0 + math.exp(-x))


def _losses(name, real=REAL, fake=FAKE, label_smoothing=0.0):
  objective = losses.get_objective(name)
  return (float(objective.d_loss(jnp.array(real), jnp.array(fake),
                                 label_smoothing)),
          float(objective.g_loss(jnp.array(fake))))


def _bce(x: float, target: float) -> float:
  p = _sigmoid(x)
  return -(target * math.log(p) + (1 - target) * math.log(1 - p))


@pytest.mark.parametrize('name,d_expected,g_expected', [
    ('non_saturating',
     np.mean([_bce(x, 1) for x in REAL]) + np.mean([_bce(x, 0) for x in FAKE]),
     np.mean([-math.log(_sigmoid(x)) for x in FAKE])),
    ('minimax',
     np.mean([_bce(x, 1) for x in REAL]) + np.mean([_bce(x, 0) for x in FAKE]),
     np.mean([math.log(1 - _sigmoid(x)) for x in FAKE])),
    ('wgan_gp', np.mean(FAKE) - np.mean(REAL), -np.mean(FAKE)),
    ('hinge',
     np.mean([max(0, 1 - x) for x in REAL]) +
     np.mean([max(0, 1 + x) for x in FAKE]),
     -np.mean(FAKE)),
    ('least_squares',
     0.5 * (np.mean([(x - 1) ** 2 for x in REAL]) +
            np.mean([x ** 2 for x in FAKE])),
     0.5 * np.mean([(x - 1) ** 2 for x in FAKE])),
])
def test_objective_matches_hand_computation(name, d_expected, g_expected):
  d_loss, g_loss = _losses(name)
  assert d_loss == pytest.approx(d_expected, rel=1e-6)
  assert g_loss == pytest.approx(g_expected, rel=1e-6)


def test_label_smoothing_targets_1_minus_s_for_real_images_only():
  s = 0.1
  d_loss, _ = _losses('non_saturating', label_smoothing=s)
  expected = (np.mean([_bce(x, 1 - s) for x in REAL]) +
              np.mean([_bce(x, 0) for x in FAKE]))
  assert d_loss == pytest.approx(expected, rel=1e-6)


def test_minimax_saturates_where_non_saturating_does_not():
  # Where D rejects G's images with confidence, log(1 - D(G(z))) gives G
  # almost no gradient; -log D(G(z)) gives it a strong one.
  for name, expected in (('non_saturating', -1.0),
                         ('minimax', -_sigmoid(-20.0))):  # -2e-9
    grad = jax.grad(losses.get_objective(name).g_loss)(jnp.array([-20.0]))
    assert float(grad[0]) == pytest.approx(expected, rel=1e-4)


def test_unknown_objective_names_the_choices():
  with pytest.raises(ValueError, match=r"config.objective='wgan' is not "
                     r'known; choose one of non_saturating, minimax, wgan_gp, '
                     r'hinge, least_squares'):
    losses.get_objective('wgan')


def test_extreme_logits_stay_finite():
  big = jnp.array([1e4, -1e4, 80.0, -80.0, 0.0])
  for objective in losses.OBJECTIVES.values():
    for value, grads in [
        jax.value_and_grad(lambda r, f: objective.d_loss(r, f, 0.0),
                           argnums=(0, 1))(big, big),
        jax.value_and_grad(objective.g_loss, argnums=(0,))(big),
    ]:
      assert np.isfinite(float(value))
      assert all(bool(jnp.all(jnp.isfinite(g))) for g in grads)
  # A confidently wrong logit costs about |logit|, not inf.
  objective = losses.get_objective('non_saturating')
  assert float(objective.g_loss(jnp.array([-1e4]))) == pytest.approx(1e4)
  assert float(objective.d_loss(jnp.array([1e4]), jnp.array([-1e4]))) == 0.0


def test_gradient_penalty_matches_closed_forms():
  rng = np.random.default_rng(0)
  real = rng.normal(size=(6, 3, 3, 2)).astype(np.float32)
  fake = rng.normal(size=(6, 3, 3, 2)).astype(np.float32)
  weights = rng.uniform(size=6).astype(np.float32)
  # A linear critic w.x has gradient w at every point.
  w = rng.normal(size=(3, 3, 2)).astype(np.float32)
  penalty, norm = losses.gradient_penalty(
      lambda x: jnp.sum(x * w, axis=(1, 2, 3)), real, fake, weights)
  assert float(norm) == pytest.approx(np.linalg.norm(w), rel=1e-5)
  assert float(penalty) == pytest.approx((np.linalg.norm(w) - 1) ** 2,
                                         rel=1e-5)
  # sum(x^2) has gradient 2 x_hat at the interpolates.
  x_hat = (weights[:, None, None, None] * real +
           (1 - weights[:, None, None, None]) * fake)
  norms = np.linalg.norm(2 * x_hat.reshape(6, -1), axis=1)
  penalty, norm = losses.gradient_penalty(
      lambda x: jnp.sum(x ** 2, axis=(1, 2, 3)), real, fake, weights)
  assert float(norm) == pytest.approx(norms.mean(), rel=1e-5)
  assert float(penalty) == pytest.approx(np.mean((norms - 1) ** 2), rel=1e-5)


def test_gradient_norm_penalty_matches_closed_forms():
  """R1/R2's E[||grad D(x)||^2]: ||w||^2 for a linear D w.x; for the
  quadratic D sum(a x^2), the mean over images of ||2 a x||^2."""
  rng = np.random.default_rng(0)
  images = rng.normal(size=(5, 4, 4, 3)).astype(np.float32)
  w = rng.normal(size=(4, 4, 3)).astype(np.float32)
  assert float(losses.gradient_norm_penalty(
      lambda x: jnp.sum(x * w, axis=(1, 2, 3)), images)) == pytest.approx(
          np.sum(w ** 2), rel=1e-5)
  a = rng.uniform(size=(4, 4, 3)).astype(np.float32)
  expected = np.mean(np.sum((2 * a * images) ** 2, axis=(1, 2, 3)))
  assert float(losses.gradient_norm_penalty(
      lambda x: jnp.sum(a * x ** 2, axis=(1, 2, 3)), images)) == (
          pytest.approx(expected, rel=1e-5))
