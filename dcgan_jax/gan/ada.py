"""Adaptive discriminator augmentation (ADA, Karras et al. 2020).

Every image D sees, real or fake, in D's updates and in G's, goes through
the paper's cheapest groups of transformations, each applied with
probability p (NVlabs stylegan2-ada-pytorch, training/augment.py, with its
strengths): pixel blitting (x-flip, rotation by a multiple of 90 degrees,
integer translation by up to 1/8 of the side with reflected borders), then
colour (brightness + N(0, 0.2), contrast x 2^N(0, 0.5), luma flip, hue
rotation by U(-pi, pi) about the luma axis and saturation x 2^N(0, 1), the
last two only for colour images). All are exact: no interpolation.

p starts at 0 and follows how much D overfits, measured by the sign of its
outputs on real images, r_t = E[sign(D(x))]: every `interval` D updates, p
moves by sign(r_t - target) x (images seen) / (kimg x 1000), so that it can
go from 0 to 1 in `kimg` thousand images, and is clipped to [0, 1]. p and
the sums behind r_t live in D's train state (`State`): checkpointed,
resumed exactly and, as r_t is averaged over the global batch, the same on
every device and host.
"""

import functools
import math
from typing import Callable

import flax
import jax
from jax import lax
import jax.numpy as jnp
import numpy as np

# The paper's settings (stylegan2-ada-pytorch's defaults).
TARGET = 0.6
INTERVAL = 4
KIMG = 500.0
TRANSLATION = 0.125
BRIGHTNESS_STD = 0.2
CONTRAST_STD = 0.5
HUE_MAX = 1.0
SATURATION_STD = 1.0

# A numpy constant: a jax array here would start JAX's backend on import,
# before a multi-process run can initialise it.
_LUMA_AXIS = np.full(3, 1.0 / math.sqrt(3.0), np.float32)


@flax.struct.dataclass
class State:
  """p, and since the last adjustment the sum of sign(D(x)) over real
  images and their count."""
  p: jax.Array
  signs: jax.Array
  images: jax.Array

  @classmethod
  def create(cls) -> 'State':
    return cls(*(jnp.zeros((), jnp.float32) for _ in range(3)))


def _with_probability(key: jax.Array, p: jax.Array, augmented: jax.Array,
                      image: jax.Array) -> jax.Array:
  return jnp.where(jax.random.uniform(key) < p, augmented, image)


def xflip(key: jax.Array, image: jax.Array, p: jax.Array) -> jax.Array:
  return _with_probability(key, p, image[:, ::-1], image)


def rotate90(key: jax.Array, image: jax.Array, p: jax.Array) -> jax.Array:
  """A rotation by 0, 90, 180 or 270 degrees (square images)."""
  apply_key, turns_key = jax.random.split(key)
  turns = jax.random.randint(turns_key, (), 0, 4)
  rotated = jnp.stack([jnp.rot90(image, k) for k in range(4)])[turns]
  return _with_probability(apply_key, p, rotated, image)


def integer_translation(key: jax.Array, image: jax.Array, p: jax.Array,
                        ratio: float = TRANSLATION) -> jax.Array:
  """out[i, j] = x[i - dy, j - dx] with dy, dx the rounded U(-ratio,
  ratio) x side, the image reflected beyond its border."""
  height, width, channels = image.shape
  apply_key, shift_key = jax.random.split(key)
  shift = jax.random.uniform(shift_key, (2,), minval=-ratio, maxval=ratio)
  dy = jnp.round(shift[0] * height).astype(jnp.int32)
  dx = jnp.round(shift[1] * width).astype(jnp.int32)
  my, mx = math.ceil(ratio * height), math.ceil(ratio * width)
  padded = jnp.pad(image, ((my, my), (mx, mx), (0, 0)), mode='reflect')
  moved = lax.dynamic_slice(padded, (my - dy, mx - dx, 0),
                            (height, width, channels))
  return _with_probability(apply_key, p, moved, image)


def color_matrix(key: jax.Array, p: jax.Array, channels: int) -> jax.Array:
  """The 3x4 affine map of RGB values of the colour group: each of its
  transformations applied with probability p."""
  keys = iter(jax.random.split(key, 10))

  def maybe(value, identity):
    return jnp.where(jax.random.uniform(next(keys)) < p, value, identity)
  brightness = maybe(jax.random.normal(next(keys)) * BRIGHTNESS_STD, 0.0)
  contrast = maybe(jnp.exp2(jax.random.normal(next(keys)) * CONTRAST_STD),
                   1.0)
  luma_flip = maybe(jnp.floor(jax.random.uniform(next(keys)) * 2), 0.0)
  v = _LUMA_AXIS
  vv = jnp.outer(v, v)
  matrix = contrast * jnp.eye(3)
  offset = contrast * brightness * jnp.ones(3)
  flip = jnp.eye(3) - 2.0 * vv * luma_flip  # Householder reflection.
  matrix, offset = flip @ matrix, flip @ offset
  if channels > 1:
    hue = maybe(jax.random.uniform(next(keys), minval=-1.0, maxval=1.0)
                * math.pi * HUE_MAX, 0.0)
    cross = jnp.asarray([[0.0, -v[2], v[1]], [v[2], 0.0, -v[0]],
                         [-v[1], v[0], 0.0]])
    rotation = (jnp.cos(hue) * jnp.eye(3) + jnp.sin(hue) * cross +
                (1.0 - jnp.cos(hue)) * vv)  # Rodrigues, about the luma axis.
    saturation = maybe(jnp.exp2(jax.random.normal(next(keys)) *
                                SATURATION_STD), 1.0)
    scale = vv + (jnp.eye(3) - vv) * saturation
    matrix, offset = scale @ rotation @ matrix, scale @ rotation @ offset
  return jnp.concatenate([matrix, offset[:, None]], axis=1)


def color(key: jax.Array, image: jax.Array, p: jax.Array) -> jax.Array:
  """The colour group on an RGB image; on a grey one, as the reference
  does, the mean of the map's three rows (the hue and saturation steps
  left out)."""
  channels = image.shape[-1]
  matrix = color_matrix(key, p, channels)
  if channels == 3:
    return image @ matrix[:, :3].T + matrix[:, 3]
  row = jnp.mean(matrix, axis=0)
  return image * jnp.sum(row[:3]) + row[3]


def ops(p: jax.Array) -> list[Callable[[jax.Array, jax.Array], jax.Array]]:
  """The pipeline at probability p, for `augment.per_image`."""
  return [functools.partial(op, p=p)
          for op in (xflip, rotate90, integer_translation, color)]


def adjust(state: State, sign_mean: jax.Array, images: jax.Array,
           step: jax.Array, target: float = TARGET, interval: int = INTERVAL,
           kimg: float = KIMG) -> State:
  """The state after D's update number `step` (from 0), whose `images` real
  images (the global batch) had mean sign(D(x)) = sign_mean: added to the
  sums, and at every interval-th update p moved by sign(r_t - target) x
  (images summed) / (kimg x 1000) and the sums restarted."""
  signs = state.signs + sign_mean * images
  seen = state.images + images
  due = (step + 1) % interval == 0
  moved = jnp.clip(state.p + jnp.sign(signs / seen - target) * seen /
                   (kimg * 1000.0), 0.0, 1.0)
  return State(p=jnp.where(due, moved, state.p),
               signs=jnp.where(due, 0.0, signs),
               images=jnp.where(due, 0.0, seen))
