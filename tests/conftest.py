"""Test setup: four fake CPU devices, so pmap paths run on any machine.

XLA reads the flag when JAX initialises its backend, so it is set here,
before any test module imports jax.
"""

import os

os.environ['XLA_FLAGS'] = (
    os.environ.get('XLA_FLAGS', '') +
    ' --xla_force_host_platform_device_count=4').strip()
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

import ml_collections  # pylint: disable=g-import-not-at-top,wrong-import-position


def tiny_config(image_size: int = 28, channels: int = 1, batch_size: int = 16,
                width: int = 8, nz: int = 16) -> ml_collections.ConfigDict:
  """The step-level fields of a config, small enough for fast CPU tests."""
  return ml_collections.ConfigDict({
      'seed': 0,
      'batch_size': batch_size,
      'data': {'image_size': image_size, 'channels': channels},
      'model': {'nz': nz, 'ngf': width, 'ndf': width},
      'optim': {'lr_g': 2e-4, 'lr_d': 2e-4, 'b1': 0.5, 'b2': 0.999},
  })
