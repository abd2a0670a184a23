"""The pure update steps: what they change, determinism, jit vs pmap."""

import functools

from flax import jax_utils
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dcgan_jax import steps
from tests.conftest import tiny_config

METRICS = ('d_loss', 'g_loss', 'd_real', 'd_fake', 'd_fake_after')


def _batch(config, seed=0):
  size, channels = config.data.image_size, config.data.channels
  return jax.random.uniform(jax.random.key(seed),
                            (config.batch_size, size, size, channels),
                            minval=-1.0, maxval=1.0)


def _leaves_differ(a, b) -> list[bool]:
  return [not np.array_equal(x, y)
          for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b))]


def _run(config, num_steps, seed):
  g_state, d_state = steps.create_train_states(config, jax.random.key(seed))
  step = jax.jit(steps.train_step)
  rng = jax.random.key(seed + 1)
  for i in range(num_steps):
    g_state, d_state, metrics = step(g_state, d_state, _batch(config, i), rng)
  return g_state, d_state, metrics


def test_d_step_changes_only_d():
  config = tiny_config()
  g_state, d_state = steps.create_train_states(config, jax.random.key(0))
  new_d, metrics = jax.jit(steps.d_step)(g_state, d_state, _batch(config),
                                         jax.random.key(1))
  assert isinstance(new_d, steps.TrainState)
  assert not isinstance(new_d, steps.GeneratorState)
  assert all(_leaves_differ(d_state.params, new_d.params))
  assert any(_leaves_differ(d_state.batch_stats, new_d.batch_stats))
  assert int(new_d.step) == 1
  assert set(metrics) == {'d_loss', 'd_real', 'd_fake'}


def test_g_step_changes_only_g():
  config = tiny_config()
  g_state, d_state = steps.create_train_states(config, jax.random.key(0))
  g_step = jax.jit(steps.g_step, static_argnames='batch_size')
  new_g, metrics = g_step(g_state, d_state, jax.random.key(1),
                          batch_size=config.batch_size)
  assert isinstance(new_g, steps.GeneratorState)
  assert all(_leaves_differ(g_state.params, new_g.params))
  assert any(_leaves_differ(g_state.batch_stats, new_g.batch_stats))
  assert int(new_g.step) == 1
  assert set(metrics) == {'g_loss', 'd_fake_after'}


def test_train_step_updates_both_and_reports_metrics():
  config = tiny_config()
  g0, d0 = steps.create_train_states(config, jax.random.key(0))
  g1, d1, metrics = jax.jit(steps.train_step)(g0, d0, _batch(config),
                                              jax.random.key(1))
  assert all(_leaves_differ(g0.params, g1.params))
  assert all(_leaves_differ(d0.params, d1.params))
  assert set(METRICS) <= set(metrics)
  for key in ('d_real', 'd_fake', 'd_fake_after'):
    assert 0.0 < float(metrics[key]) < 1.0


def test_d_fake_is_scored_before_and_d_fake_after_after_d_update():
  config = tiny_config()
  g0, d0 = steps.create_train_states(config, jax.random.key(0))
  rng = jax.random.key(1)
  _, d1, metrics = jax.jit(steps.train_step)(g0, d0, _batch(config), rng)
  # Rebuild the step's fakes from its documented z: base key folded with
  # the step number.
  z = steps.sample_z(jax.random.fold_in(rng, 0), config.batch_size,
                     config.model.nz)
  fake, _ = g0.apply_fn({'params': g0.params, 'batch_stats': g0.batch_stats},
                        z, train=True, mutable=['batch_stats'])

  def score(d_state):
    logits, _ = d_state.apply_fn(
        {'params': d_state.params, 'batch_stats': d_state.batch_stats}, fake,
        train=True, mutable=['batch_stats'])
    return float(jnp.mean(jax.nn.sigmoid(logits)))

  assert float(metrics['d_fake']) == pytest.approx(score(d0), rel=1e-5)
  assert float(metrics['d_fake_after']) == pytest.approx(score(d1), rel=1e-5)
  assert score(d0) != score(d1)


def test_train_step_is_d_step_then_g_update_on_the_same_fakes():
  """train_step's D half equals d_step: same z (from the step), same math."""
  config = tiny_config()
  g0, d0 = steps.create_train_states(config, jax.random.key(0))
  rng = jax.random.key(1)
  _, d_via_train, metrics = jax.jit(steps.train_step)(g0, d0, _batch(config),
                                                      rng)
  d_via_d_step, d_metrics = jax.jit(steps.d_step)(g0, d0, _batch(config), rng)
  for a, b in zip(jax.tree.leaves(d_via_train), jax.tree.leaves(d_via_d_step)):
    np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
  for key in d_metrics:
    assert float(metrics[key]) == pytest.approx(float(d_metrics[key]),
                                                rel=1e-6)


def test_same_seed_same_parameters_different_seed_different():
  config = tiny_config()
  a = _run(config, 3, seed=0)
  b = _run(config, 3, seed=0)
  c = _run(config, 3, seed=1)
  for x, y in zip(jax.tree.leaves(a[:2]), jax.tree.leaves(b[:2])):
    np.testing.assert_array_equal(x, y)
  assert all(_leaves_differ(a[0].params, c[0].params))
  assert all(_leaves_differ(a[1].params, c[1].params))


def test_step_rng_comes_from_the_step_number():
  """A step's z depends on the base key and the step, not on call history."""
  config = tiny_config()
  g0, d0 = steps.create_train_states(config, jax.random.key(0))
  rng = jax.random.key(5)
  step = jax.jit(steps.train_step)
  _, _, at_0 = step(g0, d0, _batch(config), rng)
  _, _, at_0_again = step(g0, d0, _batch(config), rng)
  g7 = g0.replace(step=g0.step + 7)
  _, _, at_7 = step(g7, d0.replace(step=d0.step + 7), _batch(config), rng)
  assert float(at_0['g_loss']) == float(at_0_again['g_loss'])
  assert float(at_0['d_fake']) != float(at_7['d_fake'])


def test_pmap_over_4_devices_matches_jit_on_one():
  assert jax.local_device_count() == 4, 'conftest sets 4 CPU devices'
  config = tiny_config(batch_size=16)
  g_state, d_state = steps.create_train_states(config, jax.random.key(0))
  rng = jax.random.key(1)
  num_steps = 5

  jit_step = jax.jit(steps.train_step)
  g1, d1 = g_state, d_state
  for i in range(num_steps):
    g1, d1, jit_metrics = jit_step(g1, d1, _batch(config, i), rng)

  p_step = jax.pmap(functools.partial(steps.train_step, axis_name='batch'),
                    axis_name='batch', in_axes=(0, 0, 0, None))
  g4, d4 = jax_utils.replicate((g_state, d_state))
  for i in range(num_steps):
    batch = _batch(config, i).reshape((4, 4) + _batch(config, i).shape[1:])
    g4, d4, pmap_metrics = p_step(g4, d4, batch, rng)

  for one, many in zip(jax.tree.leaves((g1, d1)), jax.tree.leaves((g4, d4))):
    for device in range(4):
      np.testing.assert_allclose(many[device], one, atol=1e-5, rtol=0)
  for key in METRICS:
    np.testing.assert_allclose(pmap_metrics[key], jit_metrics[key], atol=1e-5)


def test_bfloat16_computes_in_bf16_and_keeps_float32_state():
  config = tiny_config(image_size=32, channels=3)
  config.dtype = 'bfloat16'
  g_state, d_state = steps.create_train_states(config, jax.random.key(0))
  batch, rng = _batch(config), jax.random.key(1)
  jaxpr = str(jax.make_jaxpr(steps.train_step)(g_state, d_state, batch, rng))
  convs = [line for line in jaxpr.splitlines() if 'conv_general_dilated' in line]
  assert convs and all('bf16' in line for line in convs)

  step = jax.jit(steps.train_step, donate_argnums=(0, 1))
  for i in range(20):
    g_state, d_state, metrics = step(g_state, d_state, _batch(config, i), rng)
    for name in METRICS:
      assert metrics[name].dtype == jnp.float32
      assert np.isfinite(metrics[name]), (name, i)
  for leaf in jax.tree.leaves((g_state.params, g_state.opt_state,
                               g_state.batch_stats, d_state.params,
                               d_state.opt_state, d_state.batch_stats)):
    if jnp.issubdtype(leaf.dtype, jnp.floating):
      assert leaf.dtype == jnp.float32
      assert np.all(np.isfinite(leaf))

  # Same parameters, float32 computation: images agree to bf16 precision.
  z = jax.random.normal(jax.random.key(2), (8, config.model.nz))
  mixed = steps.generate(g_state, z)
  config.dtype = 'float32'
  g32, _ = steps.create_train_states(config, jax.random.key(0))
  full = steps.generate(g32.replace(params=g_state.params,
                                    batch_stats=g_state.batch_stats), z)
  assert mixed.dtype == jnp.float32
  assert float(jnp.abs(mixed - full).max()) < 0.1
  assert float(jnp.abs(mixed - full).mean()) < 0.01


def test_unknown_dtype_is_named():
  config = tiny_config()
  config.dtype = 'float16'
  with pytest.raises(ValueError, match="config.dtype='float16'"):
    steps.create_train_states(config, jax.random.key(0))
