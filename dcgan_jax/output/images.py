"""Converting generated images to uint8, tiling them and writing PNGs."""

import math
from typing import Optional

import jax
import jax.numpy as jnp
import numpy as np
from PIL import Image

from dcgan_jax.output import paths


def quantize(images: jax.Array) -> jax.Array:
  """Maps images in [-1, 1] to uint8 [0, 255], rounding to nearest, as a
  PNG would hold them. Traceable: jit or pmap it."""
  images = jnp.asarray(images, jnp.float32)
  return jnp.clip(jnp.rint((images + 1.0) * 127.5), 0, 255).astype(jnp.uint8)


def to_uint8(images: jax.Array | np.ndarray) -> np.ndarray:
  """quantize() as a host numpy array."""
  return np.asarray(quantize(images))


def make_grid(images: np.ndarray, ncols: Optional[int] = None,
              padding: int = 2) -> np.ndarray:
  """Tiles uint8 images (N, H, W, C) into one (rows*H', cols*W', C) image."""
  n, height, width, channels = images.shape
  ncols = ncols or math.ceil(math.sqrt(n))
  nrows = math.ceil(n / ncols)
  grid = np.zeros((nrows * (height + padding) + padding,
                   ncols * (width + padding) + padding, channels), np.uint8)
  for i, image in enumerate(images):
    top = padding + (i // ncols) * (height + padding)
    left = padding + (i % ncols) * (width + padding)
    grid[top:top + height, left:left + width] = image
  return grid


def save_gif(path: paths.PathLike, frames: list[np.ndarray | Image.Image],
             duration_ms: int = 500) -> None:
  """Writes frames (uint8 (H, W, 1 or 3) arrays or PIL images) as a looping
  GIF, atomically."""
  frames = [f if isinstance(f, Image.Image) else
            Image.fromarray(f[..., 0] if f.shape[-1] == 1 else f)
            for f in frames]
  with paths.atomic_write(path) as f:
    frames[0].save(f, format='GIF', save_all=True, append_images=frames[1:],
                   duration=duration_ms, loop=0)


def save_png(path: paths.PathLike, image: np.ndarray) -> None:
  """Writes a uint8 (H, W, 1 or 3) image; the file appears complete or not at
  all."""
  image = image[..., 0] if image.shape[-1] == 1 else image
  with paths.atomic_write(path) as f:
    Image.fromarray(image).save(f, format='PNG')
