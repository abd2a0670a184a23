"""Many GANs in one program: the train states of several members stacked on
a leading member axis, and `train_step` vmapped over it.

A sweep's members are the product of its hyperparameter axes (config
`sweep.lr_g`, `sweep.lr_d`, `sweep.ema_decay`, `sweep.gp_weight`,
`sweep.r1_gamma`, `sweep.r2_gamma`: lists of values) with its seeds (`sweep.seeds`); `members(config)` lists them,
seeds varying fastest. Member k is the run of its seed and values: its
initial weights, z and dropout come from `noise.run_keys(seed)`, as a
single run's from its seed, and its hyperparameters are traced values (the
learning rates in its optimizer state, `optax.inject_hyperparams`; EMA
decay and penalty weights as the step's arguments), so it computes what
that run computes; the members share each step's real batch. A sweep step
is one compiled program under `jax.jit` or, with `axis_name`, inside
`jax.pmap` (the member axis is vmapped, the device axis pmapped; on CPU
the members run one after another, `cpu.members`).
"""

import dataclasses
import functools
import itertools
from typing import Any, Callable, Optional, Sequence

import jax
import jax.numpy as jnp
import ml_collections
import optax

from dcgan_jax.cpu import members as members_lib
from dcgan_jax.gan import noise
from dcgan_jax.gan import optimizers
from dcgan_jax.gan import steps
from dcgan_jax.gan import train_states

# Hyperparameters a sweep may vary: sweep.NAME -> the config key it sets.
AXES = {'lr_g': 'optim.lr_g', 'lr_d': 'optim.lr_d', 'ema_decay': 'ema_decay',
        'gp_weight': 'gp_weight', 'r1_gamma': 'r1_gamma',
        'r2_gamma': 'r2_gamma'}
# Those the step takes as arguments (the Recipe's traced fields).
STEP_AXES = ('ema_decay', 'gp_weight', 'r1_gamma', 'r2_gamma')


def _numbers(config: Any, name: str, kind: type) -> list[Any]:
  text = str(config.get('sweep', {}).get(name, '')).strip()
  if not text:
    return []
  try:
    return [kind(part) for part in text.split(',') if part.strip()]
  except ValueError:
    raise ValueError(f'config.sweep.{name}={text!r} must be comma-separated '
                     f'numbers.') from None


def member_seeds(config: Any) -> Optional[list[int]]:
  """The seeds of config.sweep.seeds, or None where it is '': 'N' is N
  seeds from config.seed on, '3,7,11' those seeds. A sweep with only
  hyperparameter axes has the one seed config.seed.

  Raises:
    ValueError: naming the key, for a value that is neither.
  """
  text = str(config.get('sweep', {}).get('seeds', '')).strip()
  if not text:
    return None
  try:
    numbers = _numbers(config, 'seeds', int)
  except ValueError:
    numbers = []
  if not numbers or min(numbers) < 0 or (',' not in text and numbers[0] < 1):
    raise ValueError(
        f'config.sweep.seeds={text!r} must be a number of members (e.g. '
        "'4': seeds seed..seed+3) or comma-separated seeds (e.g. '0,3,7').")
  if ',' not in text:
    return list(range(config.seed, config.seed + numbers[0]))
  if len(set(numbers)) < len(numbers):
    raise ValueError(f'config.sweep.seeds={text!r} repeats a seed: '
                     'its members would be the same run.')
  return numbers


def axes(config: Any) -> dict[str, list[float]]:
  """{config key: values} of the sweep's hyperparameter axes.

  Raises:
    ValueError: naming the key, for values that are not numbers, repeat,
      or would change the program (EMA on for some members only).
  """
  found = {}
  for name, key in AXES.items():
    values = _numbers(config, name, float)
    if not values:
      continue
    if len(set(values)) < len(values):
      raise ValueError(f'config.sweep.{name} repeats a value: its members '
                       'would be the same runs.')
    if name == 'ema_decay' and min(values) <= 0:
      raise ValueError(
          f'config.sweep.ema_decay={config.sweep.ema_decay!r}: every value '
          'must be > 0; EMA off for some members changes the program, which '
          'needs separate runs.')
    found[key] = values
  return found


def members(config: Any) -> Optional[list[dict[str, Any]]]:
  """Each member's {'seed': seed, config key: value, ...}: the product of
  the axes and the seeds, seeds varying fastest; None for a single run."""
  seeds, swept = member_seeds(config), axes(config)
  if seeds is None and not swept:
    return None
  grid = itertools.product(*swept.values(), seeds or [config.seed])
  return [{**dict(zip(swept, values[:-1])), 'seed': values[-1]}
          for values in grid]


def _set(config: ml_collections.ConfigDict, key: str, value: Any) -> None:
  *parents, leaf = key.split('.')
  node = config
  for parent in parents:
    node = node[parent]
  node[leaf] = type(node[leaf])(value) if leaf in node else value


def own_data(config: Any) -> bool:
  """Whether each member reads the data in its own seed's order
  (config.sweep.own_data) instead of all reading the same batches."""
  return bool(config.get('sweep', {}).get('own_data', False))


def member_config(config: ml_collections.ConfigDict,
                  k: int) -> ml_collections.ConfigDict:
  """The config of the single run that member k computes: its seed and
  hyperparameters, the sweep's data order (or with own_data its seed's),
  no sweep."""
  member = members(config)[k]
  single = ml_collections.ConfigDict(config.to_dict())
  for key, value in member.items():
    _set(single, key, value)
  single.data.seed = -1 if own_data(config) else noise.data_seed(config)
  for name in ('seeds', *AXES):
    single.sweep[name] = ''
  single.sweep.own_data = False
  return single


def over_members(fn: Callable[..., Any]) -> Callable[..., Any]:
  """fn over the leading member axis of its positional arguments
  (`cpu.members.over_members`: vmapped, on CPU member by member); keyword
  arguments are passed to every member."""
  def run(*args, **kwargs):
    return members_lib.over_members(functools.partial(fn, **kwargs), *args)
  return run


def member_keys(seeds: Sequence[int]) -> tuple[jax.Array, jax.Array]:
  """(init keys, step keys) of the members, stacked: `noise.run_keys` of
  each seed."""
  return jax.vmap(noise.run_keys)(jnp.asarray(seeds, jnp.uint32))


def _with_learning_rates(state: Any, config: Any, learning_rate: float,
                         rates: Optional[list[float]],
                         differentiable: bool) -> Any:
  """Stacked states whose optimizer holds each member's learning rate."""
  if rates is None:
    return state
  tx = optimizers.create_optimizer(config, learning_rate, differentiable,
                                   injected=True)
  opt_state = jax.vmap(tx.init)(state.params)
  opt_state.hyperparams['learning_rate'] = jnp.asarray(rates, jnp.float32)
  return state.replace(tx=tx, opt_state=opt_state)


def create_member_states(
    config: Any, seeds: Optional[Sequence[int]] = None,
    networks: Optional[tuple[Any, Any]] = None
) -> tuple[train_states.GeneratorState, train_states.TrainState]:
  """(g_states, d_states) of the members, stacked on axis 0: member k's are
  `create_train_states` of member_config(config, k) (given `seeds`
  instead, of config with each seed), with `networks` if given.

  Raises:
    ValueError: for a sweep whose members' configs a run cannot use.
  """
  listed = ([{'seed': seed} for seed in seeds] if seeds is not None
            else members(config))
  base = member_config(config, 0) if seeds is None else config
  init_keys, _ = member_keys([m['seed'] for m in listed])
  # One member at a time, by the single run's own program: the same initial
  # weights to the bit (XLA:CPU's run of it vmapped over 16 members hung).
  created = [train_states.create_train_states(base, key, networks)
             for key in init_keys]
  g_states, d_states = jax.tree.unflatten(
      jax.tree.structure(created[0]),
      [jnp.stack(leaves) for leaves in zip(*map(jax.tree.leaves, created))])
  rates = {key: [m[key] for m in listed] if key in listed[0] else None
           for key in ('optim.lr_g', 'optim.lr_d')}
  differentiable = train_states.Recipe.from_config(
      base, check_model=networks is None).unroll_steps > 0
  return (_with_learning_rates(g_states, base, base.optim.lr_g,
                               rates['optim.lr_g'], False),
          _with_learning_rates(d_states, base, base.optim.lr_d,
                               rates['optim.lr_d'], differentiable))


def step_hyperparameters(config: Any) -> dict[str, jax.Array]:
  """The members' values of the step's swept arguments (STEP_AXES), for
  `sweep_step`; {} if none is swept."""
  listed = members(config) or []
  return {key: jnp.asarray([m[key] for m in listed], jnp.float32)
          for key in STEP_AXES if listed and key in listed[0]}


def sweep_step(g_states: train_states.GeneratorState,
               d_states: train_states.TrainState, batch: jax.Array,
               step_keys: jax.Array, axis_name: Optional[str] = None,
               recipe: train_states.Recipe = train_states.Recipe(),
               hyperparameters: Optional[dict[str, jax.Array]] = None,
               batch_per_member: bool = False
               ) -> tuple[train_states.GeneratorState,
                          train_states.TrainState, steps.Metrics]:
  """`steps.train_step` of every member on the same real batch (with
  batch_per_member, on its own: batch's leading axis is the members'),
  each with its own step key and its values of `hyperparameters` (recipe
  fields -> (members,) arrays, `step_hyperparameters`); metrics come back
  per member (leading axis)."""
  def member_step(g_state, d_state, key, values, member_batch=batch):
    return steps.train_step(g_state, d_state, member_batch, key, axis_name,
                            dataclasses.replace(recipe, **values))
  stacked = (g_states, d_states, step_keys, hyperparameters or {})
  return members_lib.over_members(
      member_step, *stacked, *([batch] if batch_per_member else []))


def single_run_state(state: Any) -> Any:
  """A member's state as the single run's: an optimizer state that holds
  the learning rate (a swept one) without it, as a plain optimizer's."""
  if isinstance(state.opt_state, optax.InjectStatefulHyperparamsState):
    return state.replace(opt_state=state.opt_state.inner_state)
  return state


def member(tree: Any, k: int, axis: int = 0) -> Any:
  """Member k of stacked states or metrics, whose member axis is `axis`
  (1 for states replicated over devices)."""
  index = (slice(None),) * axis + (k,)
  return jax.tree.map(lambda x: x[index], tree)
