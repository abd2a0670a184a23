"""GAN losses against a hand computation, and at extreme logits."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dcgan_jax import losses


def _sigmoid(x: float) -> float:
  return 1.0 / (1.0 + math.exp(-x))


def test_d_loss_matches_hand_computation():
  real, fake = [2.0, -1.0, 0.5], [-3.0, 0.0, 1.5]
  expected = (np.mean([-math.log(_sigmoid(x)) for x in real]) +
              np.mean([-math.log(1.0 - _sigmoid(x)) for x in fake]))
  got = losses.d_loss(jnp.array(real), jnp.array(fake))
  assert float(got) == pytest.approx(expected, rel=1e-6)


def test_g_loss_is_non_saturating():
  fake = [-3.0, 0.0, 1.5]
  expected = np.mean([-math.log(_sigmoid(x)) for x in fake])
  assert float(losses.g_loss(jnp.array(fake))) == pytest.approx(
      expected, rel=1e-6)
  # The non-saturating loss keeps a strong gradient where D rejects G's
  # images with confidence (the saturating log(1 - D) would vanish there).
  grad = jax.grad(lambda x: losses.g_loss(x))(jnp.array([-20.0]))
  assert float(grad[0]) == pytest.approx(-1.0, rel=1e-6)


def test_extreme_logits_stay_finite():
  big = jnp.array([1e4, -1e4, 80.0, -80.0, 0.0])
  for value, grads in [
      jax.value_and_grad(lambda r, f: losses.d_loss(r, f), argnums=(0, 1))(
          big, big),
      jax.value_and_grad(lambda f: losses.g_loss(f), argnums=(0,))(big),
  ]:
    assert np.isfinite(float(value))
    assert all(bool(jnp.all(jnp.isfinite(g))) for g in grads)
  # A confidently wrong logit costs about |logit|, not inf.
  assert float(losses.g_loss(jnp.array([-1e4]))) == pytest.approx(1e4)
  assert float(losses.d_loss(jnp.array([1e4]), jnp.array([-1e4]))) == 0.0
