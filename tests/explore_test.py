"""Latent walks and vector arithmetic: the z they draw and the images."""

import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
from PIL import Image
import pytest

from dcgan_jax import explore
from dcgan_jax.gan import noise
from dcgan_jax.gan import train_states
from dcgan_jax.output import images
from dcgan_jax.run import checkpoint
from dcgan_jax.run import loop
from dcgan_jax import sample
from tests.conftest import load_config

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_interpolations_keep_their_ends_and_paths():
  z0, z1 = jax.random.normal(jax.random.key(0), (2, 100))
  for method in explore.INTERPOLATIONS:
    path = explore.interpolate(z0, z1, 7, method)
    assert path.shape == (7, 100)
    np.testing.assert_array_equal(path[0], z0)
    np.testing.assert_array_equal(path[-1], z1)
  linear = explore.interpolate(z0, z1, 5, 'linear')
  np.testing.assert_allclose(linear[2], (z0 + z1) / 2, rtol=1e-6)
  # slerp between z of equal norms: the great circle, in equal angles, in
  # the plane of z0 and z1.
  z1 = z1 * jnp.linalg.norm(z0) / jnp.linalg.norm(z1)
  path = explore.interpolate(z0, z1, 5, 'slerp')
  norms = jnp.linalg.norm(path, axis=1)
  np.testing.assert_allclose(norms, norms[0], rtol=1e-5)
  unit = path / norms[:, None]
  angles = np.arccos(np.clip(np.sum(unit[1:] * unit[:-1], axis=1), -1, 1))
  np.testing.assert_allclose(angles, angles[0], rtol=1e-3)
  basis = np.linalg.qr(np.stack([z0, z1], 1))[0]
  np.testing.assert_allclose(basis @ (basis.T @ path[2]), path[2], atol=1e-4)
  # Parallel z: the line, no division by sin(0).
  same = explore.interpolate(z0, 2 * z0, 3, 'slerp')
  np.testing.assert_allclose(same[1], 1.5 * z0, rtol=1e-5)
  with pytest.raises(ValueError, match="--interpolation='cubic'"):
    explore.interpolate(z0, z1, 5, 'cubic')


def test_walks_and_arithmetic_are_g_at_their_z():
  config = load_config('test')
  g_state, _ = train_states.create_train_states(config, jax.random.key(0))
  z = noise.image_z(3, range(4), config.model.nz)
  # Numbered z do not depend on which others are drawn.
  np.testing.assert_array_equal(
      noise.image_z(3, [2], config.model.nz)[0], z[2])
  walk = explore.walks(g_state, z, 5)
  assert walk.shape == (2, 5, 28, 28, 1) and walk.dtype == np.uint8
  ends = np.asarray(sample.generate_uint8(g_state, z))
  # Each row starts at G(z[2r]) and ends at G(z[2r + 1]).
  for row in range(2):
    np.testing.assert_array_equal(walk[row, 0], ends[2 * row])
    np.testing.assert_array_equal(walk[row, -1], ends[2 * row + 1])
  assert np.any(walk[:, 2] != walk[:, 0])

  z_a, z_b, z_c = (noise.image_z(0, g, config.model.nz)
                   for g in ([0, 1, 2], [3, 4, 5], [6, 7, 8]))
  out = explore.arithmetic(g_state, z_a, z_b, z_c, num_results=6)
  assert out.shape == (4, 6, 28, 28, 1)
  expected = sample.generate_uint8(g_state, jnp.concatenate([
      z_a, z_a.mean(0, keepdims=True),
      z_a.mean(0, keepdims=True) - z_b.mean(0, keepdims=True)
      + z_c.mean(0, keepdims=True)]))
  np.testing.assert_array_equal(out[0, :4], expected[:4])
  np.testing.assert_array_equal(out[3, 0], expected[4])
  assert not out[0, 4:].any()  # Padding after A's three images and mean.
  with pytest.raises(ValueError, match='three groups'):
    explore._indices('1,2:3')  # pylint: disable=protected-access


def test_command_writes_walk_grid_and_gif(tmp_path):
  config = load_config('test')
  workdir = str(tmp_path / 'run')
  g_state, d_state = train_states.create_train_states(config, jax.random.key(0))
  manager = checkpoint.create_manager(workdir)
  checkpoint.save(manager, 1, g_state, d_state, jax.random.key(0), config)
  checkpoint.wait(manager)
  out = str(tmp_path / 'walk.png')
  result = subprocess.run(
      [sys.executable, '-m', 'dcgan_jax.explore', f'--workdir={workdir}',
       f'--out={out}', '--pairs=3', '--steps=4', '--gif'],
      cwd=REPO, capture_output=True, text=True, timeout=300,
      env=dict(os.environ, JAX_PLATFORMS='cpu'))
  assert result.returncode == 0, result.stderr[-3000:]
  with Image.open(out) as grid:  # 3 rows of 4 images of 28 px, padding 2.
    assert grid.size == (4 * 30 + 2, 3 * 30 + 2)
  with Image.open(str(tmp_path / 'walk.gif')) as gif:
    assert gif.n_frames == 6  # 4 steps there, 2 back.


def test_sample_explore_and_the_training_grids_show_the_same_images(tmp_path):
  """Image i of a seed is G(noise.image_z(seed, i)) in `sample`, `explore
  --candidates` and the training run's grids (config.seed)."""
  config = load_config('test')
  config.ema_decay = 0.9
  workdir = str(tmp_path / 'run')
  loop.train_and_evaluate(config, workdir)
  sampled = sample.generate_images(workdir, 16, seed=config.seed,
                                   batch_size=5)
  _, _, g_state = checkpoint.load_generator(workdir)
  np.testing.assert_array_equal(
      explore.candidates(g_state, config.seed, 16), sampled)
  # More images of the same seed start with the same ones.
  np.testing.assert_array_equal(
      sample.generate_images(workdir, 20, seed=config.seed)[:16], sampled)
  assert not np.array_equal(sample.generate_images(workdir, 16, seed=1),
                            sampled)
  with Image.open(os.path.join(workdir, 'samples',
                               f'{config.num_train_steps:07d}.png')) as grid:
    np.testing.assert_array_equal(
        np.asarray(grid).reshape(images.make_grid(sampled).shape),
        images.make_grid(sampled))
