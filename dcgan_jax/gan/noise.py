"""The random draws of training: z and the other per-step streams, each a
function of the run's key and a step number, so a resumed run draws what an
uninterrupted one would; under pmap each device takes its slice of one
global draw, so the numbers do not depend on the device count.
"""

from typing import Any, Callable, Optional

import jax
from jax import lax
import jax.numpy as jnp


def run_keys(seed: Any) -> tuple[jax.Array, jax.Array]:
  """A run's (init key, step key) from its seed: the initial weights come
  from the first, every step's draws from the second (`train_step`'s rng).
  The seed may be traced, so that `jax.vmap` gives each member of a sweep
  its own."""
  # Three keys, so that init and step keys stay those of earlier versions.
  init_rng, step_rng, _ = jax.random.split(jax.random.key(seed), 3)
  return init_rng, step_rng


def data_seed(config: Any) -> int:
  """The seed of the data order (shuffling, flips, random images):
  config.data.seed, or config.seed where that is -1 or absent. A sweep's
  members share it, so they read the same batches."""
  seed = config.data.get('seed', -1)
  return config.seed if seed == -1 else seed


def device_slice(draw: Callable[[int], jax.Array], batch_size: int,
                 axis_name: Optional[str]) -> jax.Array:
  """This device's batch_size rows of one global draw(rows)."""
  if axis_name is None:
    return draw(batch_size)
  num_devices = lax.psum(1, axis_name)
  return lax.dynamic_slice_in_dim(draw(num_devices * batch_size),
                                  lax.axis_index(axis_name) * batch_size,
                                  batch_size)


def sample_z(rng: jax.Array, batch_size: int, nz: int,
             axis_name: Optional[str] = None) -> jax.Array:
  """Draws this device's (batch_size, nz) slice of one global N(0, I) draw."""
  return device_slice(lambda rows: jax.random.normal(rng, (rows, nz)),
                      batch_size, axis_name)


# A step's random draws other than z (drawn from the run's key folded with
# the step number): each from that key folded with its stream number.
PENALTY, D_UPDATE_DROPOUT, G_UPDATE_DROPOUT, G_DROPOUT = 1, 2, 3, 4
EMA_STATISTICS = 5  # z and dropout of recompute_ema_batch_stats.
D_UPDATE_AUGMENT, G_UPDATE_AUGMENT = 6, 7  # DiffAugment's draws.


def stream_key(rng: jax.Array, step: jax.Array, stream: int) -> jax.Array:
  return jax.random.fold_in(jax.random.fold_in(rng, step), stream)


def image_z(seed: int, indices: Any, nz: int) -> jax.Array:
  """The z of generated images by number: image i's z comes from (seed, i)
  alone, whatever else is drawn with it, in whichever batch or device.

  Every command that shows or scores images draws from it (the training
  grids with config.seed, `sample`, `explore`, evaluation with
  config.eval.seed), so image i of a seed is the same image everywhere.
  """
  key = jax.random.key(seed)
  return jax.vmap(lambda i: jax.random.normal(jax.random.fold_in(key, i),
                                              (nz,)))(jnp.asarray(indices))
