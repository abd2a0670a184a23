"""A mode-collapse testbed: the ring of 8 Gaussians in the unrolled-GAN
paper's setting (Metz et al. 2017, section 3.1 and appendix A).

The data are 8 Gaussians of std 0.02 centred on a circle of radius 2. G is
an MLP with two hidden layers of 128 ReLUs and a linear output of 2; D
scales its input down by 4, then one hidden layer of 128 ReLUs and a linear
logit; every weight starts orthogonal with scale 0.8. The GAN's original
losses (`minimax`: G minimises log(1 - D(G(z)))), Adam(1e-4, b1 = 0.5) for
both, z ~ N(0, I) of 256 dimensions, batches of 512, 25,000 steps; each
step is one D update then one G update (`steps.train_step`), where the
paper alternates single updates. The seeds train together as a sweep's
members (`gan.sweep`: the package's `train_step` and objectives, vmapped
over stacked states), so what the testbed shows is what the image trainer
does; as there, the members share each step's data batch and differ in
their initial weights and z.

Measures, on 2,500 samples of G: the modes covered (a mode counts when at
least 1% of the samples lie within 3 std of it) and the fraction of
high-quality samples (within 3 std of any mode), as PacGAN and VEEGAN
count them; the paper shows its result as pictures.

  python benchmarks/mode_collapse.py    # standard against unrolled, 5 and 10
"""

import functools
from typing import Any, Sequence

from flax import linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from dcgan_jax.gan import forward
from dcgan_jax.gan import sweep
from dcgan_jax.gan import train_states

NUM_MODES = 8
RADIUS = 2.0
STD = 0.02
NUM_EVAL_SAMPLES = 2500
MIN_MODE_FRACTION = 0.01  # Of the samples, for a mode to count as covered.
NUM_STEPS = 25_000
DATA_SEED = 1  # The data batches' seed, shared by all members.


def mode_centres() -> np.ndarray:
  """The 8 centres (8, 2), evenly spaced on the circle of radius 2."""
  angles = 2 * np.pi * np.arange(NUM_MODES) / NUM_MODES
  return RADIUS * np.stack([np.cos(angles), np.sin(angles)], axis=1)


def sample_data(rng: jax.Array, batch_size: int) -> jax.Array:
  """batch_size points (B, 2) from the mixture, modes equally likely."""
  mode_rng, noise_rng = jax.random.split(rng)
  modes = jax.random.randint(mode_rng, (batch_size,), 0, NUM_MODES)
  return (jnp.asarray(mode_centres(), jnp.float32)[modes] +
          STD * jax.random.normal(noise_rng, (batch_size, 2)))


def coverage(samples: np.ndarray) -> tuple[int, float]:
  """(modes covered, fraction of high-quality samples) of samples (N, 2)."""
  distances = np.linalg.norm(
      np.asarray(samples)[:, None, :] - mode_centres()[None], axis=-1)
  nearest = np.argmin(distances, axis=1)
  close = distances.min(axis=1) <= 3 * STD
  per_mode = np.bincount(nearest[close], minlength=NUM_MODES)
  covered = int(np.sum(per_mode >= MIN_MODE_FRACTION * len(samples)))
  return covered, float(np.mean(close))


class MLP(nn.Module):
  """ReLU hidden layers, then a linear output, weights orthogonal with scale
  0.8; the input is first divided by `input_scale`. D's output is (B,).

  `train` and `axis_name` are taken as the DCGAN modules take them; there
  is no normalisation, so they change nothing.
  """
  hidden: Sequence[int]
  outputs: int
  input_scale: float = 1.0

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = True,
               axis_name: Any = None) -> jax.Array:
    del train, axis_name
    dense = functools.partial(nn.Dense,
                              kernel_init=nn.initializers.orthogonal(0.8))
    x = x / self.input_scale
    for width in self.hidden:
      x = nn.relu(dense(width)(x))
    x = dense(self.outputs)(x)
    return x[:, 0] if self.outputs == 1 else x


def get_config(objective: str = 'minimax', unroll_steps: int = 0
               ) -> ml_collections.ConfigDict:
  """The paper's settings for an objective; wgan_gp gets its own method's
  5 critic updates per G update."""
  return ml_collections.ConfigDict({
      'objective': objective,
      'unroll_steps': unroll_steps,
      'n_critic': 5 if objective == 'wgan_gp' else 1,
      'gp_weight': 10.0,
      'batch_size': 512,
      'model': {'nz': 256, 'g_hidden': (128, 128), 'd_hidden': (128,),
                'd_input_scale': 4.0, 'd_norm': 'none'},
      'optim': {'lr_g': 1e-4, 'lr_d': 1e-4, 'b1': 0.5, 'b2': 0.999},
  })


def train(config: ml_collections.ConfigDict, seeds: Sequence[int],
          num_steps: int, snapshots: Sequence[int] = ()
          ) -> dict[int, np.ndarray]:
  """Trains one G and D per seed, as a sweep's members, for num_steps.

  Returns:
    {step: samples (seeds, NUM_EVAL_SAMPLES, 2)} of G after each step in
    `snapshots` (0: before training) and after num_steps; the same z at
    every step.
  """
  recipe = train_states.Recipe.from_config(config)
  model = config.model
  networks = (MLP(tuple(model.g_hidden), outputs=2),
              MLP(tuple(model.d_hidden), outputs=1,
                  input_scale=model.d_input_scale))
  g_state, d_state = sweep.create_member_states(config, seeds, networks)
  _, step_keys = sweep.member_keys(seeds)
  batches = recipe.n_critic if recipe.n_critic > 1 else None

  @functools.partial(jax.jit, donate_argnums=(0, 1))
  def update(g_state, d_state, step):
    batch = sample_data(jax.random.fold_in(jax.random.key(DATA_SEED), step),
                        config.batch_size * (batches or 1))
    if batches:
      batch = batch.reshape(batches, config.batch_size, 2)
    g_state, d_state, _ = sweep.sweep_step(g_state, d_state, batch, step_keys,
                                           recipe=recipe)
    return g_state, d_state

  z = jax.random.normal(jax.random.key(12345),
                        (NUM_EVAL_SAMPLES, config.model.nz))
  generate = jax.jit(jax.vmap(forward.generate, in_axes=(0, None)))
  samples = {}
  for step in range(num_steps + 1):
    if step in snapshots or step == num_steps:
      samples[step] = np.asarray(generate(g_state, z))
    if step < num_steps:
      g_state, d_state = update(g_state, d_state, step)
  return samples
