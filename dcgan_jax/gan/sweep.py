"""Many GANs in one program: the train states of several members stacked on
a leading member axis, and `train_step` vmapped over it.

Member k is the run of seed `seeds[k]`: its initial weights, z and dropout
come from `noise.run_keys(seeds[k])`, as a single run's from its seed, so it
computes what that run computes; the members share each step's real batch.
A sweep step is one compiled program under `jax.jit` or, with `axis_name`,
inside `jax.pmap` (the member axis is vmapped, the device axis pmapped).
"""

import functools
from typing import Any, Optional, Sequence

import jax
import jax.numpy as jnp

from dcgan_jax.gan import noise
from dcgan_jax.gan import steps
from dcgan_jax.gan import train_states


def member_keys(seeds: Sequence[int]) -> tuple[jax.Array, jax.Array]:
  """(init keys, step keys) of the members, stacked: `noise.run_keys` of
  each seed."""
  return jax.vmap(noise.run_keys)(jnp.asarray(seeds, jnp.uint32))


def create_member_states(
    config: Any, seeds: Sequence[int]
) -> tuple[train_states.GeneratorState, train_states.TrainState]:
  """(g_states, d_states) of the members, stacked on axis 0: member k's are
  `create_train_states(config, init key of seeds[k])`."""
  init_keys, _ = member_keys(seeds)
  return jax.vmap(lambda key: train_states.create_train_states(config, key))(
      init_keys)


def sweep_step(g_states: train_states.GeneratorState,
               d_states: train_states.TrainState, batch: jax.Array,
               step_keys: jax.Array, axis_name: Optional[str] = None,
               recipe: train_states.Recipe = train_states.Recipe()
               ) -> tuple[train_states.GeneratorState,
                          train_states.TrainState, steps.Metrics]:
  """`steps.train_step` of every member on the same real batch, each with
  its own step key; metrics come back per member (leading axis)."""
  return jax.vmap(
      functools.partial(steps.train_step, axis_name=axis_name, recipe=recipe),
      in_axes=(0, 0, None, 0))(g_states, d_states, batch, step_keys)


def member(tree: Any, k: int) -> Any:
  """Member k of stacked states or metrics."""
  return jax.tree.map(lambda x: x[k], tree)
