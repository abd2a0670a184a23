"""GAN objectives, chosen by name, and the penalties on D's input gradients:
WGAN-GP's, and R1/R2.

An objective is a pair of pure losses on D's raw outputs (one per image):
D's loss on a real and a fake batch, and G's loss on a fake batch. To add
one, write its two losses and add an entry to OBJECTIVES.
"""

import dataclasses
from typing import Callable

import jax
import jax.numpy as jnp
import optax

from dcgan_jax import choices


@dataclasses.dataclass(frozen=True)
class Objective:
  """D's and G's losses, and what D's output means.

  Attributes:
    d_loss: (real outputs, fake outputs, label smoothing s) -> D's loss.
    g_loss: fake outputs -> G's loss.
    probability: D's output is the logit of P(real): logged as sigmoid
      probabilities, and label smoothing applies. Otherwise it is a score
      (a critic), logged as it is.
    gradient_penalty: D's loss also gets the gradient penalty; the critic
      is then kept near 1-Lipschitz, so E[D(x)] - E[D(G(z))] estimates the
      Wasserstein-1 distance.
    input_gradient_penalties: D's loss is logistic or hinge, for which the
      R1/R2 penalties (Mescheder et al. 2018) were derived and are used.
  """
  d_loss: Callable[[jax.Array, jax.Array, float], jax.Array]
  g_loss: Callable[[jax.Array], jax.Array]
  probability: bool
  gradient_penalty: bool = False
  input_gradient_penalties: bool = False


def _bce(logits: jax.Array, label: float) -> jax.Array:
  """Batch mean of BCE(sigmoid(logits), label), stable for any logit."""
  return jnp.mean(optax.sigmoid_binary_cross_entropy(
      logits, jnp.full_like(logits, label)))


def logistic_d_loss(real: jax.Array, fake: jax.Array,
                    label_smoothing: float = 0.0) -> jax.Array:
  """BCE(D(x), 1 - s) + BCE(D(G(z)), 0) (s: one-sided label smoothing)."""
  return _bce(real, 1.0 - label_smoothing) + _bce(fake, 0.0)


def non_saturating_g_loss(fake: jax.Array) -> jax.Array:
  """BCE(D(G(z)), 1) = -log D(G(z)): strong gradients where D rejects G."""
  return _bce(fake, 1.0)


def minimax_g_loss(fake: jax.Array) -> jax.Array:
  """log(1 - D(G(z))) = -BCE(D(G(z)), 0): the saturating original form."""
  return -_bce(fake, 0.0)


def wasserstein_d_loss(real: jax.Array, fake: jax.Array,
                       label_smoothing: float = 0.0) -> jax.Array:
  """E[D(G(z))] - E[D(x)] (the gradient penalty is added by the step)."""
  del label_smoothing
  return jnp.mean(fake) - jnp.mean(real)


def critic_g_loss(fake: jax.Array) -> jax.Array:
  """-E[D(G(z))]: G's loss for WGAN and hinge critics."""
  return -jnp.mean(fake)


def hinge_d_loss(real: jax.Array, fake: jax.Array,
                 label_smoothing: float = 0.0) -> jax.Array:
  """E[max(0, 1 - D(x))] + E[max(0, 1 + D(G(z)))]."""
  del label_smoothing
  return jnp.mean(jax.nn.relu(1.0 - real)) + jnp.mean(jax.nn.relu(1.0 + fake))


def least_squares_d_loss(real: jax.Array, fake: jax.Array,
                         label_smoothing: float = 0.0) -> jax.Array:
  """LSGAN (Mao et al. 2017, a = 0, b = c = 1): (E[(D(x) - 1)^2] +
  E[D(G(z))^2]) / 2."""
  del label_smoothing
  return 0.5 * (jnp.mean((real - 1.0) ** 2) + jnp.mean(fake ** 2))


def least_squares_g_loss(fake: jax.Array) -> jax.Array:
  """E[(D(G(z)) - 1)^2] / 2."""
  return 0.5 * jnp.mean((fake - 1.0) ** 2)


OBJECTIVES = {
    'non_saturating': Objective(logistic_d_loss, non_saturating_g_loss,
                                probability=True,
                                input_gradient_penalties=True),
    'minimax': Objective(logistic_d_loss, minimax_g_loss, probability=True,
                         input_gradient_penalties=True),
    'wgan_gp': Objective(wasserstein_d_loss, critic_g_loss,
                         probability=False, gradient_penalty=True),
    'hinge': Objective(hinge_d_loss, critic_g_loss, probability=False,
                       input_gradient_penalties=True),
    'least_squares': Objective(least_squares_d_loss, least_squares_g_loss,
                               probability=False),
}


def get_objective(name: str) -> Objective:
  """OBJECTIVES[name].

  Raises:
    ValueError: naming the known objectives.
  """
  return choices.choose('config.objective', name, OBJECTIVES)


def _squared_input_gradient_norms(
    critic: Callable[[jax.Array], jax.Array], x: jax.Array) -> jax.Array:
  """||grad_x D(x)||_2^2 of each image, shape (B,). Images must not
  interact in D (no BatchNorm), or the gradient of one output mixes
  several images."""
  grads = jax.grad(lambda x: jnp.sum(critic(x)))(x)
  return jnp.sum(grads ** 2, axis=tuple(range(1, grads.ndim)))


def gradient_penalty(critic: Callable[[jax.Array], jax.Array],
                     real: jax.Array, fake: jax.Array, weights: jax.Array
                     ) -> tuple[jax.Array, jax.Array]:
  """Gulrajani et al. (2017): E[(||grad D(x_hat)||_2 - 1)^2] at
  x_hat = w x + (1 - w) G(z), one w in [0, 1] per image.

  Args:
    critic: images -> one output per image, images not interacting.
    real: real images (B, ...).
    fake: fake images of the same shape.
    weights: w, shape (B,).

  Returns:
    (the penalty, the mean gradient norm).
  """
  w = weights.reshape((-1,) + (1,) * (real.ndim - 1))
  # The tiny constant keeps the norm differentiable where a gradient is 0.
  norms = jnp.sqrt(_squared_input_gradient_norms(
      critic, w * real + (1.0 - w) * fake) + 1e-12)
  return jnp.mean((norms - 1.0) ** 2), jnp.mean(norms)


def gradient_norm_penalty(critic: Callable[[jax.Array], jax.Array],
                          images: jax.Array) -> jax.Array:
  """E[||grad D(x)||_2^2] over the images: R1 on real images, R2 on fakes
  (Mescheder et al. 2018), each weighed by gamma / 2.

  Args:
    critic: images -> one output per image, images not interacting.
    images: (B, ...).
  """
  return jnp.mean(_squared_input_gradient_norms(critic, images))
