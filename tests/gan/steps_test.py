"""The pure update steps: what they change, determinism, jit vs pmap."""

import functools

import flax
from flax import jax_utils
from flax import linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from dcgan_jax.gan import ema
from dcgan_jax.gan import forward
from dcgan_jax.gan import losses
from dcgan_jax.gan import noise
from dcgan_jax.gan import optimizers
from dcgan_jax.gan import steps
from dcgan_jax.gan import train_states
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
  g_state, d_state = train_states.create_train_states(config,
                                                      jax.random.key(seed))
  step = jax.jit(steps.train_step)
  rng = jax.random.key(seed + 1)
  for i in range(num_steps):
    g_state, d_state, metrics = step(g_state, d_state, _batch(config, i), rng)
  return g_state, d_state, metrics


def test_d_step_changes_only_d():
  config = tiny_config()
  g_state, d_state = train_states.create_train_states(config, jax.random.key(0))
  new_d, metrics = jax.jit(steps.d_step)(g_state, d_state, _batch(config),
                                         jax.random.key(1))
  assert isinstance(new_d, train_states.TrainState)
  assert not isinstance(new_d, train_states.GeneratorState)
  assert all(_leaves_differ(d_state.params, new_d.params))
  assert any(_leaves_differ(d_state.batch_stats, new_d.batch_stats))
  assert int(new_d.step) == 1
  assert set(metrics) == {'d_loss', 'd_real', 'd_fake'}


def test_g_step_changes_only_g():
  config = tiny_config()
  g_state, d_state = train_states.create_train_states(config, jax.random.key(0))
  g_step = jax.jit(steps.g_step, static_argnames='batch_size')
  new_g, metrics = g_step(g_state, d_state, jax.random.key(1),
                          batch_size=config.batch_size)
  assert isinstance(new_g, train_states.GeneratorState)
  assert all(_leaves_differ(g_state.params, new_g.params))
  assert any(_leaves_differ(g_state.batch_stats, new_g.batch_stats))
  assert int(new_g.step) == 1
  assert set(metrics) == {'g_loss', 'd_fake_after'}


def test_train_step_updates_both_and_reports_metrics():
  config = tiny_config()
  g0, d0 = train_states.create_train_states(config, jax.random.key(0))
  g1, d1, metrics = jax.jit(steps.train_step)(g0, d0, _batch(config),
                                              jax.random.key(1))
  assert all(_leaves_differ(g0.params, g1.params))
  assert all(_leaves_differ(d0.params, d1.params))
  assert set(METRICS) <= set(metrics)
  for key in ('d_real', 'd_fake', 'd_fake_after'):
    assert 0.0 < float(metrics[key]) < 1.0


def test_d_fake_is_scored_before_and_d_fake_after_after_d_update():
  config = tiny_config()
  g0, d0 = train_states.create_train_states(config, jax.random.key(0))
  rng = jax.random.key(1)
  _, d1, metrics = jax.jit(steps.train_step)(g0, d0, _batch(config), rng)
  # Rebuild the step's fakes from its documented z: base key folded with
  # the step number.
  z = noise.sample_z(jax.random.fold_in(rng, 0), config.batch_size,
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
  g0, d0 = train_states.create_train_states(config, jax.random.key(0))
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
  g0, d0 = train_states.create_train_states(config, jax.random.key(0))
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
  g_state, d_state = train_states.create_train_states(config, jax.random.key(0))
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
  g_state, d_state = train_states.create_train_states(config, jax.random.key(0))
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
  generate = jax.jit(forward.generate)
  mixed = generate(g_state, z)
  config.dtype = 'float32'
  g32, _ = train_states.create_train_states(config, jax.random.key(0))
  full = generate(g32.replace(params=g_state.params,
                              batch_stats=g_state.batch_stats), z)
  assert mixed.dtype == jnp.float32
  assert float(jnp.abs(mixed - full).max()) < 0.1
  assert float(jnp.abs(mixed - full).mean()) < 0.01


def test_unknown_dtype_is_named():
  config = tiny_config()
  config.dtype = 'float16'
  with pytest.raises(ValueError, match="config.dtype='float16'"):
    train_states.create_train_states(config, jax.random.key(0))


def _recipe_states(objective='non_saturating', d_norm='batch', batch_size=16,
                   **recipe):
  config = tiny_config(batch_size=batch_size)
  config.objective = objective
  config.model.d_norm = d_norm
  config.update(recipe)
  g_state, d_state = train_states.create_train_states(config, jax.random.key(0))
  return config, train_states.Recipe.from_config(config), g_state, d_state


def test_n_critic_makes_n_d_updates_then_one_g_update():
  config, recipe, g0, d0 = _recipe_states('hinge', 'none', n_critic=5)
  batches = jnp.stack([_batch(config, i) for i in range(5)])
  rng = jax.random.key(1)
  g1, d1, metrics = jax.jit(functools.partial(
      steps.train_step, recipe=recipe))(g0, d0, batches, rng)
  assert (int(g1.step), int(d1.step)) == (1, 5)
  # The same D as 5 d_steps on the sub-batches in order.
  d_step = jax.jit(functools.partial(steps.d_step, recipe=recipe))
  d = d0
  for i in range(5):
    d, _ = d_step(g0, d, batches[i], rng)
  for a, b in zip(jax.tree.leaves(d1), jax.tree.leaves(d)):
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
  assert {'critic_real', 'critic_fake', 'critic_fake_after', 'd_loss',
          'g_loss'} == set(metrics)
  with pytest.raises(ValueError, match=r'n_critic=5 takes real images with '
                     r'a leading axis of 5'):
    jax.jit(functools.partial(steps.train_step, recipe=recipe))(
        g0, d0, _batch(config), rng)


def test_unrolling_changes_g_only_and_0_is_the_plain_step():
  config, _, g0, d0 = _recipe_states()
  rng, batch = jax.random.key(1), _batch(config)
  plain = jax.jit(steps.train_step)(g0, d0, batch, rng)
  zero = jax.jit(functools.partial(
      steps.train_step, recipe=train_states.Recipe(unroll_steps=0)))(
          g0, d0, batch, rng)
  for a, b in zip(jax.tree.leaves(plain), jax.tree.leaves(zero)):
    np.testing.assert_array_equal(a, b)

  config, recipe, g0, d0 = _recipe_states(unroll_steps=3)
  g3, d3, metrics = jax.jit(functools.partial(
      steps.train_step, recipe=recipe))(g0, d0, batch, rng)
  # D's own update is the plain one; G followed the unrolled D.
  for a, b in zip(jax.tree.leaves(plain[1].params), jax.tree.leaves(d3.params)):
    np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
  assert all(_leaves_differ(plain[0].params, g3.params))
  assert all(np.all(np.isfinite(x)) for x in jax.tree.leaves((g3, metrics)))


def test_unrolled_g_gradient_follows_the_advanced_d():
  """G's loss with k = 1 equals G's loss against D after one more update
  on the same images (computed here without the step's code path)."""
  config, recipe, g0, d0 = _recipe_states(unroll_steps=1)
  batch, rng = _batch(config), jax.random.key(1)
  _, d1, _ = jax.jit(steps.train_step)(g0, d0, batch, rng)  # D's own update.
  z = noise.sample_z(jax.random.fold_in(rng, 0), config.batch_size,
                     config.model.nz)
  fake, _ = g0.apply_fn({'params': g0.params, 'batch_stats': g0.batch_stats},
                        z, train=True, mutable=['batch_stats'])

  def d_loss(params, batch_stats):
    outs = []
    for images in (batch, fake):
      out, updates = d1.apply_fn({'params': params, 'batch_stats': batch_stats},
                                 images, train=True, mutable=['batch_stats'])
      batch_stats = updates['batch_stats']
      outs.append(out)
    return (jnp.mean(jax.nn.softplus(-outs[0])) +
            jnp.mean(jax.nn.softplus(outs[1]))), batch_stats
  grads, batch_stats = jax.grad(d_loss, has_aux=True)(d1.params,
                                                      d1.batch_stats)
  advanced = d1.apply_gradients(grads=grads, batch_stats=batch_stats)
  logits, _ = advanced.apply_fn(
      {'params': advanced.params, 'batch_stats': advanced.batch_stats}, fake,
      train=True, mutable=['batch_stats'])
  _, _, metrics = jax.jit(functools.partial(
      steps.train_step, recipe=recipe))(g0, d0, batch, rng)
  assert float(metrics['g_loss']) == pytest.approx(
      float(jnp.mean(jax.nn.softplus(-logits))), rel=1e-4)


def test_ema_decay_warms_up_then_holds():
  decay = 0.999
  # (1 + n) / (10 + n) until it reaches the decay, at n = 8,991 for 0.999.
  for n, expected in [(0, 0.1), (1, 2 / 11), (90, 0.91), (990, 0.991),
                      (8990, 8991 / 9000), (8991, decay), (50_000, decay)]:
    assert float(ema.ema_decay_at(decay, n)) == pytest.approx(expected,
                                                                rel=1e-6)
  assert float(ema.ema_decay_at(0.5, 0)) == pytest.approx(0.1)
  assert float(ema.ema_decay_at(0.5, 100)) == 0.5


def test_ema_of_g_follows_its_warmed_up_recursion_and_leaves_statistics():
  decay = 0.9
  config, recipe, g, d = _recipe_states(ema_decay=decay)
  step = jax.jit(functools.partial(steps.train_step, recipe=recipe))
  expected = jax.tree.map(np.asarray, g.params)
  statistics = jax.tree.map(np.asarray, g.ema_batch_stats)
  for i in range(12):
    g, d, _ = step(g, d, _batch(config, i), jax.random.key(1))
    # After G's update number n = i + 1.
    beta = min(decay, (2 + i) / (11 + i))
    expected = jax.tree.map(lambda e, new, b=beta: b * e + (1 - b) * new,
                            expected, g.params)
  for a, b in zip(jax.tree.leaves(expected), jax.tree.leaves(g.ema_params)):
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)
  # The step does not average statistics of other weights.
  for a, b in zip(jax.tree.leaves(statistics),
                  jax.tree.leaves(g.ema_batch_stats)):
    np.testing.assert_array_equal(a, b)
  z = jax.random.normal(jax.random.key(3), (4, config.model.nz))
  averaged = g.apply_fn({'params': g.ema_params,
                         'batch_stats': g.ema_batch_stats}, z, train=False)
  np.testing.assert_array_equal(forward.generate(g, z), averaged)
  assert not np.array_equal(forward.generate(g, z, use_ema=False), averaged)


def _trained_ema_state(model='dcgan', num_steps=3):
  """A G with EMA weights (and BatchNorm) a few steps into training."""
  config = tiny_config()
  config.model.name = model
  config.ema_decay = 0.5
  g, d = train_states.create_train_states(config, jax.random.key(0))
  step = jax.jit(functools.partial(
      steps.train_step, recipe=train_states.Recipe.from_config(config)))
  for i in range(num_steps):
    g, d, _ = step(g, d, _batch(config, i), jax.random.key(1))
  return config, g


@pytest.mark.parametrize('model', ['dcgan', 'mlp'])
def test_recomputed_statistics_are_the_ema_weights_batch_statistics(model):
  config, g = _trained_ema_state(model)
  rng, num_batches = jax.random.key(7), 3
  recomputed = jax.jit(ema.recompute_ema_batch_stats,
                       static_argnums=(2, 3))(g, rng, num_batches,
                                              config.batch_size)
  # By hand: the same z (drawn as documented), each BatchNorm layer's
  # input captured, its batch mean and variance over all but the feature
  # axis, averaged over the batches.
  key = jax.random.fold_in(jax.random.fold_in(rng, g.step), 5)
  sums = {}
  for i in range(num_batches):
    z = jax.random.normal(jax.random.fold_in(key, i),
                          (config.batch_size, config.model.nz))
    inputs = {}

    def capture(next_fn, args, kwargs, context, inputs=inputs):
      if isinstance(context.module, nn.BatchNorm):
        inputs[context.module.path] = np.asarray(args[0], np.float64)
      return next_fn(*args, **kwargs)

    with nn.intercept_methods(capture):
      g.apply_fn({'params': g.ema_params, 'batch_stats': g.batch_stats}, z,
                 train=True, mutable=['batch_stats'])
    assert inputs
    for path, x in inputs.items():
      x = x.reshape(-1, x.shape[-1])
      mean, var = x.mean(axis=0), x.var(axis=0)
      total = sums.setdefault(path, [0.0, 0.0])
      total[0] = total[0] + mean / num_batches
      total[1] = total[1] + var / num_batches
  stats = flax.traverse_util.flatten_dict(
      flax.core.unfreeze(recomputed.ema_batch_stats))
  assert len(stats) == 2 * len(sums)
  for path, (mean, var) in sums.items():
    np.testing.assert_allclose(stats[(*path, 'mean')], mean, rtol=1e-4,
                               atol=1e-6)
    np.testing.assert_allclose(stats[(*path, 'var')], var, rtol=1e-4,
                               atol=1e-6)
  # Nothing else changes; the statistics differ from the trained weights'.
  for a, b in zip(jax.tree.leaves(recomputed.replace(ema_batch_stats=None)),
                  jax.tree.leaves(g.replace(ema_batch_stats=None))):
    np.testing.assert_array_equal(a, b)
  assert any(_leaves_differ(recomputed.ema_batch_stats, g.batch_stats))


def test_recomputing_statistics_leaves_a_g_without_batch_norm_or_ema():
  config, g = _trained_ema_state()
  rng = jax.random.key(7)
  plain = g.replace(ema_params=None, ema_batch_stats=None)
  assert ema.recompute_ema_batch_stats(plain, rng, 2, 4) is plain
  no_batch_norm = g.replace(batch_stats=None, ema_batch_stats=None)
  assert ema.recompute_ema_batch_stats(no_batch_norm, rng, 2,
                                         4) is no_batch_norm


def test_recomputed_statistics_agree_on_1_and_4_devices():
  config, g = _trained_ema_state()
  rng, batch = jax.random.key(7), config.batch_size
  one = jax.jit(ema.recompute_ema_batch_stats, static_argnums=(2, 3))(
      g, rng, 2, batch)
  four = jax.pmap(functools.partial(ema.recompute_ema_batch_stats,
                                    num_batches=2, batch_size=batch // 4,
                                    axis_name='batch'),
                  axis_name='batch', in_axes=(0, None))(
                      jax_utils.replicate(g), rng)
  for a, b in zip(jax.tree.leaves(one.ema_batch_stats),
                  jax.tree.leaves(four.ema_batch_stats)):
    np.testing.assert_allclose(a, b[0], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(b[0], b[3])


@pytest.mark.parametrize('objective,d_norm,recipe', [
    ('minimax', 'batch', {'label_smoothing': 0.1}),
    ('wgan_gp', 'layer', {'n_critic': 2}),
    ('hinge', 'none', {'unroll_steps': 1, 'ema_decay': 0.5,
                       'r1_gamma': 1.0, 'r2_gamma': 0.5}),
    ('least_squares', 'batch', {}),
])
def test_every_objective_agrees_on_1_and_4_devices(objective, d_norm, recipe):
  """One step: from the second on, Adam's normalisation of gradients near 0
  (G's first layer under a young critic) turns float32 sums taken in another
  order into differences of a few 1e-5."""
  config, recipe, g_state, d_state = _recipe_states(objective, d_norm,
                                                    **recipe)
  rng = jax.random.key(1)
  lead = (recipe.n_critic,) if recipe.n_critic > 1 else ()

  def batch(i):
    return jax.random.uniform(jax.random.key(i), lead + (16, 28, 28, 1),
                              minval=-1.0)

  step = functools.partial(steps.train_step, recipe=recipe)
  g1, d1, jit_metrics = jax.jit(step)(g_state, d_state, batch(0), rng)
  p_step = jax.pmap(functools.partial(step, axis_name='batch'),
                    axis_name='batch', in_axes=(0, 0, 0, None))
  # Device j takes rows 4j..4j+3 of every sub-batch.
  per_device = jnp.moveaxis(batch(0).reshape(lead + (4, 4, 28, 28, 1)),
                            len(lead), 0)
  g4, d4, pmap_metrics = p_step(*jax_utils.replicate((g_state, d_state)),
                                per_device, rng)
  for one, many in zip(jax.tree.leaves((g1, d1)), jax.tree.leaves((g4, d4))):
    np.testing.assert_allclose(many[0], one, atol=1e-5, rtol=1e-5)
  assert set(pmap_metrics) == set(jit_metrics)
  expected = ({'d_real', 'd_fake', 'd_fake_after'} if objective == 'minimax'
              else {'critic_real', 'critic_fake', 'critic_fake_after'})
  if objective == 'wgan_gp':
    expected |= {'wasserstein', 'gradient_penalty', 'grad_norm'}
  if recipe.uses_r1:
    expected |= {'r1_penalty', 'r2_penalty'}
  assert set(jit_metrics) == expected | {'d_loss', 'g_loss'}
  for key in jit_metrics:
    np.testing.assert_allclose(pmap_metrics[key][0], jit_metrics[key],
                               atol=1e-5, rtol=1e-5)


class _LinearD(nn.Module):
  """D(x) = w.x: its input gradient is w for every image."""

  @nn.compact
  def __call__(self, x, train=True, axis_name=None):
    del train, axis_name
    return nn.Dense(1, use_bias=False)(x.reshape(x.shape[0], -1))[:, 0]


def test_lazy_r1_and_r2_every_kth_d_update_scaled_by_k():
  """With D(x) = w.x, R1 and R2 are each gamma / 2 ||w||^2, with gradient
  gamma w; every third D update adds 3 times both, the others nothing (an
  SGD step shows the gradient)."""
  config, _, g_state, _ = _recipe_states(d_norm='none')
  batch, rng = _batch(config), jax.random.key(1)
  params = _LinearD().init(jax.random.key(2), batch)['params']
  lr = 0.1
  d0 = train_states.TrainState.create(apply_fn=_LinearD().apply,
                                      params=params, tx=optax.sgd(lr))
  w = params['Dense_0']['kernel']
  squared_norm = float(jnp.sum(w ** 2))
  r1_gamma, r2_gamma = 2.0, 0.5
  lazy = train_states.Recipe(r1_gamma=r1_gamma, r2_gamma=r2_gamma,
                             reg_every=3)
  for step, scale in ((0, 3), (1, 0), (2, 0), (3, 3)):
    d = d0.replace(step=jnp.asarray(step, jnp.int32))
    plain_d, plain = jax.jit(steps.d_step)(g_state, d, batch, rng)
    lazy_d, metrics = jax.jit(functools.partial(steps.d_step, recipe=lazy))(
        g_state, d, batch, rng)
    for name, gamma in (('r1_penalty', r1_gamma), ('r2_penalty', r2_gamma)):
      assert float(metrics[name]) == pytest.approx(
          scale * gamma / 2 * squared_norm, rel=1e-5, abs=1e-12)
    assert float(metrics['d_loss'] - plain['d_loss']) == pytest.approx(
        scale * (r1_gamma + r2_gamma) / 2 * squared_norm, rel=1e-4, abs=1e-6)
    np.testing.assert_allclose(
        lazy_d.params['Dense_0']['kernel'],
        plain_d.params['Dense_0']['kernel'] - lr * scale * (
            r1_gamma + r2_gamma) * w, rtol=1e-5, atol=1e-7)


def test_d_norm_choices_and_their_state():
  _, _, _, batch_d = _recipe_states(d_norm='batch')
  _, _, _, layer_d = _recipe_states(d_norm='layer')
  _, _, _, plain_d = _recipe_states(d_norm='none')
  assert batch_d.batch_stats is not None
  assert layer_d.batch_stats is None and plain_d.batch_stats is None
  assert any('LayerNorm' in k for k in layer_d.params)
  assert set(plain_d.params) == {'Conv_0', 'Conv_1', 'Conv_2'}


def test_bad_recipes_fail_naming_the_key():
  for overrides, message in [
      ({'objective': 'wgan_gp'}, r"config.objective='wgan_gp' needs a D "
       r"without BatchNorm \(config.model.d_norm = 'layer', 'none' or "
       r"'spectral', not 'batch'\): the penalty constrains"),
      ({'r1_gamma': 1.0, 'r2_gamma': 1.0}, r'config.r1_gamma and '
       'config.r2_gamma needs a D without BatchNorm'),
      ({'objective': 'wgan_gp', 'model': {'d_norm': 'none'}, 'r1_gamma': 1.0},
       r"not to config.objective='wgan_gp': it has its own gradient penalty"),
      ({'objective': 'least_squares', 'model': {'d_norm': 'none'},
        'r2_gamma': 1.0}, r"not to config.objective='least_squares': R1/R2 "
       'were derived for those losses'),
      ({'r1_gamma': -1.0}, r'config.r1_gamma=-1.0 must be >= 0'),
      ({'reg_every': 0}, r'config.reg_every=0 must be an integer >= 1'),
      ({'objective': 'wgn'}, r"config.objective='wgn' is not known; choose "
       'one of non_saturating, minimax, wgan_gp'),
      ({'model': {'d_norm': 'group'}}, r"config.model.d_norm='group' is not "
       'known; choose one of batch, layer, none'),
      ({'n_critic': 0}, r'config.n_critic=0 must be'),
      ({'ema_decay': 1.0}, r'config.ema_decay=1.0 must be in \[0, 1\)'),
      ({'objective': 'hinge', 'label_smoothing': 0.1},
       r'label_smoothing=0.1 applies to the objectives whose D outputs a '
       'probability'),
  ]:
    config = tiny_config()
    config.update(overrides)
    with pytest.raises(ValueError, match=message):
      train_states.create_train_states(config, jax.random.key(0))
  _, recipe, g_state, d_state = _recipe_states(unroll_steps=2)
  with pytest.raises(ValueError, match='needs `real` images'):
    steps.g_step(g_state, d_state, jax.random.key(1), 16, recipe=recipe)


def _model_states(name, objective, batch_size=16, **overrides):
  config = tiny_config(batch_size=batch_size)
  config.model.name = name
  config.objective = objective
  if name in ('keras_dcgan', 'mlp') or objective == 'wgan_gp':
    config.model.d_norm = 'none'
  for key, value in overrides.items():
    if isinstance(value, dict):
      config[key].update(value)
    else:
      config[key] = value
  g_state, d_state = train_states.create_train_states(config, jax.random.key(0))
  return config, train_states.Recipe.from_config(config), g_state, d_state


@pytest.mark.parametrize('name,objective,overrides', [
    # dcgan: test_every_objective_agrees_on_1_and_4_devices; dcgan's D
    # takes dropout and the joint batch through the same code as this one.
    ('dcgan_upsample', 'least_squares', {
        'model': {'upsample': 'bilinear', 'd_dropout': 0.2},
        'd_joint_batch': True}),
    ('keras_dcgan', 'wgan_gp', {'optim': {'name': 'rmsprop'},
                                'd_joint_batch': True}),
    ('mlp', 'hinge', {'model': {'d_dropout': 0.2}, 'ema_decay': 0.5}),
    # Spectral normalisation, R1 and ADA: tests/gan/ada_test.py.
])
def test_every_model_agrees_on_1_and_4_devices(name, objective, overrides):
  """Dropout, the joint batch and each model's normalisation act on the
  global batch: one step on 1 device and on 4 gives the same networks (as
  functions: a bias feeding BatchNorm has no gradient but float noise,
  which Adam scales up to a step) and the same metrics."""
  config, recipe, g_state, d_state = _model_states(name, objective,
                                                   **overrides)
  rng, batch = jax.random.key(1), _batch(config)
  step = functools.partial(steps.train_step, recipe=recipe)
  g1, d1, jit_metrics = jax.jit(step)(g_state, d_state, batch, rng)
  p_step = jax.pmap(functools.partial(step, axis_name='batch'),
                    axis_name='batch', in_axes=(0, 0, 0, None))
  g4, d4, pmap_metrics = p_step(*jax_utils.replicate((g_state, d_state)),
                                batch.reshape((4, 4) + batch.shape[1:]), rng)
  # Device 0's states, as numpy: an op by op slice compiles per shape.
  g4, d4 = jax.tree.map(lambda x: np.asarray(x)[0], (g4, d4))
  assert set(pmap_metrics) == set(jit_metrics)
  for key in jit_metrics:
    np.testing.assert_allclose(pmap_metrics[key][0], jit_metrics[key],
                               atol=1e-5, rtol=1e-5)
  z = jax.random.normal(jax.random.key(2), (8, config.model.nz))
  generate = jax.jit(forward.generate)
  fake1, fake4 = generate(g1, z), generate(g4, z)
  # BatchNorm's running mean takes in a tenth of such a bias's step.
  np.testing.assert_allclose(fake4, fake1, atol=1e-4)
  score = jax.jit(lambda d, x: d.apply_fn(
      forward.as_variables(d.params, d.batch_stats), x, train=False))
  scores = [score(d, fake1) for d in (d1, d4)]
  np.testing.assert_allclose(scores[1], scores[0], atol=1e-5, rtol=1e-5)
  assert not np.allclose(generate(g_state, z), fake1)


@pytest.mark.parametrize('name', ['dcgan', 'dcgan_upsample', 'keras_dcgan',
                                  'mlp'])
def test_every_model_takes_every_objective(name):
  """The step composes for each pair (traced, not compiled: the pairs
  share every piece the 1-vs-4-device tests run)."""
  for objective in losses.OBJECTIVES:
    config, recipe, g_state, d_state = _model_states(name, objective,
                                                     unroll_steps=1)
    _, _, metrics = jax.eval_shape(
        functools.partial(steps.train_step, recipe=recipe), g_state, d_state,
        _batch(config), jax.random.key(1))
    assert {'d_loss', 'g_loss'} <= set(metrics)
    assert all(m.shape == () for m in metrics.values())


def test_rmsprop_is_keras_rmsprop():
  """v = rho v + (1 - rho) g^2; w -= lr g / (sqrt(v) + eps)."""
  config = tiny_config()
  config.optim.update(name='rmsprop', rho=0.9, eps=1e-7)
  optimizer = optimizers.create_optimizer(config, 1e-3)
  w = np.array([0.5, -1.0, 2.0], np.float32)
  state, v = optimizer.init(jnp.asarray(w)), np.zeros(3, np.float32)
  for g in (np.array([0.1, -2.0, 0.0], np.float32),
            np.array([0.3, 1.0, 1e-4], np.float32)):
    updates, state = optimizer.update(jnp.asarray(g), state)
    v = 0.9 * v + 0.1 * g**2
    w_next = w - 1e-3 * g / (np.sqrt(v) + 1e-7)
    np.testing.assert_allclose(w + np.asarray(updates), w_next, rtol=1e-6)
    w = w_next
  for optim, message in [
      ({'name': 'sgd'}, r"config.optim.name='sgd' is not known; choose one "
       'of adam, rmsprop'),
      ({'name': 'rmsprop'}, 'cannot be differentiated through, as '
       r'config.unroll_steps > 0 needs')]:
    config = tiny_config()
    config.optim.update(optim)
    config.unroll_steps = 1
    with pytest.raises(ValueError, match=message):
      train_states.create_train_states(config, jax.random.key(0))


def test_joint_batch_normalises_real_and_fake_together():
  """d_joint_batch: one pass of D over real and fake images (one set of
  BatchNorm statistics), for D's loss and for G's."""
  config, recipe, g_state, d_state = _model_states('dcgan', 'non_saturating',
                                                   d_joint_batch=True)
  real, fake = _batch(config, 0), 0.5 * _batch(config, 1)
  objective = losses.OBJECTIVES['non_saturating']
  variables = forward.as_variables(d_state.params, d_state.batch_stats)  # pylint: disable=protected-access
  out, _ = d_state.apply_fn(variables, jnp.concatenate([real, fake]),
                            train=True, mutable=['batch_stats'])
  d_update = jax.jit(steps._d_update, static_argnums=(4, 5))  # pylint: disable=protected-access
  _, metrics = d_update(d_state, real, fake, None, recipe, None,
                        jax.random.key(0), jax.random.key(2))
  np.testing.assert_allclose(metrics['d_loss'],
                             objective.d_loss(out[:16], out[16:], 0.0),
                             rtol=1e-5)
  _, separate = d_update(d_state, real, fake, None, train_states.Recipe(), None,
                         jax.random.key(0), jax.random.key(2))
  assert abs(float(separate['d_loss'] - metrics['d_loss'])) > 1e-3
  # G's loss scores its images inside a joint batch with real ones.
  _, g_metrics = jax.jit(functools.partial(steps.g_step, recipe=recipe),
                        static_argnums=3)(g_state, d_state, jax.random.key(1),
                                          16, real=real)
  fake = forward.generate_with_pullback(g_state, noise.sample_z(  # pylint: disable=protected-access
      jax.random.fold_in(jax.random.key(1), 0), 16, config.model.nz), None,
                         jax.random.key(0))[0]
  out, _ = d_state.apply_fn(variables, jnp.concatenate([real, fake]),
                            train=True, mutable=['batch_stats'])
  np.testing.assert_allclose(g_metrics['g_loss'], objective.g_loss(out[16:]),
                             rtol=1e-5)
  with pytest.raises(ValueError, match='d_joint_batch and BatchNorm in D'):
    steps.g_step(g_state, d_state, jax.random.key(1), 16, recipe=recipe)
