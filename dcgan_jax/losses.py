"""GAN losses on logits: binary cross-entropy, stable for any logit value."""

import jax
import jax.numpy as jnp
import optax


def _bce(logits: jax.Array, label: float) -> jax.Array:
  return jnp.mean(optax.sigmoid_binary_cross_entropy(
      logits, jnp.full_like(logits, label)))


def d_loss(real_logits: jax.Array, fake_logits: jax.Array) -> jax.Array:
  """D's loss: BCE(D(x), 1) + BCE(D(G(z)), 0), each a batch mean."""
  return _bce(real_logits, 1.0) + _bce(fake_logits, 0.0)


def g_loss(fake_logits: jax.Array) -> jax.Array:
  """G's non-saturating loss: BCE(D(G(z)), 1), i.e. maximise log D(G(z))."""
  return _bce(fake_logits, 1.0)
