"""The exponential moving average of G's weights: its warmed-up decay, the
update after each G step, and BatchNorm statistics recomputed for the
averaged weights."""

from typing import Any, Optional

import jax
from jax import lax
import jax.numpy as jnp

from dcgan_jax.gan import forward
from dcgan_jax.gan import noise
from dcgan_jax.gan import train_states
from dcgan_jax.models import layers

GeneratorState = train_states.GeneratorState


def ema_decay_at(decay: float, updates: jax.Array) -> jax.Array:
  """The EMA's decay after `updates` G updates: min(decay, (1 + n) / (10 +
  n)), TensorFlow's ExponentialMovingAverage warm-up.

  The average's half-life is then at most about 8% of the updates so far,
  so the initial weights are forgotten early and a short run averages its
  own recent weights, not its start; from n = 9 decay / (1 - decay) on it
  is `decay` (0.999: 8,991 updates).
  """
  n = jnp.asarray(updates, jnp.float32)
  return jnp.minimum(decay, (1.0 + n) / (10.0 + n))


def update_ema(g_state: GeneratorState, decay: float) -> GeneratorState:
  """Moves G's EMA weights towards its weights, at `ema_decay_at(decay,
  g_state.step)`. The BatchNorm statistics are not averaged: statistics
  of other weights do not fit the averaged ones (`recompute_ema_batch_stats`
  computes theirs)."""
  if g_state.ema_params is None:
    raise ValueError('The recipe has ema_decay > 0 but g_state has no EMA '
                     'weights: create the states with the same ema_decay, '
                     'or call train_states.start_ema(g_state).')
  beta = ema_decay_at(decay, g_state.step)
  return g_state.replace(ema_params=jax.tree.map(
      lambda ema, new: beta * ema + (1.0 - beta) * new, g_state.ema_params,
      g_state.params))


def _batch_statistics(g_state: GeneratorState, params: Any, z: jax.Array,
                      axis_name: Optional[str], dropout_key: jax.Array
                      ) -> Any:
  """Each BatchNorm layer's batch mean and variance of G(z) in training
  mode, with these params, in the batch_stats tree's structure.

  A layer's running update is `m * old + (1 - m) * batch` (flax's
  nn.BatchNorm, whatever its momentum m): from old = 0 it gives (1 - m) *
  batch, and its derivative in old is m, so one pass yields both. A layer
  that does not update in training mode (m = 1) keeps its statistics.
  """
  def updated(old):
    return forward.apply_training(g_state, params, old, z, axis_name,
                                  dropout_key)[1]
  zeros = jax.tree.map(jnp.zeros_like, g_state.batch_stats)
  weighted, momentum = jax.jvp(updated, (zeros,),
                               (jax.tree.map(jnp.ones_like, zeros),))

  return jax.tree.map(
      lambda w, m, fixed: jnp.where(m < 1.0, w / jnp.maximum(1.0 - m, 1e-12),
                                    fixed),
      weighted, momentum, g_state.batch_stats)


def recompute_ema_batch_stats(g_state: GeneratorState, rng: jax.Array,
                              num_batches: int, batch_size: int,
                              axis_name: Optional[str] = None
                              ) -> GeneratorState:
  """G's state with BatchNorm statistics computed for its EMA weights.

  BigGAN's "standing statistics": the EMA weights run in training mode on
  num_batches batches of fresh z, and each BatchNorm layer's statistics are
  the mean over the batches of its batch means and variances. Averaging
  the running statistics alongside the weights instead gives statistics of
  earlier weights, which the averaged ones do not match (blurred, dim
  samples). Call it before sampling from the EMA weights; the training
  loop does before every sample grid, evaluation and save, and
  `checkpoint.load_generator` on loading. Other state in batch_stats
  (spectral normalisation's vectors) is copied from the trained weights':
  sampling's power iteration starts from it on the EMA weights.

  Args:
    g_state: G's state; returned unchanged without EMA or BatchNorm.
    rng: the run's base key; batch i's z is drawn from it folded with G's
      step and i, so a checkpoint's statistics can be computed again.
    num_batches: batches averaged.
    batch_size: this device's share of each batch (static under jit); the
      statistics are those of the global batch, as in training.
    axis_name: the pmap axis, or None under jit.
  """
  if g_state.ema_params is None or g_state.batch_stats is None:
    return g_state
  key = noise.stream_key(rng, g_state.step, noise.EMA_STATISTICS)

  def add_batch(total, i):
    z = noise.sample_z(jax.random.fold_in(key, i), batch_size, g_state.nz,
                       axis_name)
    stats = _batch_statistics(g_state, g_state.ema_params, z, axis_name,
                              jax.random.fold_in(key, num_batches + i))
    return jax.tree.map(jnp.add, total, stats), None

  total, _ = lax.scan(add_batch,
                      jax.tree.map(jnp.zeros_like, g_state.batch_stats),
                      jnp.arange(num_batches))
  return g_state.replace(ema_batch_stats=jax.tree_util.tree_map_with_path(
      lambda path, t, trained: (t / num_batches
                                if layers.is_batch_norm_statistic(path)
                                else trained),
      total, g_state.batch_stats))
