"""Short training runs learn, by statistics measured against held-out data.

A freshly initialised G outputs grey noise around 0, so its pixel histogram
and mean image are far from the data's; training must pull both toward the
data while D learns to tell real from fake.
"""

import functools
import os
from typing import Iterator

import jax
import numpy as np
import pytest

from configs import fashion_mnist
from configs import mnist_wgan_gp
from dcgan_jax.data import idx_files
from dcgan_jax.evaluation import classifier
from dcgan_jax.evaluation import distances
from dcgan_jax.gan import forward
from dcgan_jax.gan import steps
from dcgan_jax.gan import train_states
from tests.conftest import tiny_config


needs_fashion_mnist = pytest.mark.skipif(
    not os.path.isdir(idx_files.DEBIAN_FASHION_MNIST_DIR),
    reason='Debian package dataset-fashion-mnist not installed (.ci/run '
    'installs it)')


def _disks(rng: np.random.Generator, n: int, size: int = 28) -> np.ndarray:
  """Images of one bright disk of random centre and radius on black."""
  yy, xx = np.mgrid[:size, :size]
  cy, cx = rng.uniform(9, size - 9, (2, n, 1, 1))
  radius = rng.uniform(4, 7, (n, 1, 1))
  inside = (yy - cy) ** 2 + (xx - cx) ** 2 <= radius ** 2
  return np.where(inside, 1.0, -1.0).astype(np.float32)[..., None]


def _histogram_distance(a: np.ndarray, b: np.ndarray) -> float:
  """Wasserstein-1 distance between the pixel-value distributions."""
  qs = np.linspace(0, 1, 101)
  return float(np.mean(np.abs(np.quantile(a, qs) - np.quantile(b, qs))))


def _train(config, batches: Iterator[np.ndarray], num_steps: int,
           held_out: np.ndarray):
  """Trains from scratch; returns distances to held_out before and after.

  Returns:
    ((histogram, mean image) distances at the start, the same at the end,
    per-step D(x) - D(G(z))).
  """
  g_state, d_state = train_states.create_train_states(config, jax.random.key(0))
  step = jax.jit(functools.partial(
      steps.train_step, recipe=train_states.Recipe.from_config(config)))
  generate = jax.jit(forward.generate)
  rng = jax.random.key(1)
  z = jax.random.normal(jax.random.key(2), (len(held_out), config.model.nz))

  def distances(g_state):
    fake = np.asarray(generate(g_state, z))
    return (_histogram_distance(fake, held_out),
            float(np.mean((fake.mean(0) - held_out.mean(0)) ** 2)))

  start = distances(g_state)
  margins = []
  for _ in range(num_steps):
    g_state, d_state, metrics = step(g_state, d_state, next(batches), rng)
    margins.append(float(metrics['d_real']) - float(metrics['d_fake']))
  return start, distances(g_state), margins


@pytest.mark.slow
def test_short_training_on_synthetic_disks_learns():
  config = tiny_config(batch_size=64, width=32, nz=32)
  data_rng = np.random.default_rng(0)
  held_out = _disks(data_rng, 512)
  batches = (_disks(data_rng, config.batch_size) for _ in range(400))
  (hist_start, mean_start), (hist_end, mean_end), margins = _train(
      config, batches, 400, held_out)

  # D learns to tell real from fake: D(x) - D(G(z)) leaves 0.
  assert abs(margins[0]) < 0.2, margins[0]
  assert max(margins[:100]) > 0.5, max(margins[:100])
  # G's images moved toward the data: pixel histogram and mean image.
  assert hist_end < 0.4 * hist_start, (hist_start, hist_end)
  assert mean_end < 0.2 * mean_start, (mean_start, mean_end)


@pytest.mark.parametrize('name,num_steps,overrides', [
    ('dcgan_upsample', 100, {'model': {'d_dropout': 0.3},
                             'd_joint_batch': True}),
    ('keras_dcgan', 100, {'model': {'d_norm': 'none'}, 'd_joint_batch': True,
                          'optim': {'name': 'rmsprop', 'lr_g': 1e-3,
                                    'lr_d': 1e-3, 'eps': 1e-7}}),
    ('mlp', 300, {'model': {'d_norm': 'none'}}),
])
@pytest.mark.slow
def test_every_model_learns_disks(name, num_steps, overrides):
  """Each model with its original's recipe, 16 wide: fewer steps than the
  disks test above, so the bar is lower."""
  config = tiny_config(batch_size=64, width=16, nz=32)
  config.model.name = name
  config.update(overrides)
  data_rng = np.random.default_rng(0)
  held_out = _disks(data_rng, 512)
  batches = (_disks(data_rng, config.batch_size) for _ in range(num_steps))
  (hist_start, mean_start), (hist_end, mean_end), margins = _train(
      config, batches, num_steps, held_out)
  assert max(margins) > 0.3, max(margins)
  assert hist_end < 0.5 * hist_start, (hist_start, hist_end)
  assert mean_end < 0.3 * mean_start, (mean_start, mean_end)


@pytest.mark.slow
@needs_fashion_mnist
def test_fashion_mnist_training_moves_toward_the_data():
  """150 steps of the Fashion-MNIST config on the real images."""
  config = fashion_mnist.get_config()
  config.batch_size = 64

  def load(split, count):
    images = idx_files.read_images(idx_files.DEBIAN_FASHION_MNIST_DIR,
                                   split)[:count]
    return images.astype(np.float32) / 127.5 - 1.0

  batches = iter(np.split(load('train', 150 * 64), 150))
  (hist_start, mean_start), (hist_end, mean_end), margins = _train(
      config, batches, 150, load('test', 1000))

  # Here: pixel histogram 0.76 -> 0.41, mean image 0.33 -> 0.085, D margin
  # windows 0.58, 0.76, 0.71, 0.56, 0.56, 0.66.
  assert hist_end < 0.7 * hist_start, (hist_start, hist_end)
  assert mean_end < 0.4 * mean_start, (mean_start, mean_end)
  # D's advantage D(x) - D(G(z)) (25-step means) rises, peaks, then shrinks
  # as G catches up.
  windows = np.mean(np.reshape(margins, (6, 25)), axis=1)
  peak = int(np.argmax(windows))
  assert windows[peak] > 0.5, windows
  assert peak < 5 and windows[peak + 1:].min() < windows[peak] - 0.05, windows


@pytest.mark.slow
@needs_fashion_mnist
def test_wgan_gp_on_fashion_mnist_lowers_the_classifier_distance():
  """configs/mnist_wgan_gp.py's recipe (narrower networks) on the real
  images: the Frechet distance in a Fashion-MNIST classifier's features
  between G's images and held-out images falls."""
  config = mnist_wgan_gp.get_config()
  config.model.ngf = config.model.ndf = 32
  config.eval.classifier_epochs = 2
  directory = idx_files.DEBIAN_FASHION_MNIST_DIR
  images = idx_files.read_images(directory, 'train')
  labels = idx_files.read_labels(directory, 'train')
  held_out = idx_files.read_images(directory, 'test')[:1000]
  variables, accuracy = classifier.train(
      config, (images[:10_000], labels[:10_000]),
      (idx_files.read_images(directory, 'test')[1000:3000],
       idx_files.read_labels(directory, 'test')[1000:3000]), 10)
  assert accuracy > 0.7
  embed = jax.jit(classifier.features)
  real = np.asarray(embed(variables, held_out))

  recipe = train_states.Recipe.from_config(config)
  g_state, d_state = train_states.create_train_states(config, jax.random.key(0))
  step = jax.jit(functools.partial(steps.train_step, recipe=recipe),
                 donate_argnums=(0, 1))
  generate = jax.jit(forward.generate)
  z = jax.random.normal(jax.random.key(2), (1000, config.model.nz))

  def distance():
    return distances.frechet_distance_of_features(
        real, np.asarray(embed(variables, generate(g_state, z))))

  start = distance()
  num_steps, per_step = 80, recipe.n_critic * config.batch_size
  data = (images[:num_steps * per_step].astype(np.float32) / 127.5 - 1.0
          ).reshape(num_steps, recipe.n_critic, config.batch_size, 28, 28, 1)
  wasserstein = []
  for batch in data:
    g_state, d_state, metrics = step(g_state, d_state, batch,
                                     jax.random.key(1))
    wasserstein.append(float(metrics['wasserstein']))
  end = distance()
  print(f'classifier FD {start:.1f} -> {end:.1f}; Wasserstein estimate '
        f'(20-step means) {np.mean(np.reshape(wasserstein, (-1, 20)), 1)}')
  assert end < 0.5 * start, (start, end)
  assert np.all(np.isfinite(wasserstein))
