"""The models by name (`config.model.name` in MODELS), and building a config's
G and D."""

import dataclasses
from typing import Any, Callable

import flax.linen as nn
import jax.numpy as jnp

from dcgan_jax import choices
from dcgan_jax.models import dcgan
from dcgan_jax.models import keras_dcgan
from dcgan_jax.models import layers
from dcgan_jax.models import mlp
from dcgan_jax.models import sngan

SUPPORTED_CHANNELS = (1, 3)


@dataclasses.dataclass(frozen=True)
class Model:
  """A registered architecture.

  Attributes:
    build: (model config, {'image_size', 'channels', 'dtype'}) -> (G, D).
    check_size: raises ValueError for an image size it cannot build.
    fixed_d_dropout: D's dropout is part of the architecture, and
      `model.d_dropout` does not apply.
  """
  build: Callable[[Any, dict[str, Any]], tuple[nn.Module, nn.Module]]
  check_size: Callable[[int], None]
  fixed_d_dropout: bool = False


MODELS = {
    'dcgan': Model(
        lambda m, shape: (
            dcgan.Generator(**shape, ngf=m.ngf),
            dcgan.Discriminator(**shape, ndf=m.ndf, norm=m.d_norm,
                                dropout=m.d_dropout)),
        dcgan.check_size),
    'dcgan_upsample': Model(
        lambda m, shape: (
            dcgan.UpsampleGenerator(**shape, ngf=m.ngf, upsample=m.upsample),
            dcgan.UpsampleDiscriminator(**shape, ndf=m.ndf, norm=m.d_norm,
                                        dropout=m.d_dropout)),
        dcgan.check_size),
    'keras_dcgan': Model(
        lambda m, shape: (
            keras_dcgan.KerasGenerator(**shape, ngf=m.ngf),
            keras_dcgan.KerasDiscriminator(**shape, ndf=m.ndf, norm=m.d_norm)),
        keras_dcgan.check_size, fixed_d_dropout=True),
    'mlp': Model(
        lambda m, shape: (
            mlp.MLPGenerator(**shape, ngf=m.ngf),
            mlp.MLPDiscriminator(**shape, ndf=m.ndf, norm=m.d_norm,
                                 dropout=m.d_dropout)),
        lambda size: None),
    'sngan_cnn': Model(
        lambda m, shape: (
            sngan.Generator(**shape, ngf=m.ngf),
            sngan.Discriminator(**shape, ndf=m.ndf, norm=m.d_norm,
                                dropout=m.d_dropout)),
        sngan.check_size),
}
UPSAMPLING = ('nearest', 'bilinear')
# Model keys added after runs were saved without them, and the values
# those runs had.
MODEL_DEFAULTS = {'name': 'dcgan', 'd_norm': 'batch', 'd_dropout': 0.0,
                  'upsample': 'nearest', 'g_spectral': False}


DTYPES = {'float32': jnp.float32, 'bfloat16': jnp.bfloat16}


def compute_dtype(config: Any) -> Any:
  """config.dtype ('float32' if absent) as a jnp dtype.

  Raises:
    ValueError: naming the key and the supported values.
  """
  return choices.choose('config.dtype', config.get('dtype', 'float32'),
                        DTYPES)


def model_config(config: Any) -> Any:
  """config.model with MODEL_DEFAULTS for absent keys, checked.

  Raises:
    ValueError: naming the config key and its known values, for an
      unknown model, normalisation or upsampling, a dropout rate outside
      [0, 1), or dropout on a model whose D has its own.
  """
  values = {**MODEL_DEFAULTS, **config.model}
  name = choices.check('config.model.name', values['name'], MODELS)
  layers.check_d_norm(values['d_norm'])
  choices.check('config.model.upsample', values['upsample'], UPSAMPLING)
  if not 0.0 <= values['d_dropout'] < 1.0:
    raise ValueError(f'config.model.d_dropout={values["d_dropout"]} must be '
                     'in [0, 1).')
  if not isinstance(values['g_spectral'], bool):
    raise ValueError(f'config.model.g_spectral={values["g_spectral"]!r} must '
                     'be True or False.')
  if values['d_dropout'] and MODELS[name].fixed_d_dropout:
    raise ValueError(f'config.model.d_dropout={values["d_dropout"]}: '
                     f'{name}\'s D has its own dropout rates; the key '
                     'applies to the other models.')
  return type(config.model)(values)


def check_shape(config: Any) -> None:
  """Raises ValueError naming the supported values for a data shape the
  config's model cannot build."""
  channels = config.data.channels
  if channels not in SUPPORTED_CHANNELS:
    raise ValueError(
        f'channels={channels} is not supported; supported channel counts: '
        f'{", ".join(map(str, SUPPORTED_CHANNELS))}.')
  MODELS[model_config(config).name].check_size(config.data.image_size)


def create_models(config: Any) -> tuple[nn.Module, nn.Module]:
  """Builds config.model.name's G and D from the config's `data` and
  `model` fields and `dtype`.

  Raises:
    ValueError: for an unknown model, an unsupported shape or dtype, or a
      bad model key.
  """
  check_shape(config)
  model = model_config(config)
  spectral_d = model.d_norm == 'spectral'
  if spectral_d:  # D's layers then have no other normalisation.
    model = type(model)({**model, 'd_norm': 'none'})
  generator, discriminator = MODELS[model.name].build(
      model, {'image_size': config.data.image_size,
              'channels': config.data.channels,
              'dtype': compute_dtype(config)})
  if model.g_spectral:
    generator = layers.SpectrallyNormalized(generator)
  if spectral_d:
    discriminator = layers.SpectrallyNormalized(discriminator)
  return generator, discriminator


def d_uses_batch_norm(config: Any) -> bool:
  """Whether the config's D has BatchNorm (every model's D normalises as
  config.model.d_norm says)."""
  return model_config(config).d_norm == 'batch'
