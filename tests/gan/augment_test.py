"""DiffAugment: each op against a hand computation, gradients through every
op, draws per image that do not depend on the device count."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dcgan_jax.gan import augment
from dcgan_jax.gan import steps
from dcgan_jax.gan import train_states
from tests.conftest import tiny_config

KEYS = [jax.random.key(i) for i in range(40)]


def _image(height=8, width=8, channels=3, seed=0):
  return np.random.default_rng(seed).uniform(
      -1, 1, (height, width, channels)).astype(np.float32)


def _factor(out, x, centre):
  """The s with out = (x - centre) * s + centre, checked at every pixel."""
  s = (out - centre).ravel()[0] / (x - centre).ravel()[0]
  np.testing.assert_allclose(out, (x - centre) * s + centre, rtol=1e-5,
                             atol=1e-5)
  return s


def test_color_ops_are_the_papers_transformations():
  x = _image()
  shifts, saturations, contrasts = [], [], []
  for key in KEYS:
    out = np.asarray(augment.brightness(key, x))
    shift = out - x  # One offset for every pixel and channel.
    np.testing.assert_allclose(shift, shift.ravel()[0], atol=1e-6)
    shifts.append(shift.ravel()[0])
    saturations.append(_factor(np.asarray(augment.saturation(key, x)), x,
                               x.mean(axis=-1, keepdims=True)))
    contrasts.append(_factor(np.asarray(augment.contrast(key, x)), x,
                             x.mean()))
  for values, low, high in ((shifts, -0.5, 0.5), (saturations, 0, 2),
                            (contrasts, 0.5, 1.5)):
    assert low <= min(values) and max(values) <= high
    assert max(values) - min(values) > 0.5 * (high - low)  # Spread out.


def _shifted(x, dy, dx):
  """out[i, j] = x[i + dy, j + dx], 0 outside x, by loops."""
  out = np.zeros_like(x)
  for i in range(x.shape[0]):
    for j in range(x.shape[1]):
      if 0 <= i + dy < x.shape[0] and 0 <= j + dx < x.shape[1]:
        out[i, j] = x[i + dy, j + dx]
  return out


def test_translation_shifts_by_whole_pixels_up_to_an_eighth():
  x = _image(16, 16)  # An eighth of 16: shifts in [-2, 2].
  seen = set()
  for key in KEYS:
    out = np.asarray(augment.translation(key, x))
    found = [(dy, dx) for dy in range(-2, 3) for dx in range(-2, 3)
             if np.array_equal(out, _shifted(x, dy, dx))]
    assert len(found) == 1, 'not a shift of at most 2 pixels'
    seen.add(found[0])
  assert len(seen) > 12  # Most of the 25 shifts in 40 draws.


def _cut(x, top, left, size):
  out = x.copy()
  out[max(top, 0):max(top + size, 0), max(left, 0):max(left + size, 0)] = 0
  return out


def test_cutout_zeroes_a_half_side_square_anywhere():
  x = _image(8, 8)
  seen = set()
  for key in KEYS:
    out = np.asarray(augment.cutout(key, x))
    found = [(top, left) for top in range(-2, 7) for left in range(-2, 7)
             if np.array_equal(out, _cut(x, top, left, 4))]
    assert found, 'not a 4x4 square (clipped at the border) set to 0'
    seen.add(found[0])
  assert any(top < 0 or left < 0 for top, left in seen)  # Overhanging.
  assert len(seen) > 15


@pytest.mark.parametrize('policy', ['color', 'translation', 'cutout'])
def test_gradients_flow_through_every_op(policy):
  x = jnp.asarray(np.stack([_image(seed=i) for i in range(4)]))
  weights = jnp.asarray(_image(seed=9))
  grads = jax.grad(lambda x: jnp.sum(
      augment.augment(x, jax.random.key(0), policy) * weights))(x)
  assert np.all(np.isfinite(grads))
  assert np.mean(np.asarray(grads) != 0) > 0.5


def test_g_learns_through_the_augmentation():
  config = tiny_config(batch_size=8)
  config.augment = {'policy': 'color,translation,cutout'}
  recipe = train_states.Recipe.from_config(config)
  g_state, d_state = train_states.create_train_states(config,
                                                      jax.random.key(0))
  new_g, _ = jax.jit(functools.partial(steps.g_step, recipe=recipe),
                     static_argnums=3)(g_state, d_state, jax.random.key(1), 8)
  for old, new in zip(jax.tree.leaves(g_state.params),
                      jax.tree.leaves(new_g.params)):
    assert not np.array_equal(old, new)


def test_each_image_draws_the_same_on_1_and_4_devices():
  images = jnp.asarray(np.stack([_image(seed=i) for i in range(8)]))
  policy, key = 'color,translation,cutout', jax.random.key(3)
  one = augment.augment(images, key, policy)
  four = jax.pmap(functools.partial(augment.augment, key=key, policy=policy,
                                    axis_name='batch'),
                  axis_name='batch')(images.reshape(4, 2, 8, 8, 3))
  # The same draws (the same zeros); the arithmetic fused differently.
  np.testing.assert_array_equal(four.reshape(one.shape) == 0, one == 0)
  np.testing.assert_allclose(four.reshape(one.shape), one, atol=1e-6)
  # Each image its own draws: identical images come out different.
  same = augment.augment(jnp.stack([images[0]] * 2), key, policy)
  assert not np.allclose(same[0], same[1])


@pytest.mark.parametrize('augment_config, message', [
    ({'policy': 'color,flip'}, r"config.augment.policy='flip' is not known; "
     'choose one of color, translation, cutout'),
    ({'policy': 'color,color'}, "config.augment.policy='color,color' repeats"),
    ({'policy': 'cutout', 'cutout': 1.5}, r'config.augment.cutout=1.5 must be '
     r'in \[0, 1\]'),
])
def test_bad_augmentation_settings_are_named(augment_config, message):
  config = tiny_config()
  config.augment = augment_config
  with pytest.raises(ValueError, match=message):
    train_states.Recipe.from_config(config)
