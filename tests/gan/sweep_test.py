"""Sweeps: members stacked and vmapped compute what single runs compute."""

import functools

from flax import jax_utils
import jax
import numpy as np

from dcgan_jax.gan import noise
from dcgan_jax.gan import steps
from dcgan_jax.gan import sweep
from dcgan_jax.gan import train_states
from tests.conftest import tiny_config

SEEDS = (3, 7)
NUM_STEPS = 2


def _batches(config):
  shape = (config.batch_size, 28, 28, 1)
  return [jax.random.uniform(jax.random.key(100 + i), shape, minval=-1)
          for i in range(NUM_STEPS)]


def _single_run(config, seed, recipe):
  init_rng, step_rng = noise.run_keys(seed)
  g_state, d_state = train_states.create_train_states(config, init_rng)
  step = jax.jit(functools.partial(steps.train_step, recipe=recipe))
  for batch in _batches(config):
    g_state, d_state, metrics = step(g_state, d_state, batch, step_rng)
  return g_state, d_state, metrics


def _assert_close(a, b):
  for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
    np.testing.assert_allclose(np.asarray(x), np.asarray(y), atol=1e-5,
                               rtol=0)


def test_each_member_is_the_single_run_of_its_seed():
  config = tiny_config(batch_size=8)
  config.ema_decay = 0.9
  recipe = train_states.Recipe.from_config(config)
  g_states, d_states = sweep.create_member_states(config, SEEDS)
  _, step_keys = sweep.member_keys(SEEDS)
  step = jax.jit(functools.partial(sweep.sweep_step, recipe=recipe))
  for batch in _batches(config):
    g_states, d_states, metrics = step(g_states, d_states, batch, step_keys)
  assert metrics['g_loss'].shape == (len(SEEDS),)
  for k, seed in enumerate(SEEDS):
    _assert_close(sweep.member((g_states, d_states, metrics), k),
                  _single_run(config, seed, recipe))
  # Members differ: each has its own initialisation and z.
  assert not np.allclose(metrics['g_loss'][0], metrics['g_loss'][1])


def test_a_sweep_on_4_devices_matches_one_device():
  assert jax.local_device_count() == 4, 'conftest sets 4 CPU devices'
  config = tiny_config(batch_size=8)
  recipe = train_states.Recipe.from_config(config)
  states = sweep.create_member_states(config, SEEDS)
  _, step_keys = sweep.member_keys(SEEDS)
  one = states
  jit_step = jax.jit(functools.partial(sweep.sweep_step, recipe=recipe))
  p_step = jax.pmap(
      functools.partial(sweep.sweep_step, axis_name='batch', recipe=recipe),
      axis_name='batch', in_axes=(0, 0, 0, None))
  four = jax_utils.replicate(states)
  for batch in _batches(config):
    *one, _ = jit_step(*one, batch, step_keys)
    *four, _ = p_step(*four, batch.reshape(4, 2, *batch.shape[1:]),
                      step_keys)
  _assert_close(one, jax.tree.map(lambda x: np.asarray(x)[0], four))


def _axes_config(seeds='3,7'):
  """Two learning rates for G, two penalty weights, EMA on."""
  config = tiny_config(batch_size=8)
  config.objective = 'wgan_gp'
  config.model.d_norm = 'layer'
  config.sweep = {'seeds': seeds, 'lr_g': '1e-4,3e-4', 'lr_d': '',
                  'gp_weight': '1,10', 'ema_decay': '0.9'}
  return config


def test_members_are_the_product_of_the_axes_and_the_seeds():
  config = _axes_config()
  listed = sweep.members(config)
  assert len(listed) == 8
  assert listed[0] == {'optim.lr_g': 1e-4, 'gp_weight': 1.0,
                       'ema_decay': 0.9, 'seed': 3}
  assert listed[1]['seed'] == 7 and listed[1]['gp_weight'] == 1.0
  assert listed[7] == {'optim.lr_g': 3e-4, 'gp_weight': 10.0,
                       'ema_decay': 0.9, 'seed': 7}
  single = sweep.member_config(config, 6)
  assert (single.seed, single.optim.lr_g, single.gp_weight) == (3, 3e-4, 10.0)
  assert single.data.seed == 0 and sweep.members(single) is None


def _sweep_run(config):
  """(g_states, d_states, metrics) of config's sweep after the batches,
  its swept values traced."""
  g_states, d_states = sweep.create_member_states(config)
  _, step_keys = sweep.member_keys([m['seed'] for m in sweep.members(config)])
  step = jax.jit(functools.partial(
      sweep.sweep_step, hyperparameters=sweep.step_hyperparameters(config),
      recipe=train_states.Recipe.from_config(sweep.member_config(config, 0))))
  for batch in _batches(config):
    g_states, d_states, metrics = step(g_states, d_states, batch, step_keys)
  return g_states, d_states, metrics


def test_swept_hyperparameters_give_each_member_its_single_run():
  config = _axes_config(seeds='1')
  config.sweep.lr_g = '3e-4'  # One value, still traced: not the base 2e-4.
  g_states, d_states, metrics = _sweep_run(config)
  # Member 1: lr_g 3e-4 and gp_weight 10, against member 0's 1.
  single = sweep.member_config(config, 1)
  assert (single.optim.lr_g, single.gp_weight) == (3e-4, 10.0)
  expected = _single_run(single, single.seed,
                         train_states.Recipe.from_config(single))
  g_state, d_state = sweep.member((g_states, d_states), 1)
  _assert_close((sweep.single_run_state(g_state),
                 sweep.single_run_state(d_state), sweep.member(metrics, 1)),
                expected)


def test_a_swept_r1_gamma_gives_each_member_its_single_run():
  """gamma 0 and 5 for R1, every second D update: traced, the member of 0
  computes a zero penalty, its single run none."""
  config = tiny_config(batch_size=8)
  config.objective = 'hinge'
  config.model.d_norm = 'none'
  config.reg_every = 2
  config.sweep = {'r1_gamma': '0,5'}
  g_states, d_states, metrics = _sweep_run(config)
  for k in (0, 1):
    single = sweep.member_config(config, k)
    assert single.r1_gamma == 5.0 * k
    g_state, d_state, single_metrics = _single_run(
        single, single.seed, train_states.Recipe.from_config(single))
    _assert_close(sweep.member((g_states, d_states), k), (g_state, d_state))
    for name, value in single_metrics.items():
      np.testing.assert_allclose(metrics[name][k], value, atol=1e-5)
  assert float(metrics['r1_penalty'][0]) == 0.0
