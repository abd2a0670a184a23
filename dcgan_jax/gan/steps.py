"""Train states and pure update steps for GANs of the DCGAN family.

Every step is a pure function of its arguments. Each takes `axis_name`: with
None it runs under `jax.jit` on one device; under `jax.pmap(...,
axis_name=name)` it averages gradients, BatchNorm statistics and metrics over
that axis, and each device takes its own slice of one global draw of z, so a
run's numbers do not depend on how many devices share the global batch.

How the steps train (objective, input-gradient penalties, label smoothing,
D updates per G update, unrolling, EMA, joint real+fake batches,
augmentation of D's inputs) is a `Recipe`, a
static argument: jit or pmap a step with it bound, e.g.
`functools.partial(train_step, recipe=recipe)`. The networks are any pair
meeting the contract in `dcgan_jax.models`.

The rng passed to a step is a run's base key: each D update folds in D's
step number and each G update G's (for z, the gradient penalty's weights,
dropout masks and augmentations), so a resumed run draws the same numbers
as an uninterrupted one.
"""

import functools
import itertools
from typing import Any, Callable, Optional

import jax
from jax import lax
import jax.numpy as jnp

from dcgan_jax.gan import ada
from dcgan_jax.gan import augment
from dcgan_jax.gan import ema
from dcgan_jax.gan import forward
from dcgan_jax.gan import losses
from dcgan_jax.gan import noise
from dcgan_jax.gan import train_states
from dcgan_jax.models import layers

GeneratorState = train_states.GeneratorState
TrainState = train_states.TrainState
Recipe = train_states.Recipe

Metrics = dict[str, jax.Array]


def _pmean(tree: Any, axis_name: Optional[str]) -> Any:
  return tree if axis_name is None else lax.pmean(tree, axis_name)


def _step_z(g_state: GeneratorState, step: jax.Array, rng: jax.Array,
            batch_size: int, axis_name: Optional[str]) -> jax.Array:
  return noise.sample_z(jax.random.fold_in(rng, step), batch_size, g_state.nz,
                        axis_name)


def _penalty_weights(step: jax.Array, rng: jax.Array, batch_size: int,
                     axis_name: Optional[str]) -> jax.Array:
  """The gradient penalty's interpolation weights of a step, U[0, 1)."""
  key = noise.stream_key(rng, step, noise.PENALTY)
  return noise.device_slice(lambda rows: jax.random.uniform(key, (rows,)),
                            batch_size, axis_name)


def _output_metrics(objective: losses.Objective, **outputs: jax.Array
                    ) -> Metrics:
  """Mean D outputs: as probabilities (d_*) where D outputs a logit of
  one, else as critic scores (critic_*)."""
  if objective.probability:
    return {f'd_{k}': jnp.mean(jax.nn.sigmoid(v)) for k, v in outputs.items()}
  return {f'critic_{k}': jnp.mean(v) for k, v in outputs.items()}


def _score(apply: Callable[[Any, jax.Array], tuple[jax.Array, Any]],
           batch_stats: Any, real: jax.Array, fake: jax.Array, joint: bool
           ) -> tuple[jax.Array, jax.Array, Any]:
  """D's outputs for real and fake images: (real_out, fake_out, updated
  batch_stats), from apply(batch_stats, images).

  Separately, or with `joint` as one batch. The joint batch interleaves
  them: image i of the global batch then has the same place whatever the
  device count, and so the same dropout mask.
  """
  if joint:
    images = jnp.stack([real, fake], axis=1).reshape(-1, *real.shape[1:])
    out, batch_stats = apply(batch_stats, images)
    real_out, fake_out = out.reshape(-1, 2).T
    return real_out, fake_out, batch_stats
  real_out, batch_stats = apply(batch_stats, real)
  fake_out, batch_stats = apply(batch_stats, fake)
  return real_out, fake_out, batch_stats


def _views(recipe: Recipe, key: jax.Array, d_state: TrainState,
           axis_name: Optional[str]
           ) -> tuple[Callable[[jax.Array], jax.Array],
                      Callable[[jax.Array], jax.Array]]:
  """What D sees of real and of fake images: with recipe.augment_policy or
  ADA (at D's p), each batch through its own draws of the augmentation;
  else the images."""
  if recipe.ada:
    ops = ada.ops(d_state.ada.p)
  elif recipe.augment_policy:
    ops = augment.policy_ops(recipe.augment_policy,
                             recipe.augment_translation,
                             recipe.augment_cutout)
  else:
    return (lambda x: x), (lambda x: x)

  def view(stream):
    return functools.partial(augment.per_image, key=jax.random.fold_in(
        key, stream), ops=ops, axis_name=axis_name)
  return view(0), view(1)


def _input_gradient_penalties(real_critic: Callable[[jax.Array], jax.Array],
                              fake_critic: Callable[[jax.Array], jax.Array],
                              real: jax.Array, fake: jax.Array,
                              step: jax.Array, recipe: Recipe) -> Metrics:
  """R1 and R2 as added to D's loss at D's step `step`: {'r1_penalty':
  gamma / 2 E[||grad D(x)||^2] on real images, 'r2_penalty': the same on
  fakes}, for those on. With lazy regularisation (recipe.reg_every = k) they
  are computed only at every k-th step, scaled by k, and are 0 between."""
  on = {name: (gamma, critic, images) for name, used, gamma, critic, images
        in (('r1_penalty', recipe.uses_r1, recipe.r1_gamma, real_critic,
             real),
            ('r2_penalty', recipe.uses_r2, recipe.r2_gamma, fake_critic,
             fake)) if used}

  def penalties():
    return {name: (recipe.reg_every * gamma / 2 *
                   losses.gradient_norm_penalty(critic, images))
            for name, (gamma, critic, images) in on.items()}
  if recipe.reg_every == 1:
    return penalties()
  return lax.cond(step % recipe.reg_every == 0, penalties,
                  lambda: {name: jnp.zeros((), jnp.float32) for name in on})


def _d_update(d_state: TrainState, real: jax.Array, fake: jax.Array,
              penalty_weights: Optional[jax.Array], recipe: Recipe,
              axis_name: Optional[str], dropout_key: jax.Array,
              augment_key: jax.Array) -> tuple[TrainState, Metrics]:
  """One optimizer step on D's loss for a real and a fake batch.

  The two batches go through D separately, so each has its own BatchNorm
  statistics, as in the reference implementation; with
  recipe.d_joint_batch as one batch. Differentiable in all its inputs, so
  that unrolling can differentiate through it. With an augmentation
  policy D sees each batch augmented (`_views`), and the penalties are on
  the gradients with respect to the images before augmentation.
  """
  objective = recipe.objective_fns
  real_view, fake_view = _views(recipe, augment_key, d_state, axis_name)

  def loss_fn(params):
    passes = itertools.count()  # A dropout key per pass through D.

    def apply(batch_stats, x):
      return forward.apply_training(
          d_state, params, batch_stats, x, axis_name,
          jax.random.fold_in(dropout_key, next(passes)))

    real_out, fake_out, batch_stats = _score(
        apply, d_state.batch_stats, real_view(real), fake_view(fake),
        recipe.d_joint_batch)
    loss = objective.d_loss(real_out, fake_out, recipe.label_smoothing)
    metrics = _output_metrics(objective, real=real_out, fake=fake_out)
    if recipe.ada:
      metrics.update(ada_p=d_state.ada.p,
                     ada_rt=jnp.mean(jnp.sign(real_out)))

    def critic(view):
      return lambda x: apply(batch_stats, view(x))[0]
    if objective.gradient_penalty:
      penalty, grad_norm = losses.gradient_penalty(
          critic(real_view), real, fake, penalty_weights)
      loss = loss + recipe.gp_weight * penalty
      metrics.update(wasserstein=jnp.mean(real_out) - jnp.mean(fake_out),
                     gradient_penalty=penalty, grad_norm=grad_norm)
    if recipe.uses_r1 or recipe.uses_r2:
      penalties = _input_gradient_penalties(
          critic(real_view), critic(fake_view), real, fake, d_state.step,
          recipe)
      loss = loss + sum(penalties.values())
      metrics.update(penalties)
    metrics['d_loss'] = loss
    return loss, (batch_stats, metrics)

  (_, (batch_stats, metrics)), grads = jax.value_and_grad(
      loss_fn, has_aux=True)(d_state.params)
  grads, batch_stats, metrics = _pmean((grads, batch_stats, metrics),
                                       axis_name)
  return d_state.apply_gradients(grads=grads, batch_stats=batch_stats), metrics


def _g_update(g_state: GeneratorState, d_state: TrainState, fake: jax.Array,
              g_vjp: Callable[[jax.Array], Any], g_batch_stats: Any,
              real: Optional[jax.Array], penalty_weights: Optional[jax.Array],
              recipe: Recipe, axis_name: Optional[str], rng: jax.Array
              ) -> tuple[GeneratorState, Metrics]:
  """One optimizer step on G's loss through the given D (advanced by
  recipe.unroll_steps differentiable updates on real and these fakes).

  With recipe.d_joint_batch and BatchNorm in D, D scores G's images in a
  joint batch with the real ones, as it was trained: scored alone, they
  would be normalised by statistics D never saw in training, and G learns
  little.
  """
  objective = recipe.objective_fns
  dropout_key = noise.stream_key(rng, g_state.step, noise.G_UPDATE_DROPOUT)
  augment_key = noise.stream_key(rng, g_state.step, noise.G_UPDATE_AUGMENT)
  real_view, fake_view = _views(recipe, jax.random.fold_in(augment_key, 0),
                                d_state, axis_name)

  def loss_fn(fake):
    scorer = d_state
    for i in range(recipe.unroll_steps):
      scorer, _ = _d_update(scorer, real, fake, penalty_weights, recipe,
                            axis_name, jax.random.fold_in(dropout_key, i + 1),
                            jax.random.fold_in(augment_key, i + 1))
    # D's BatchNorm statistics from this pass are not kept: D runs only in
    # training mode, so its running averages never affect training.
    def apply(batch_stats, x):
      return forward.apply_training(scorer, scorer.params, batch_stats, x,
                                    axis_name,
                                    jax.random.fold_in(dropout_key, 0))

    if recipe.d_joint_batch and layers.has_batch_norm(scorer.batch_stats):
      _, out, _ = _score(apply, scorer.batch_stats, real_view(real),
                         fake_view(fake), joint=True)
    else:
      out, _ = apply(scorer.batch_stats, fake_view(fake))
    return objective.g_loss(out), out

  (loss, out), fake_grad = jax.value_and_grad(loss_fn, has_aux=True)(fake)
  (grads,) = g_vjp(fake_grad)
  grads, g_batch_stats = _pmean((grads, g_batch_stats), axis_name)
  metrics = _pmean({'g_loss': loss,
                    **_output_metrics(objective, fake_after=out)}, axis_name)
  g_state = g_state.apply_gradients(grads=grads, batch_stats=g_batch_stats)
  if recipe.uses_ema:
    g_state = ema.update_ema(g_state, recipe.ema_decay)
  return g_state, metrics


def _step_fakes(g_state: GeneratorState, step: jax.Array, rng: jax.Array,
                batch_size: int, recipe: Recipe, axis_name: Optional[str]
                ) -> tuple[jax.Array, Callable[[jax.Array], Any], Any,
                           Optional[jax.Array]]:
  """A step's G(z) in training mode: (fakes, their vjp to G's parameters,
  G's updated batch_stats, the penalty weights or None), z and the rest
  drawn from the run's key folded with `step`."""
  z = _step_z(g_state, step, rng, batch_size, axis_name)
  fake, g_vjp, g_batch_stats = forward.generate_with_pullback(
      g_state, z, axis_name, noise.stream_key(rng, step, noise.G_DROPOUT))
  weights = (_penalty_weights(step, rng, batch_size, axis_name)
             if recipe.objective_fns.gradient_penalty else None)
  return fake, g_vjp, g_batch_stats, weights


def _d_update_on_fresh_fakes(
    g_state: GeneratorState, d_state: TrainState, real: jax.Array,
    rng: jax.Array, recipe: Recipe, axis_name: Optional[str]
) -> tuple[TrainState, Metrics, tuple[jax.Array, Callable[[jax.Array], Any],
                                      Any, Optional[jax.Array]]]:
  """One D update on real and G(z), z from D's step number.

  Returns:
    (new d_state, metrics, (fakes, their vjp to G's parameters, G's
    updated batch_stats, the penalty weights) for a G update to reuse).
  """
  step = d_state.step
  fake, g_vjp, g_batch_stats, weights = _step_fakes(
      g_state, step, rng, real.shape[0], recipe, axis_name)
  new_d_state, metrics = _d_update(
      d_state, real, lax.stop_gradient(fake), weights, recipe, axis_name,
      noise.stream_key(rng, step, noise.D_UPDATE_DROPOUT),
      noise.stream_key(rng, step, noise.D_UPDATE_AUGMENT))
  if recipe.ada:
    images = real.shape[0] * (1 if axis_name is None
                              else lax.psum(1, axis_name))
    new_d_state = new_d_state.replace(ada=ada.adjust(
        d_state.ada, metrics['ada_rt'], images, step, recipe.ada_target,
        recipe.ada_interval, recipe.ada_kimg))
  return new_d_state, metrics, (fake, g_vjp, g_batch_stats, weights)


def d_step(g_state: GeneratorState, d_state: TrainState, batch: jax.Array,
           rng: jax.Array, axis_name: Optional[str] = None,
           recipe: Recipe = Recipe()) -> tuple[TrainState, Metrics]:
  """Updates D once on a real batch and a fresh batch of G(z).

  Args:
    g_state: G, used (not updated) to make the fake batch.
    d_state: D to update.
    batch: real images (B, H, W, C) in [-1, 1]; B is this device's share.
    rng: the run's base key; z is drawn from it folded with `d_state.step`.
    axis_name: the pmap axis, or None under jit.
    recipe: the objective and its settings (n_critic does not apply: this
      is one D update).

  Returns:
    (new d_state, metrics: d_loss; d_real and d_fake, mean D(x) and
    D(G(z)) as probabilities, or critic_real and critic_fake, mean outputs,
    where D is a critic; with a gradient penalty also wasserstein
    (critic_real - critic_fake), gradient_penalty and grad_norm; with R1
    or R2 r1_penalty, r2_penalty, the terms added to d_loss).
  """
  d_state, metrics, _ = _d_update_on_fresh_fakes(g_state, d_state, batch, rng,
                                                 recipe, axis_name)
  return d_state, metrics


def g_step(g_state: GeneratorState, d_state: TrainState, rng: jax.Array,
           batch_size: int, axis_name: Optional[str] = None,
           recipe: Recipe = Recipe(), real: Optional[jax.Array] = None
           ) -> tuple[GeneratorState, Metrics]:
  """Updates G once on a fresh batch of z.

  Args:
    g_state: G to update.
    d_state: D, used (not updated) to score G's images.
    rng: the run's base key; z is drawn from it folded with `g_state.step`.
    batch_size: this device's number of fake images (static under jit).
    axis_name: the pmap axis, or None under jit.
    recipe: the objective and its settings.
    real: real images (batch_size, H, W, C) for the unrolled D updates
      and the joint batch; needed only when recipe.unroll_steps > 0, or
      with recipe.d_joint_batch and BatchNorm in D.

  Returns:
    (new g_state, metrics: g_loss and d_fake_after = mean D(G(z)), or
    critic_fake_after where D is a critic).
  """
  if real is None and (recipe.unroll_steps or (
      recipe.d_joint_batch and layers.has_batch_norm(d_state.batch_stats))):
    raise ValueError('g_step with unroll_steps > 0, or with d_joint_batch '
                     'and BatchNorm in D, needs `real` images for the '
                     'unrolled D updates or the joint batch.')
  fake, g_vjp, g_batch_stats, weights = _step_fakes(
      g_state, g_state.step, rng, batch_size, recipe, axis_name)
  return _g_update(g_state, d_state, fake, g_vjp, g_batch_stats, real,
                   weights, recipe, axis_name, rng)


def _critic_batches(batch: jax.Array, n_critic: int) -> list[jax.Array]:
  if n_critic == 1:
    return [batch]
  if batch.shape[0] != n_critic:
    raise ValueError(
        f'train_step with n_critic={n_critic} takes real images with a '
        f'leading axis of {n_critic} sub-batches, (n_critic, B, ...); got '
        f'shape {batch.shape}.')
  return [batch[i] for i in range(n_critic)]


def train_step(g_state: GeneratorState, d_state: TrainState, batch: jax.Array,
               rng: jax.Array, axis_name: Optional[str] = None,
               recipe: Recipe = Recipe()
               ) -> tuple[GeneratorState, TrainState, Metrics]:
  """recipe.n_critic D updates, then one G update, as in the reference loop.

  As in the reference, G's update reuses the last D update's batch G(z):
  D trains on it, then G is scored by the updated D on the same images, so
  G's forward pass runs once per D update.

  Args:
    g_state: G's state.
    d_state: D's state.
    batch: real images (B, H, W, C) in [-1, 1], B this device's share; with
      n_critic > 1, (n_critic, B, H, W, C): one sub-batch per D update.
    rng: the run's base key; each D update's z is drawn from it folded with
      D's step number.
    axis_name: the pmap axis, or None under jit.
    recipe: objective, n_critic, unrolling, EMA and their settings.

  Returns:
    (new g_state, new d_state, metrics): `d_step`'s (averaged over the D
    updates) and `g_step`'s; d_fake is D(G(z)) before D's update and
    d_fake_after after it (after the unrolled updates, with unrolling).
  """
  d_metrics = []
  for real in _critic_batches(batch, recipe.n_critic):
    d_state, metrics, (fake, g_vjp, g_batch_stats, weights) = (
        _d_update_on_fresh_fakes(g_state, d_state, real, rng, recipe,
                                 axis_name))
    d_metrics.append(metrics)
  d_metrics = jax.tree.map(lambda *values: jnp.mean(jnp.stack(values)),
                           *d_metrics)
  g_state, g_metrics = _g_update(g_state, d_state, fake, g_vjp, g_batch_stats,
                                 real, weights, recipe, axis_name, rng)
  return g_state, d_state, {**d_metrics, **g_metrics}
