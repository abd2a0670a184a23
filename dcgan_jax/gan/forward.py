"""The networks applied: in training mode, as the updates use them, and G in
inference mode for sampling."""

from typing import Any, Callable, Optional

import jax

from dcgan_jax.gan import train_states

GeneratorState = train_states.GeneratorState
TrainState = train_states.TrainState


def as_variables(params: Any, batch_stats: Any) -> dict[str, Any]:
  """A network's flax variables: params, and batch_stats where it has them."""
  if batch_stats is None:
    return {'params': params}
  return {'params': params, 'batch_stats': batch_stats}


def apply_training(state: TrainState, params: Any, batch_stats: Any,
                   x: jax.Array, axis_name: Optional[str],
                   dropout_key: jax.Array) -> tuple[jax.Array, Any]:
  """A network in training mode: (output, updated batch_stats or None)."""
  rngs = {'dropout': dropout_key}
  if batch_stats is None:
    return state.apply_fn({'params': params}, x, train=True,
                          axis_name=axis_name, rngs=rngs), None
  out, updates = state.apply_fn(as_variables(params, batch_stats), x,
                                train=True, axis_name=axis_name, rngs=rngs,
                                mutable=['batch_stats'])
  return out, updates['batch_stats']


def generate_with_pullback(
    g_state: GeneratorState, z: jax.Array, axis_name: Optional[str],
    dropout_key: jax.Array
) -> tuple[jax.Array, Callable[[jax.Array], Any], Any]:
  """G(z) in training mode, with its pullback to G's parameters.

  Returns:
    (fake images, vjp from d(loss)/d(fake) to d(loss)/d(params), G's updated
    batch_stats). Under jit an unused vjp costs nothing.
  """
  def apply(params):
    return apply_training(g_state, params, g_state.batch_stats, z,
                          axis_name, dropout_key)
  fake, g_vjp, batch_stats = jax.vjp(apply, g_state.params, has_aux=True)
  return fake, g_vjp, batch_stats


def generate(g_state: GeneratorState, z: jax.Array,
             use_ema: bool = True) -> jax.Array:
  """G(z) for inference: BatchNorm uses its running averages; the EMA
  weights if G has them and use_ema, with the statistics last computed for
  them by `ema.recompute_ema_batch_stats`."""
  if use_ema and g_state.ema_params is not None:
    variables = as_variables(g_state.ema_params, g_state.ema_batch_stats)
  else:
    variables = as_variables(g_state.params, g_state.batch_stats)
  return g_state.apply_fn(variables, z, train=False)
