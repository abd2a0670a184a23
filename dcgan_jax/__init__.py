"""DCGAN (Radford et al. 2015) in JAX/Flax.

What research code uses, by these names whatever the modules they live in:

- States: `create_train_states(config, rng, networks=None)` ->
  `(GeneratorState, TrainState)`; `start_ema`.
- Steps, pure and jit/pmap-able: `d_step`, `g_step`, `train_step`, with
  their settings as a `Recipe` (`Recipe.from_config(config)`).
- Sampling: `generate(g_state, z)`, `image_z(seed, indices, nz)` (the noise
  every command samples with), `recompute_ema_batch_stats`.
- Choices by name: `MODELS` (`create_models(config)`), `OBJECTIVES`
  (`Objective`: d_loss, g_loss), `gradient_penalty`,
  `gradient_norm_penalty` (R1/R2), `augment(images, key, policy)`
  (DiffAugment), `SpectrallyNormalized(network)` (its weights spectrally
  normalised).

Importing the package, its models or its step functions does not import
TensorFlow; only the input pipeline, evaluation, logging and the loop do.
The layers and what each may import: docs/architecture.md.
"""

from dcgan_jax.gan.augment import augment
from dcgan_jax.gan.ema import recompute_ema_batch_stats
from dcgan_jax.gan.ema import update_ema
from dcgan_jax.gan.forward import generate
from dcgan_jax.gan.losses import gradient_norm_penalty
from dcgan_jax.gan.losses import gradient_penalty
from dcgan_jax.gan.losses import Objective
from dcgan_jax.gan.losses import OBJECTIVES
from dcgan_jax.gan.noise import image_z
from dcgan_jax.gan.noise import sample_z
from dcgan_jax.gan.steps import d_step
from dcgan_jax.gan.steps import g_step
from dcgan_jax.gan.steps import train_step
from dcgan_jax.gan.train_states import create_train_states
from dcgan_jax.gan.train_states import GeneratorState
from dcgan_jax.gan.train_states import Recipe
from dcgan_jax.gan.train_states import start_ema
from dcgan_jax.gan.train_states import TrainState
from dcgan_jax.models import create_models
from dcgan_jax.models import MODELS
from dcgan_jax.models.layers import SpectrallyNormalized

__all__ = [
    'augment',
    'create_models',
    'create_train_states',
    'd_step',
    'g_step',
    'generate',
    'GeneratorState',
    'gradient_norm_penalty',
    'gradient_penalty',
    'image_z',
    'MODELS',
    'Objective',
    'OBJECTIVES',
    'Recipe',
    'recompute_ema_batch_stats',
    'sample_z',
    'SpectrallyNormalized',
    'start_ema',
    'train_step',
    'TrainState',
    'update_ema',
]
