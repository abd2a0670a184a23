"""Train states and pure update steps for GANs of the DCGAN family.

Every step is a pure function of its arguments. Each takes `axis_name`: with
None it runs under `jax.jit` on one device; under `jax.pmap(...,
axis_name=name)` it averages gradients, BatchNorm statistics and metrics over
that axis, and each device takes its own slice of one global draw of z, so a
run's numbers do not depend on how many devices share the global batch.

How the steps train (objective, gradient penalty, label smoothing, D updates
per G update, unrolling, EMA, joint real+fake batches) is a `Recipe`, a
static argument: jit or pmap a step with it bound, e.g.
`functools.partial(train_step, recipe=recipe)`. The networks are any pair
meeting the contract in `models`.

The rng passed to a step is a run's base key: each D update folds in D's
step number and each G update G's (for z, the gradient penalty's weights
and dropout masks), so a resumed run draws the same numbers as an
uninterrupted one.
"""

import dataclasses
from typing import Any, Callable, Optional

import flax
from flax import linen as nn
import jax
import jax.numpy as jnp
from flax.training import train_state
from jax import lax

from dcgan_jax import losses
from dcgan_jax import models
from dcgan_jax import optimizers

Metrics = dict[str, jax.Array]


_PENALTY_WITH_BATCH_NORM = (
    "config.objective={!r} needs config.model.d_norm = 'layer' or 'none', "
    "not 'batch': the gradient penalty constrains the gradient of D's output "
    'for each image on its own, and BatchNorm makes each output depend on '
    'the whole batch.')


@dataclasses.dataclass(frozen=True)
class Recipe:
  """How the steps train; hashable, so it can be a static argument.

  Attributes:
    objective: a name in `losses.OBJECTIVES`.
    gp_weight: lambda, the gradient penalty's weight (objectives with one).
    label_smoothing: s: D's target for real images is 1 - s (objectives
      whose D outputs a probability).
    n_critic: D updates per G update in `train_step`.
    unroll_steps: k: G's loss is taken against a copy of D advanced by k
      differentiable D updates (Metz et al. 2017); 0 = off.
    ema_decay: decay of the exponential moving average of G's weights,
      updated after each G update and warmed up (`ema_decay_at`); 0 = off.
    d_joint_batch: D's update passes real and fake images through D as one
      batch (one set of BatchNorm statistics), not as two.
  """
  objective: str = 'non_saturating'
  gp_weight: float = 10.0
  label_smoothing: float = 0.0
  n_critic: int = 1
  unroll_steps: int = 0
  ema_decay: float = 0.0
  d_joint_batch: bool = False

  def __post_init__(self):
    objective = losses.get_objective(self.objective)
    if not isinstance(self.n_critic, int) or self.n_critic < 1:
      raise ValueError(f'config.n_critic={self.n_critic} must be an integer '
                       '>= 1.')
    if not isinstance(self.unroll_steps, int) or self.unroll_steps < 0:
      raise ValueError(f'config.unroll_steps={self.unroll_steps} must be an '
                       'integer >= 0.')
    if not 0.0 <= self.ema_decay < 1.0:
      raise ValueError(f'config.ema_decay={self.ema_decay} must be in [0, 1) '
                       '(0 = no EMA).')
    if self.gp_weight < 0:
      raise ValueError(f'config.gp_weight={self.gp_weight} must be >= 0.')
    if not 0.0 <= self.label_smoothing < 1.0:
      raise ValueError(f'config.label_smoothing={self.label_smoothing} must '
                       'be in [0, 1).')
    if self.label_smoothing and not objective.probability:
      raise ValueError(
          f'config.label_smoothing={self.label_smoothing} applies to the '
          f'objectives whose D outputs a probability, not to '
          f'config.objective={self.objective!r}.')

  @property
  def objective_fns(self) -> losses.Objective:
    return losses.OBJECTIVES[self.objective]

  @classmethod
  def from_config(cls, config: Any, check_model: bool = True) -> 'Recipe':
    """The recipe of a config (absent keys: the defaults, as in runs that
    predate them).

    Args:
      config: the run's config.
      check_model: also check that the config's model suits the recipe
        (False where the networks are not the config's).

    Raises:
      ValueError: naming the config key whose value is wrong, including a
        gradient penalty with BatchNorm in D.
    """
    defaults = cls()
    recipe = cls(**{field.name: config.get(field.name,
                                           getattr(defaults, field.name))
                    for field in dataclasses.fields(cls)})
    if (check_model and recipe.objective_fns.gradient_penalty and
        models.d_uses_batch_norm(config)):
      raise ValueError(_PENALTY_WITH_BATCH_NORM.format(recipe.objective))
    return recipe


class TrainState(train_state.TrainState):
  """A network's parameters, optimizer state and BatchNorm statistics (None
  for a network without BatchNorm)."""
  batch_stats: Any = None


class GeneratorState(TrainState):
  """G's state: also the size of its input noise and, with EMA on, the
  moving average of its parameters and the BatchNorm statistics that go
  with them (`recompute_ema_batch_stats`; the steps leave them as they
  are)."""
  nz: int = flax.struct.field(pytree_node=False, default=100)
  ema_params: Any = None
  ema_batch_stats: Any = None


def create_train_states(
    config: Any, rng: jax.Array,
    networks: Optional[tuple[nn.Module, nn.Module]] = None
) -> tuple[GeneratorState, TrainState]:
  """Initialises G and D and their optimizers from a config.

  Args:
    config: uses `model.nz`, the `optim` keys (`optimizers`) and the
      `Recipe` keys (`ema_decay` adds EMA weights, starting from G's
      initial ones); without `networks` also `data.image_size`,
      `data.channels`, the `model` keys and `dtype`.
    rng: key for the initial parameters.
    networks: your own (G, D) flax modules, in place of the config's
      model; they meet the contract in `models`' docstring.

  Returns:
    (g_state, d_state), each at step 0.
  """
  recipe = Recipe.from_config(config, check_model=networks is None)
  generator, discriminator = networks or models.create_models(config)

  def create(rng):
    g_rng, d_rng = jax.random.split(rng)
    z = jnp.zeros((2, config.model.nz))
    g_vars = generator.init(g_rng, z, train=False)
    d_vars = discriminator.init(d_rng, generator.apply(g_vars, z, train=False),
                                train=False)
    if recipe.objective_fns.gradient_penalty and 'batch_stats' in d_vars:
      raise ValueError(_PENALTY_WITH_BATCH_NORM.format(recipe.objective))
    g_state = GeneratorState.create(
        apply_fn=generator.apply, params=g_vars['params'],
        batch_stats=g_vars.get('batch_stats'), nz=config.model.nz,
        tx=optimizers.create_optimizer(config, config.optim.lr_g))
    if recipe.ema_decay:
      g_state = start_ema(g_state)
    d_state = TrainState.create(
        apply_fn=discriminator.apply, params=d_vars['params'],
        batch_stats=d_vars.get('batch_stats'),
        # Unrolling differentiates D's update.
        tx=optimizers.create_optimizer(config, config.optim.lr_d,
                                       differentiable=recipe.unroll_steps > 0))
    return g_state, d_state

  # One compiled program: run op by op, initialisation would compile and
  # keep hundreds of small programs (seconds, and hundreds of MB). It runs
  # once, so XLA:CPU compiles it without LLVM's optimisations, in a fraction
  # of the time (BENCHMARKS.md); the random draws differ from the optimised
  # program's by at most one float32 rounding.
  # Inside a caller's trace (jax.eval_shape, jax.vmap) it is part of the
  # caller's program, which takes no options of its own.
  own_program = not isinstance(rng, jax.core.Tracer)
  options = ({'xla_backend_optimization_level': 0}
             if own_program and jax.default_backend() == 'cpu' else None)
  g_state, d_state = jax.jit(create, compiler_options=options)(rng)
  return g_state, d_state


def start_ema(g_state: GeneratorState) -> GeneratorState:
  """G's state with EMA weights equal to its current weights."""
  return g_state.replace(ema_params=jax.tree.map(jnp.copy, g_state.params),
                         ema_batch_stats=jax.tree.map(jnp.copy,
                                                      g_state.batch_stats))


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


def _pmean(tree: Any, axis_name: Optional[str]) -> Any:
  return tree if axis_name is None else lax.pmean(tree, axis_name)


def _device_slice(draw: Callable[[int], jax.Array], batch_size: int,
                  axis_name: Optional[str]) -> jax.Array:
  """This device's batch_size rows of one global draw(rows)."""
  if axis_name is None:
    return draw(batch_size)
  num_devices = lax.psum(1, axis_name)
  return lax.dynamic_slice_in_dim(draw(num_devices * batch_size),
                                  lax.axis_index(axis_name) * batch_size,
                                  batch_size)


def sample_z(rng: jax.Array, batch_size: int, nz: int,
             axis_name: Optional[str] = None) -> jax.Array:
  """Draws this device's (batch_size, nz) slice of one global N(0, I) draw."""
  return _device_slice(lambda rows: jax.random.normal(rng, (rows, nz)),
                       batch_size, axis_name)


def _step_z(g_state: GeneratorState, step: jax.Array, rng: jax.Array,
            batch_size: int, axis_name: Optional[str]) -> jax.Array:
  return sample_z(jax.random.fold_in(rng, step), batch_size, g_state.nz,
                  axis_name)


# A step's random draws other than z (drawn from the run's key folded with
# the step number): each from that key folded with its stream number.
_PENALTY, _D_UPDATE_DROPOUT, _G_UPDATE_DROPOUT, _G_DROPOUT = 1, 2, 3, 4
_EMA_STATISTICS = 5  # z and dropout of recompute_ema_batch_stats.


def _stream_key(rng: jax.Array, step: jax.Array, stream: int) -> jax.Array:
  return jax.random.fold_in(jax.random.fold_in(rng, step), stream)


def _penalty_weights(step: jax.Array, rng: jax.Array, batch_size: int,
                     axis_name: Optional[str]) -> jax.Array:
  """The gradient penalty's interpolation weights of a step, U[0, 1)."""
  key = _stream_key(rng, step, _PENALTY)
  return _device_slice(lambda rows: jax.random.uniform(key, (rows,)),
                       batch_size, axis_name)


def _variables(params: Any, batch_stats: Any) -> dict[str, Any]:
  if batch_stats is None:
    return {'params': params}
  return {'params': params, 'batch_stats': batch_stats}


def _apply_training(state: TrainState, params: Any, batch_stats: Any,
                    x: jax.Array, axis_name: Optional[str],
                    dropout_key: jax.Array) -> tuple[jax.Array, Any]:
  """A network in training mode: (output, updated batch_stats or None)."""
  rngs = {'dropout': dropout_key}
  if batch_stats is None:
    return state.apply_fn({'params': params}, x, train=True,
                          axis_name=axis_name, rngs=rngs), None
  out, updates = state.apply_fn(_variables(params, batch_stats), x,
                                train=True, axis_name=axis_name, rngs=rngs,
                                mutable=['batch_stats'])
  return out, updates['batch_stats']


def _generate(g_state: GeneratorState, z: jax.Array, axis_name: Optional[str],
              dropout_key: jax.Array
              ) -> tuple[jax.Array, Callable[[jax.Array], Any], Any]:
  """G(z) in training mode, with its pullback to G's parameters.

  Returns:
    (fake images, vjp from d(loss)/d(fake) to d(loss)/d(params), G's updated
    batch_stats). Under jit an unused vjp costs nothing.
  """
  def apply(params):
    return _apply_training(g_state, params, g_state.batch_stats, z,
                           axis_name, dropout_key)
  fake, g_vjp, batch_stats = jax.vjp(apply, g_state.params, has_aux=True)
  return fake, g_vjp, batch_stats


def generate(g_state: GeneratorState, z: jax.Array,
             use_ema: bool = True) -> jax.Array:
  """G(z) for inference: BatchNorm uses its running averages; the EMA
  weights if G has them and use_ema, with the statistics last computed for
  them by `recompute_ema_batch_stats`."""
  if use_ema and g_state.ema_params is not None:
    variables = _variables(g_state.ema_params, g_state.ema_batch_stats)
  else:
    variables = _variables(g_state.params, g_state.batch_stats)
  return g_state.apply_fn(variables, z, train=False)


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


def _d_update(d_state: TrainState, real: jax.Array, fake: jax.Array,
              penalty_weights: Optional[jax.Array], recipe: Recipe,
              axis_name: Optional[str], dropout_key: jax.Array
              ) -> tuple[TrainState, Metrics]:
  """One optimizer step on D's loss for a real and a fake batch.

  The two batches go through D separately, so each has its own BatchNorm
  statistics, as in the reference implementation; with
  recipe.d_joint_batch as one batch. Differentiable in all its inputs, so
  that unrolling can differentiate through it.
  """
  objective = recipe.objective_fns

  def loss_fn(params):
    passes = iter(range(3))  # A dropout key per pass through D.

    def apply(batch_stats, x):
      return _apply_training(d_state, params, batch_stats, x, axis_name,
                             jax.random.fold_in(dropout_key, next(passes)))

    real_out, fake_out, batch_stats = _score(
        apply, d_state.batch_stats, real, fake, recipe.d_joint_batch)
    loss = objective.d_loss(real_out, fake_out, recipe.label_smoothing)
    metrics = _output_metrics(objective, real=real_out, fake=fake_out)
    if objective.gradient_penalty:
      penalty, grad_norm = losses.gradient_penalty(
          lambda x: apply(batch_stats, x)[0], real, fake, penalty_weights)
      loss = loss + recipe.gp_weight * penalty
      metrics.update(wasserstein=jnp.mean(real_out) - jnp.mean(fake_out),
                     gradient_penalty=penalty, grad_norm=grad_norm)
    metrics['d_loss'] = loss
    return loss, (batch_stats, metrics)

  (_, (batch_stats, metrics)), grads = jax.value_and_grad(
      loss_fn, has_aux=True)(d_state.params)
  grads, batch_stats, metrics = _pmean((grads, batch_stats, metrics),
                                       axis_name)
  return d_state.apply_gradients(grads=grads, batch_stats=batch_stats), metrics


def update_ema(g_state: GeneratorState, decay: float) -> GeneratorState:
  """Moves G's EMA weights towards its weights, at `ema_decay_at(decay,
  g_state.step)`. The BatchNorm statistics are not averaged: statistics
  of other weights do not fit the averaged ones (`recompute_ema_batch_stats`
  computes theirs)."""
  if g_state.ema_params is None:
    raise ValueError('The recipe has ema_decay > 0 but g_state has no EMA '
                     'weights: create the states with the same ema_decay, '
                     'or call steps.start_ema(g_state).')
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
    return _apply_training(g_state, params, old, z, axis_name,
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
  `checkpoint.load_generator` on loading.

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
  key = _stream_key(rng, g_state.step, _EMA_STATISTICS)

  def add_batch(total, i):
    z = sample_z(jax.random.fold_in(key, i), batch_size, g_state.nz,
                 axis_name)
    stats = _batch_statistics(g_state, g_state.ema_params, z, axis_name,
                              jax.random.fold_in(key, num_batches + i))
    return jax.tree.map(jnp.add, total, stats), None

  total, _ = lax.scan(add_batch,
                      jax.tree.map(jnp.zeros_like, g_state.batch_stats),
                      jnp.arange(num_batches))
  return g_state.replace(ema_batch_stats=jax.tree.map(
      lambda t: t / num_batches, total))


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
  dropout_key = _stream_key(rng, g_state.step, _G_UPDATE_DROPOUT)

  def loss_fn(fake):
    scorer = d_state
    for i in range(recipe.unroll_steps):
      scorer, _ = _d_update(scorer, real, fake, penalty_weights, recipe,
                            axis_name, jax.random.fold_in(dropout_key, i + 1))
    # D's BatchNorm statistics from this pass are not kept: D runs only in
    # training mode, so its running averages never affect training.
    def apply(batch_stats, x):
      return _apply_training(scorer, scorer.params, batch_stats, x, axis_name,
                             jax.random.fold_in(dropout_key, 0))

    if recipe.d_joint_batch and scorer.batch_stats is not None:
      _, out, _ = _score(apply, scorer.batch_stats, real, fake, joint=True)
    else:
      out, _ = apply(scorer.batch_stats, fake)
    return objective.g_loss(out), out

  (loss, out), fake_grad = jax.value_and_grad(loss_fn, has_aux=True)(fake)
  (grads,) = g_vjp(fake_grad)
  grads, g_batch_stats = _pmean((grads, g_batch_stats), axis_name)
  metrics = _pmean({'g_loss': loss,
                    **_output_metrics(objective, fake_after=out)}, axis_name)
  g_state = g_state.apply_gradients(grads=grads, batch_stats=g_batch_stats)
  if recipe.ema_decay:
    g_state = update_ema(g_state, recipe.ema_decay)
  return g_state, metrics


def _step_fakes(g_state: GeneratorState, step: jax.Array, rng: jax.Array,
                batch_size: int, recipe: Recipe, axis_name: Optional[str]
                ) -> tuple[jax.Array, Callable[[jax.Array], Any], Any,
                           Optional[jax.Array]]:
  """A step's G(z) in training mode: (fakes, their vjp to G's parameters,
  G's updated batch_stats, the penalty weights or None), z and the rest
  drawn from the run's key folded with `step`."""
  z = _step_z(g_state, step, rng, batch_size, axis_name)
  fake, g_vjp, g_batch_stats = _generate(g_state, z, axis_name,
                                         _stream_key(rng, step, _G_DROPOUT))
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
      _stream_key(rng, step, _D_UPDATE_DROPOUT))
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
    (critic_real - critic_fake), gradient_penalty and grad_norm).
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
      recipe.d_joint_batch and d_state.batch_stats is not None)):
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
