"""G's and D's train states, and the `Recipe`: how the steps train.

`create_train_states` builds both from a config (or from your own networks
meeting the contract in `dcgan_jax.models`), with their optimizers.
"""

import dataclasses
from typing import Any, Optional

import flax
from flax import linen as nn
from flax.training import train_state
import jax
import jax.numpy as jnp

from dcgan_jax.gan import ada as ada_lib
from dcgan_jax.gan import augment
from dcgan_jax.gan import losses
from dcgan_jax.gan import optimizers
from dcgan_jax.models import layers
from dcgan_jax.models import registry

_PENALTY_WITH_BATCH_NORM = (
    "{} needs a D without BatchNorm (config.model.d_norm = 'layer', 'none' "
    "or 'spectral', not 'batch'): the penalty constrains the gradient of "
    "D's output for each image on its own, and BatchNorm makes each output "
    'depend on the whole batch.')


def _known(value: Any) -> bool:
  """Whether a value is known now, not traced."""
  return not isinstance(value, jax.core.Tracer)


# Recipe fields whose config key is in a section.
_CONFIG_KEYS = {'augment_policy': 'augment.policy',
                'augment_translation': 'augment.translation',
                'augment_cutout': 'augment.cutout', 'ada': 'augment.ada',
                'ada_target': 'augment.ada_target',
                'ada_interval': 'augment.ada_interval',
                'ada_kimg': 'augment.ada_kimg'}


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
      updated after each G update and warmed up (`ema.ema_decay_at`); 0 = off.
    d_joint_batch: D's update passes real and fake images through D as one
      batch (one set of BatchNorm statistics), not as two.
    r1_gamma: gamma of R1, gamma / 2 E[||grad D(x)||^2] on real images
      (Mescheder et al. 2018), added to D's loss; 0 = off.
    r2_gamma: the same on G's images; 0 = off.
    reg_every: k: R1 and R2 only every k-th D update, scaled by k (lazy
      regularisation, Karras et al. 2020, StyleGAN2).
    augment_policy: DiffAugment's ops for every image D sees,
      comma-separated names in `augment.POLICIES`; '' = none (config key
      augment.policy).
    augment_translation: the largest shift of `translation`, as a fraction
      of the side (augment.translation).
    augment_cutout: the side of `cutout`'s square, as a fraction of the
      image's (augment.cutout).
    ada: adaptive augmentation (`gan.ada`) of everything D sees, its
      probability p in D's state (augment.ada).
    ada_target: the r_t = E[sign(D(x))] that ADA steers D's outputs on real
      images to (augment.ada_target).
    ada_interval: D updates between adjustments of p (augment.ada_interval).
    ada_kimg: thousands of images over which p can go from 0 to 1
      (augment.ada_kimg).

  gp_weight, ema_decay, r1_gamma and r2_gamma may be traced values (a
  sweep's per-member hyperparameters, `gan.sweep`); a traced ema_decay
  means EMA is on, a traced gamma that its penalty is computed.
  """
  objective: str = 'non_saturating'
  gp_weight: float = 10.0
  label_smoothing: float = 0.0
  n_critic: int = 1
  unroll_steps: int = 0
  ema_decay: float = 0.0
  d_joint_batch: bool = False
  r1_gamma: float = 0.0
  r2_gamma: float = 0.0
  reg_every: int = 1
  augment_policy: str = ''
  augment_translation: float = augment.TRANSLATION
  augment_cutout: float = augment.CUTOUT
  ada: bool = False
  ada_target: float = ada_lib.TARGET
  ada_interval: int = ada_lib.INTERVAL
  ada_kimg: float = ada_lib.KIMG

  def __post_init__(self):
    objective = losses.get_objective(self.objective)
    if not isinstance(self.n_critic, int) or self.n_critic < 1:
      raise ValueError(f'config.n_critic={self.n_critic} must be an integer '
                       '>= 1.')
    if not isinstance(self.unroll_steps, int) or self.unroll_steps < 0:
      raise ValueError(f'config.unroll_steps={self.unroll_steps} must be an '
                       'integer >= 0.')
    if _known(self.ema_decay) and not 0.0 <= self.ema_decay < 1.0:
      raise ValueError(f'config.ema_decay={self.ema_decay} must be in [0, 1) '
                       '(0 = no EMA).')
    if _known(self.gp_weight) and self.gp_weight < 0:
      raise ValueError(f'config.gp_weight={self.gp_weight} must be >= 0.')
    for name in ('r1_gamma', 'r2_gamma'):
      value = getattr(self, name)
      if _known(value) and value < 0:
        raise ValueError(f'config.{name}={value} must be >= 0 (0 = off).')
    if not isinstance(self.reg_every, int) or self.reg_every < 1:
      raise ValueError(f'config.reg_every={self.reg_every} must be an '
                       'integer >= 1.')
    if ((self.uses_r1 or self.uses_r2) and
        not objective.input_gradient_penalties):
      raise ValueError(
          f'config.r1_gamma and config.r2_gamma apply to the objectives with '
          f'a logistic or hinge D (non_saturating, minimax, hinge), not to '
          f'config.objective={self.objective!r}: '
          + ('it has its own gradient penalty.'
             if objective.gradient_penalty else
             'R1/R2 were derived for those losses, and least squares D '
             'targets are not what their analysis covers.'))
    augment.parse_policy(self.augment_policy)
    for name in ('translation', 'cutout'):
      value = getattr(self, f'augment_{name}')
      if not 0.0 <= value <= 1.0:
        raise ValueError(f'config.augment.{name}={value} must be in [0, 1] '
                         '(a fraction of the image side).')
    if self.ada and self.augment_policy:
      raise ValueError(
          f'config.augment.ada and config.augment.policy='
          f'{self.augment_policy!r}: choose one augmentation of what D sees '
          '(ADA adapts its own).')
    if not -1.0 < self.ada_target < 1.0:
      raise ValueError(f'config.augment.ada_target={self.ada_target} must be '
                       'in (-1, 1): E[sign(D(x))] on real images.')
    if not isinstance(self.ada_interval, int) or self.ada_interval < 1:
      raise ValueError(f'config.augment.ada_interval={self.ada_interval} '
                       'must be an integer >= 1.')
    if not self.ada_kimg > 0:
      raise ValueError(f'config.augment.ada_kimg={self.ada_kimg} must be '
                       'positive.')
    if not 0.0 <= self.label_smoothing < 1.0:
      raise ValueError(f'config.label_smoothing={self.label_smoothing} must '
                       'be in [0, 1).')
    if self.label_smoothing and not objective.probability:
      raise ValueError(
          f'config.label_smoothing={self.label_smoothing} applies to the '
          f'objectives whose D outputs a probability, not to '
          f'config.objective={self.objective!r}.')

  @property
  def uses_ema(self) -> bool:
    return not _known(self.ema_decay) or self.ema_decay > 0

  @property
  def uses_r1(self) -> bool:
    return not _known(self.r1_gamma) or self.r1_gamma > 0

  @property
  def uses_r2(self) -> bool:
    return not _known(self.r2_gamma) or self.r2_gamma > 0

  @property
  def penalises_input_gradients(self) -> bool:
    """Whether D's loss has a penalty on its per-image input gradients
    (WGAN-GP's, R1 or R2), which BatchNorm in D would make unsound."""
    return (self.objective_fns.gradient_penalty or self.uses_r1 or
            self.uses_r2)

  def penalty_names(self) -> str:
    """The config keys of the input-gradient penalties on, for messages."""
    names = [f'config.objective={self.objective!r}'
             ] if self.objective_fns.gradient_penalty else []
    names += [f'config.{name}' for name, on in (
        ('r1_gamma', self.uses_r1), ('r2_gamma', self.uses_r2)) if on]
    return ' and '.join(names)

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
    values = {}
    for field in dataclasses.fields(cls):
      section, _, key = _CONFIG_KEYS.get(field.name, field.name).rpartition('.')
      node = config.get(section, {}) if section else config
      values[field.name] = node.get(key, getattr(defaults, field.name))
    recipe = cls(**values)
    if (check_model and recipe.penalises_input_gradients and
        registry.d_uses_batch_norm(config)):
      raise ValueError(_PENALTY_WITH_BATCH_NORM.format(recipe.penalty_names()))
    return recipe


class TrainState(train_state.TrainState):
  """A network's parameters, optimizer state and BatchNorm statistics (None
  for a network without BatchNorm); D's also ADA's state with ADA on."""
  batch_stats: Any = None
  ada: Any = None


class GeneratorState(TrainState):
  """G's state: also the size of its input noise and, with EMA on, the
  moving average of its parameters and the BatchNorm statistics that go
  with them (`ema.recompute_ema_batch_stats`; the steps leave them as they
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
      model; they meet the contract in `dcgan_jax.models`' docstring.

  Returns:
    (g_state, d_state), each at step 0.
  """
  recipe = Recipe.from_config(config, check_model=networks is None)
  generator, discriminator = networks or registry.create_models(config)

  def create(rng):
    g_rng, d_rng = jax.random.split(rng)
    z = jnp.zeros((2, config.model.nz))
    g_vars = generator.init(g_rng, z, train=False)
    d_vars = discriminator.init(d_rng, generator.apply(g_vars, z, train=False),
                                train=False)
    if (recipe.penalises_input_gradients and
        layers.has_batch_norm(d_vars.get('batch_stats'))):
      raise ValueError(_PENALTY_WITH_BATCH_NORM.format(recipe.penalty_names()))
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
                                       differentiable=recipe.unroll_steps > 0),
        ada=ada_lib.State.create() if recipe.ada else None)
    # flax starts `step` at a Python 0, a weakly typed int32 out of jit; a
    # restored checkpoint's is strongly typed, and a resumed run would
    # compile its step again.
    step = jnp.zeros((), jnp.int32)
    return g_state.replace(step=step), d_state.replace(step=step)

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
