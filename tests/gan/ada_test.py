"""ADA: its transformations against hand computations, the controller of p,
and p in the step: agreed across devices, moved by D's outputs."""

import functools

from flax import jax_utils
from flax import linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dcgan_jax.gan import ada
from dcgan_jax.gan import augment
from dcgan_jax.gan import steps
from dcgan_jax.gan import train_states
from tests.conftest import tiny_config

KEYS = [jax.random.key(i) for i in range(40)]
ONE = jnp.float32(1.0)


def _image(size=16, channels=3, seed=0):
  return np.random.default_rng(seed).uniform(
      -1, 1, (size, size, channels)).astype(np.float32)


def test_at_p_0_every_op_leaves_images_as_they_are():
  images = jnp.asarray(np.stack([_image(seed=i) for i in range(4)]))
  for channels in (1, 3):
    x = images[..., :channels]
    np.testing.assert_allclose(
        augment.per_image(x, jax.random.key(0), ada.ops(jnp.float32(0.0))),
        x, atol=1e-6)


def test_blitting_ops_are_flips_quarter_turns_and_reflected_shifts():
  x = _image()
  turns, shifts = set(), set()
  for key in KEYS:
    np.testing.assert_array_equal(ada.xflip(key, x, ONE), x[:, ::-1])
    out = np.asarray(ada.rotate90(key, x, ONE))
    turns.update(k for k in range(4) if np.array_equal(out, np.rot90(x, k)))
    out = np.asarray(ada.integer_translation(key, x, ONE))
    padded = np.pad(x, ((2, 2), (2, 2), (0, 0)), mode='reflect')
    found = [(dy, dx) for dy in range(-2, 3) for dx in range(-2, 3)
             if np.array_equal(out, padded[2 - dy:18 - dy, 2 - dx:18 - dx])]
    assert len(found) == 1, 'not a reflected shift of at most 2 pixels'
    shifts.add(found[0])
  assert turns == {0, 1, 2, 3} and len(shifts) > 12


def _luma(x):
  return x.mean(axis=-1)


def test_colour_ops_act_on_luma_as_brightness_contrast_and_flip():
  """Hue rotation and saturation keep each pixel's luma (its component
  along (1, 1, 1)); so the luma of the output is a x luma + o, one a and o
  per image, |a| the contrast, and grey pixels stay grey."""
  x = _image()
  grey = np.repeat(x[..., :1], 3, axis=-1)
  slopes = []
  for key in KEYS:
    out = np.asarray(ada.color(key, x, ONE))
    a = np.polyfit(_luma(x).ravel(), _luma(out).ravel(), 1)
    np.testing.assert_allclose(_luma(out), a[0] * _luma(x) + a[1],
                               atol=1e-4)
    out_grey = np.asarray(ada.color(key, grey, ONE))
    np.testing.assert_allclose(out_grey, out_grey[..., :1].repeat(3, -1),
                               atol=1e-5)
    slopes.append(a[0])
    assert not np.allclose(out - _luma(out)[..., None],
                           a[0] * (x - _luma(x)[..., None]), atol=1e-3)
  assert min(slopes) < 0 < max(slopes)  # Luma flips, both ways.
  # On a grey image (one channel), the same luma map without hue or
  # saturation.
  out = np.asarray(ada.color(KEYS[0], x[..., :1], ONE))
  a = np.polyfit(x[..., 0].ravel(), out[..., 0].ravel(), 1)
  np.testing.assert_allclose(out[..., 0], a[0] * x[..., 0] + a[1], atol=1e-5)


def test_p_rises_while_d_separates_and_falls_while_it_does_not():
  """Every 4 updates of 64 images p moves by 256 / (kimg x 1000) toward
  more augmentation if E[sign(D(x))] > target, less if below; clipped."""
  state = ada.State.create()
  ps = []
  for step in range(40):
    sign_mean = 0.9 if step < 20 else 0.2
    state = ada.adjust(state, jnp.float32(sign_mean), jnp.float32(64),
                       jnp.int32(step), target=0.6, interval=4, kimg=0.5)
    ps.append(float(state.p))
  np.testing.assert_allclose(ps[:8], [0, 0, 0, 0.512, 0.512, 0.512, 0.512,
                                      1.0], atol=1e-6)
  assert ps[19] == 1.0  # Clipped.
  np.testing.assert_allclose(ps[23], 1 - 0.512, atol=1e-6)
  assert ps[-1] == 0.0


class _ConfidentD(nn.Module):
  """D whose output is `sign` x 5 for every image, whatever it is."""
  sign: float

  @nn.compact
  def __call__(self, x, train=True, axis_name=None):
    del train, axis_name
    scale = self.param('scale', nn.initializers.ones, ())
    return self.sign * 5.0 * scale + 0.0 * jnp.sum(x, axis=(1, 2, 3))


@pytest.mark.parametrize('sign, expected_p', [(1.0, 0.64), (-1.0, 0.0)])
def test_in_the_step_p_follows_ds_outputs_on_real_images(sign, expected_p):
  config = tiny_config(batch_size=8)
  config.augment = {'ada': True, 'ada_interval': 2, 'ada_kimg': 0.05}
  recipe = train_states.Recipe.from_config(config)
  g_state, _ = train_states.create_train_states(config, jax.random.key(0))
  d = _ConfidentD(sign)
  batch = jnp.zeros((8, 28, 28, 1))
  d_state = train_states.TrainState.create(
      apply_fn=d.apply, params=d.init(jax.random.key(1), batch)['params'],
      tx=g_state.tx, ada=ada.State.create())
  step = jax.jit(functools.partial(steps.train_step, recipe=recipe))
  for _ in range(4):  # Two adjustments of 16 / 50 each.
    g_state, d_state, metrics = step(g_state, d_state, batch,
                                     jax.random.key(2))
  assert float(metrics['ada_rt']) == sign
  assert float(d_state.ada.p) == pytest.approx(expected_p)


def test_ada_steps_agree_on_1_and_4_devices():
  """With spectral normalisation of G and D (its vectors updated by every
  pass) and lazy R1 too: one compiled step for all three."""
  config = tiny_config(batch_size=8)
  config.model.update(d_norm='spectral', g_spectral=True)
  config.r1_gamma, config.reg_every = 1.0, 2
  config.augment = {'ada': True, 'ada_interval': 1, 'ada_kimg': 0.05}
  recipe = train_states.Recipe.from_config(config)
  g_state, d_state = train_states.create_train_states(config,
                                                      jax.random.key(0))
  d_state = d_state.replace(ada=d_state.ada.replace(p=jnp.float32(0.5)))
  batch = jax.random.uniform(jax.random.key(1), (8, 28, 28, 1), minval=-1)
  step = functools.partial(steps.train_step, recipe=recipe)
  jitted = jax.jit(step)
  one = jitted(g_state, d_state, batch, jax.random.key(2))
  four = jax.pmap(functools.partial(step, axis_name='batch'),
                  axis_name='batch', in_axes=(0, 0, 0, None))(
                      *jax_utils.replicate((g_state, d_state)),
                      batch.reshape(4, 2, 28, 28, 1), jax.random.key(2))
  for a, b in zip(jax.tree.leaves(one), jax.tree.leaves(four)):
    np.testing.assert_allclose(b[0], a, rtol=1e-5, atol=1e-5)
  assert float(one[1].ada.p) != 0.5  # Adjusted after the update.
  # At p = 0 every op is the identity (test_at_p_0_every_op_leaves_...); at
  # 0.5 D sees other images and scores them otherwise.
  identity = jitted(g_state, d_state.replace(ada=d_state.ada.replace(
      p=jnp.float32(0))), batch, jax.random.key(2))
  assert not np.isclose(identity[2]['d_loss'], one[2]['d_loss'])


@pytest.mark.parametrize('augment_config, message', [
    ({'ada': True, 'policy': 'color'}, r"config.augment.ada and "
     r"config.augment.policy='color': choose one"),
    ({'ada': True, 'ada_target': 1.5}, r'config.augment.ada_target=1.5 must '
     r'be in \(-1, 1\)'),
    ({'ada': True, 'ada_kimg': 0}, 'config.augment.ada_kimg=0 must be '
     'positive'),
])
def test_bad_ada_settings_are_named(augment_config, message):
  config = tiny_config()
  config.augment = augment_config
  with pytest.raises(ValueError, match=message):
    train_states.Recipe.from_config(config)
