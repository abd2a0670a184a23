"""Train states and pure update steps for DCGAN.

Every step is a pure function of its arguments. Each takes `axis_name`: with
None it runs under `jax.jit` on one device; under `jax.pmap(...,
axis_name=name)` it averages gradients, BatchNorm statistics and metrics over
that axis, and each device takes its own slice of one global draw of z, so a
run's numbers do not depend on how many devices share the global batch.

The rng passed to a step is a run's base key: the step folds in the state's
step number itself, so a resumed run draws the same z as an uninterrupted one.
"""

from typing import Any, Callable, Optional

import flax
import jax
import jax.numpy as jnp
import optax
from flax.training import train_state
from jax import lax

from dcgan_jax import losses
from dcgan_jax import models

Metrics = dict[str, jax.Array]


class TrainState(train_state.TrainState):
  """A network's parameters, BatchNorm statistics and optimizer state."""
  batch_stats: Any = None


class GeneratorState(TrainState):
  """G's state; also knows the size of its input noise."""
  nz: int = flax.struct.field(pytree_node=False, default=100)


def create_train_states(config: Any,
                        rng: jax.Array) -> tuple[GeneratorState, TrainState]:
  """Initialises G and D and their Adam optimizers from a config.

  Args:
    config: uses `data.image_size`, `data.channels`, `model.nz`, `model.ngf`,
      `model.ndf`, `optim.lr_g`, `optim.lr_d`, `optim.b1` and `optim.b2`.
    rng: key for the initial parameters.

  Returns:
    (g_state, d_state), each at step 0.
  """
  generator, discriminator = models.create_models(config)
  g_rng, d_rng = jax.random.split(rng)
  size, channels = config.data.image_size, config.data.channels
  g_vars = generator.init(g_rng, jnp.zeros((2, config.model.nz)), train=False)
  d_vars = discriminator.init(
      d_rng, jnp.zeros((2, size, size, channels)), train=False)
  optim = config.optim
  g_state = GeneratorState.create(
      apply_fn=generator.apply, params=g_vars['params'],
      batch_stats=g_vars['batch_stats'], nz=config.model.nz,
      tx=optax.adam(optim.lr_g, b1=optim.b1, b2=optim.b2))
  d_state = TrainState.create(
      apply_fn=discriminator.apply, params=d_vars['params'],
      batch_stats=d_vars['batch_stats'],
      tx=optax.adam(optim.lr_d, b1=optim.b1, b2=optim.b2))
  return g_state, d_state


def _pmean(tree: Any, axis_name: Optional[str]) -> Any:
  return tree if axis_name is None else lax.pmean(tree, axis_name)


def sample_z(rng: jax.Array, batch_size: int, nz: int,
             axis_name: Optional[str] = None) -> jax.Array:
  """Draws this device's (batch_size, nz) slice of one global N(0, I) draw."""
  if axis_name is None:
    return jax.random.normal(rng, (batch_size, nz))
  num_devices = lax.psum(1, axis_name)
  z = jax.random.normal(rng, (num_devices * batch_size, nz))
  return lax.dynamic_slice_in_dim(
      z, lax.axis_index(axis_name) * batch_size, batch_size)


def _step_z(g_state: GeneratorState, step: jax.Array, rng: jax.Array,
            batch_size: int, axis_name: Optional[str]) -> jax.Array:
  return sample_z(jax.random.fold_in(rng, step), batch_size, g_state.nz,
                  axis_name)


def _generate(g_state: GeneratorState, z: jax.Array, axis_name: Optional[str]
              ) -> tuple[jax.Array, Callable[[jax.Array], Any], Any]:
  """G(z) in training mode, with its pullback to G's parameters.

  Returns:
    (fake images, vjp from d(loss)/d(fake) to d(loss)/d(params), G's updated
    batch_stats). Under jit an unused vjp costs nothing.
  """
  def apply(params):
    fake, updates = g_state.apply_fn(
        {'params': params, 'batch_stats': g_state.batch_stats}, z,
        train=True, axis_name=axis_name, mutable=['batch_stats'])
    return fake, updates['batch_stats']
  fake, g_vjp, batch_stats = jax.vjp(apply, g_state.params, has_aux=True)
  return fake, g_vjp, batch_stats


def generate(g_state: GeneratorState, z: jax.Array) -> jax.Array:
  """G(z) for inference: BatchNorm uses its running averages."""
  return g_state.apply_fn(
      {'params': g_state.params, 'batch_stats': g_state.batch_stats}, z,
      train=False)


def _d_update(d_state: TrainState, real: jax.Array, fake: jax.Array,
              axis_name: Optional[str]) -> tuple[TrainState, Metrics]:
  """One Adam step on D's loss for a real and a fake batch.

  The two batches go through D separately, so each has its own BatchNorm
  statistics, as in the reference implementation.
  """
  def loss_fn(params):
    batch_stats = d_state.batch_stats
    logits = []
    for images in (real, fake):
      out, updates = d_state.apply_fn(
          {'params': params, 'batch_stats': batch_stats}, images,
          train=True, axis_name=axis_name, mutable=['batch_stats'])
      batch_stats = updates['batch_stats']
      logits.append(out)
    return losses.d_loss(*logits), (batch_stats, logits)

  (loss, (batch_stats, (real_logits, fake_logits))), grads = (
      jax.value_and_grad(loss_fn, has_aux=True)(d_state.params))
  grads, batch_stats = _pmean((grads, batch_stats), axis_name)
  metrics = _pmean({
      'd_loss': loss,
      'd_real': jnp.mean(jax.nn.sigmoid(real_logits)),
      'd_fake': jnp.mean(jax.nn.sigmoid(fake_logits)),
  }, axis_name)
  return d_state.apply_gradients(grads=grads, batch_stats=batch_stats), metrics


def _g_update(g_state: GeneratorState, d_state: TrainState, fake: jax.Array,
              g_vjp: Callable[[jax.Array], Any], g_batch_stats: Any,
              axis_name: Optional[str]) -> tuple[GeneratorState, Metrics]:
  """One Adam step on G's non-saturating loss through the given D."""
  def loss_fn(fake):
    # D's BatchNorm statistics from this pass are not kept: D runs only in
    # training mode, so its running averages never affect training.
    logits, _ = d_state.apply_fn(
        {'params': d_state.params, 'batch_stats': d_state.batch_stats}, fake,
        train=True, axis_name=axis_name, mutable=['batch_stats'])
    return losses.g_loss(logits), logits

  (loss, logits), fake_grad = jax.value_and_grad(loss_fn, has_aux=True)(fake)
  (grads,) = g_vjp(fake_grad)
  grads, g_batch_stats = _pmean((grads, g_batch_stats), axis_name)
  metrics = _pmean({
      'g_loss': loss,
      'd_fake_after': jnp.mean(jax.nn.sigmoid(logits)),
  }, axis_name)
  return g_state.apply_gradients(grads=grads,
                                 batch_stats=g_batch_stats), metrics


def d_step(g_state: GeneratorState, d_state: TrainState, batch: jax.Array,
           rng: jax.Array, axis_name: Optional[str] = None
           ) -> tuple[TrainState, Metrics]:
  """Updates D on a real batch and a fresh batch of G(z).

  Args:
    g_state: G, used (not updated) to make the fake batch.
    d_state: D to update.
    batch: real images (B, H, W, C) in [-1, 1]; B is this device's share.
    rng: the run's base key; z is drawn from it folded with `d_state.step`.
    axis_name: the pmap axis, or None under jit.

  Returns:
    (new d_state, metrics with d_loss, d_real and d_fake).
  """
  z = _step_z(g_state, d_state.step, rng, batch.shape[0], axis_name)
  fake, _, _ = _generate(g_state, z, axis_name)
  return _d_update(d_state, batch, lax.stop_gradient(fake), axis_name)


def g_step(g_state: GeneratorState, d_state: TrainState, rng: jax.Array,
           batch_size: int, axis_name: Optional[str] = None
           ) -> tuple[GeneratorState, Metrics]:
  """Updates G with the non-saturating loss on a fresh batch of z.

  Args:
    g_state: G to update.
    d_state: D, used (not updated) to score G's images.
    rng: the run's base key; z is drawn from it folded with `g_state.step`.
    batch_size: this device's number of fake images (static under jit).
    axis_name: the pmap axis, or None under jit.

  Returns:
    (new g_state, metrics with g_loss and d_fake_after = mean D(G(z))).
  """
  z = _step_z(g_state, g_state.step, rng, batch_size, axis_name)
  fake, g_vjp, g_batch_stats = _generate(g_state, z, axis_name)
  return _g_update(g_state, d_state, fake, g_vjp, g_batch_stats, axis_name)


def train_step(g_state: GeneratorState, d_state: TrainState, batch: jax.Array,
               rng: jax.Array, axis_name: Optional[str] = None
               ) -> tuple[GeneratorState, TrainState, Metrics]:
  """One D update then one G update, as in the reference DCGAN loop.

  As in the reference, one batch G(z) serves both updates: D trains on it,
  then G is scored by the updated D on the same images, so G's forward pass
  runs once per step.

  Args:
    g_state: G's state.
    d_state: D's state.
    batch: real images (B, H, W, C) in [-1, 1]; B is this device's share.
    rng: the run's base key; z is drawn from it folded with the step number.
    axis_name: the pmap axis, or None under jit.

  Returns:
    (new g_state, new d_state, metrics): d_loss, g_loss, d_real = mean D(x),
    d_fake = mean D(G(z)) before D's update and d_fake_after after it.
  """
  z = _step_z(g_state, g_state.step, rng, batch.shape[0], axis_name)
  fake, g_vjp, g_batch_stats = _generate(g_state, z, axis_name)
  d_state, d_metrics = _d_update(d_state, batch, lax.stop_gradient(fake),
                                 axis_name)
  g_state, g_metrics = _g_update(g_state, d_state, fake, g_vjp, g_batch_stats,
                                 axis_name)
  return g_state, d_state, {**d_metrics, **g_metrics}
