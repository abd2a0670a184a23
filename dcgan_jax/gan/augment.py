"""Differentiable augmentation of D's inputs: DiffAugment (Zhao et al. 2020).

D sees real and fake images through the same random transformations, in
its own updates and in G's, and G's gradient flows back through them, so D
cannot memorise a small training set and G is not taught the
augmentations (they apply to both sides alike). A policy is a
comma-separated list of POLICIES' names, applied in that order:

- color: brightness + U(-0.5, 0.5); saturation (each pixel's distance from
  its channel mean) x U(0, 2); contrast (distance from the image mean)
  x U(0.5, 1.5).
- translation: a shift of up to `translation` of the height and width
  (1/8 by default), in whole pixels, the vacated pixels 0.
- cutout: a square of `cutout` of the side (1/2) set to 0, centred
  anywhere in the image (it may overhang the border).

The parameters are those of the paper's code (mit-han-lab
data-efficient-gans, DiffAugment_pytorch.py), for images in [-1, 1].

Each image's draws come from the given key folded with its index in the
global batch, so one device and several, and a resumed run, draw the same.
"""

import functools
from typing import Callable, Optional, Sequence

import jax
from jax import lax
import jax.numpy as jnp

from dcgan_jax import choices

# The paper's code's sizes, as fractions of the image side.
TRANSLATION = 0.125
CUTOUT = 0.5

def brightness(key: jax.Array, x: jax.Array) -> jax.Array:
  return x + (jax.random.uniform(key) - 0.5)


def saturation(key: jax.Array, x: jax.Array) -> jax.Array:
  mean = jnp.mean(x, axis=-1, keepdims=True)
  return (x - mean) * (2.0 * jax.random.uniform(key)) + mean


def contrast(key: jax.Array, x: jax.Array) -> jax.Array:
  mean = jnp.mean(x)
  return (x - mean) * (jax.random.uniform(key) + 0.5) + mean


def _pixels(size: int, fraction: float) -> int:
  return int(size * fraction + 0.5)


def translation(key: jax.Array, x: jax.Array, ratio: float = TRANSLATION
                ) -> jax.Array:
  """x shifted by (dy, dx) in [-s, s]^2 whole pixels, s = ratio of the
  side: out[i, j] = x[i + dy, j + dx], 0 outside x."""
  height, width, channels = x.shape
  sy, sx = _pixels(height, ratio), _pixels(width, ratio)
  y_key, x_key = jax.random.split(key)
  dy = jax.random.randint(y_key, (), -sy, sy + 1)
  dx = jax.random.randint(x_key, (), -sx, sx + 1)
  padded = jnp.pad(x, ((sy, sy), (sx, sx), (0, 0)))
  return lax.dynamic_slice(padded, (sy + dy, sx + dx, 0),
                           (height, width, channels))


def cutout(key: jax.Array, x: jax.Array, ratio: float = CUTOUT) -> jax.Array:
  """x with a square of side `ratio` of the image's set to 0, its centre
  drawn anywhere in the image (clipped at the border)."""
  height, width, _ = x.shape
  size_y, size_x = _pixels(height, ratio), _pixels(width, ratio)
  y_key, x_key = jax.random.split(key)
  top = jax.random.randint(y_key, (), 0, height + 1 - size_y % 2) - size_y // 2
  left = jax.random.randint(x_key, (), 0, width + 1 - size_x % 2) - size_x // 2
  rows = (jnp.arange(height) >= top) & (jnp.arange(height) < top + size_y)
  cols = (jnp.arange(width) >= left) & (jnp.arange(width) < left + size_x)
  return x * ~(rows[:, None] & cols[None, :])[..., None]


POLICIES = {
    'color': (brightness, saturation, contrast),
    'translation': (translation,),
    'cutout': (cutout,),
}


def parse_policy(policy: str) -> tuple[str, ...]:
  """The policy's names, in order; '' = none.

  Raises:
    ValueError: naming the key and the known names, for an unknown or
      repeated name.
  """
  names = tuple(name.strip() for name in policy.split(',') if name.strip())
  for name in names:
    choices.check('config.augment.policy', name, POLICIES)
  if len(set(names)) < len(names):
    raise ValueError(f'config.augment.policy={policy!r} repeats a name.')
  return names


def per_image(images: jax.Array, key: jax.Array,
              ops: Sequence[Callable[[jax.Array, jax.Array], jax.Array]],
              axis_name: Optional[str] = None) -> jax.Array:
  """This device's images (B, H, W, C) through ops(key, image) in order,
  each image with its own draws: the key folded with its index in the
  global batch (under pmap, device d's image i is d * B + i), then with
  the op's position."""
  if not ops:
    return images
  rows = images.shape[0]
  first = 0 if axis_name is None else lax.axis_index(axis_name) * rows

  def one(index, image):
    image_key = jax.random.fold_in(key, index)
    for position, op in enumerate(ops):
      image = op(jax.random.fold_in(image_key, position), image)
    return image
  return jax.vmap(one)(first + jnp.arange(rows), images)


def policy_ops(policy: str, translation_ratio: float = TRANSLATION,
               cutout_ratio: float = CUTOUT
               ) -> list[Callable[[jax.Array, jax.Array], jax.Array]]:
  """The policy's ops(key, image), in order, for `per_image`."""
  ratios = {translation: translation_ratio, cutout: cutout_ratio}
  return [functools.partial(op, ratio=ratios[op]) if op in ratios else op
          for name in parse_policy(policy) for op in POLICIES[name]]


def augment(images: jax.Array, key: jax.Array, policy: str,
            translation_ratio: float = TRANSLATION,
            cutout_ratio: float = CUTOUT,
            axis_name: Optional[str] = None) -> jax.Array:
  """This device's images (B, H, W, C) through the policy's ops, each image
  with its own draws (`per_image`)."""
  return per_image(images, key,
                   policy_ops(policy, translation_ratio, cutout_ratio),
                   axis_name)
