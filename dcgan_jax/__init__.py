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

import importlib
from typing import Any

# Each name is imported where it lives on first use, so that importing a
# submodule (`dcgan_jax.cpu.runtime`, before the training program restarts
# itself) does not import jax, flax and optax with the package.
_MODULES = {
    'augment': 'dcgan_jax.gan.augment',
    'create_models': 'dcgan_jax.models',
    'create_train_states': 'dcgan_jax.gan.train_states',
    'd_step': 'dcgan_jax.gan.steps',
    'g_step': 'dcgan_jax.gan.steps',
    'generate': 'dcgan_jax.gan.forward',
    'GeneratorState': 'dcgan_jax.gan.train_states',
    'gradient_norm_penalty': 'dcgan_jax.gan.losses',
    'gradient_penalty': 'dcgan_jax.gan.losses',
    'image_z': 'dcgan_jax.gan.noise',
    'MODELS': 'dcgan_jax.models',
    'Objective': 'dcgan_jax.gan.losses',
    'OBJECTIVES': 'dcgan_jax.gan.losses',
    'Recipe': 'dcgan_jax.gan.train_states',
    'recompute_ema_batch_stats': 'dcgan_jax.gan.ema',
    'sample_z': 'dcgan_jax.gan.noise',
    'SpectrallyNormalized': 'dcgan_jax.models.layers',
    'start_ema': 'dcgan_jax.gan.train_states',
    'train_step': 'dcgan_jax.gan.steps',
    'TrainState': 'dcgan_jax.gan.train_states',
    'update_ema': 'dcgan_jax.gan.ema',
}
__all__ = sorted(_MODULES, key=str.lower)


def __getattr__(name: str) -> Any:
  if name not in _MODULES:
    raise AttributeError(f'module {__name__!r} has no attribute {name!r}')
  value = getattr(importlib.import_module(_MODULES[name]), name)
  globals()[name] = value
  return value


def __dir__() -> list[str]:
  return sorted({*globals(), *_MODULES})
