"""The mode-collapse testbed: its measures, its settings, and the unrolled
GAN's result at a reduced length."""

import jax
import numpy as np
import pytest

from benchmarks import eight_gaussians


def test_samples_at_every_centre_cover_every_mode_and_are_high_quality():
  centres = eight_gaussians.mode_centres()
  assert np.allclose(np.linalg.norm(centres, axis=1), eight_gaussians.RADIUS)
  samples = np.repeat(centres, 100, axis=0)
  assert eight_gaussians.coverage(samples) == (8, 1.0)


def test_samples_at_one_centre_cover_one_mode():
  samples = np.repeat(eight_gaussians.mode_centres()[:1], 2500, axis=0)
  assert eight_gaussians.coverage(samples) == (1, 1.0)


def test_thresholds_of_the_measures():
  centres = eight_gaussians.mode_centres()
  std = eight_gaussians.STD
  # 3.5 std away (outward) is not high quality; 2.5 std away is.
  samples = np.concatenate([centres[:1] * (1 + 3.5 * std / 2),
                            centres[1:2] * (1 + 2.5 * std / 2)])
  covered, quality = eight_gaussians.coverage(samples)
  assert (covered, quality) == (1, 0.5)
  # A mode needs at least 1% of the samples: 24 of 2,500 do not count.
  samples = np.concatenate([np.repeat(centres[:1], 2476, axis=0),
                            np.repeat(centres[1:2], 24, axis=0)])
  assert eight_gaussians.coverage(samples)[0] == 1
  data = np.asarray(eight_gaussians.sample_data(jax.random.key(0), 2500))
  covered, quality = eight_gaussians.coverage(data)
  assert covered == 8 and quality > 0.98  # 3 std holds 98.9% in 2-D.


def test_the_networks_and_settings_are_the_papers():
  config = eight_gaussians.get_config()
  assert (config.objective, config.unroll_steps, config.batch_size,
          config.model.nz) == ('minimax', 0, 512, 256)
  samples = eight_gaussians.train(config, [0], 0)
  assert samples[0].shape == (1, eight_gaussians.NUM_EVAL_SAMPLES, 2)


@pytest.mark.slow
def test_unrolling_covers_the_ring_where_the_standard_gan_hops_between_modes():
  """The paper's result at the smallest setting that shows it: its
  networks, losses, z and batch with learning rates of 1e-3 (the paper:
  1e-4) for 3,000 steps (the paper: 25,000), one seed. The standard GAN
  covers at most 2 modes at any time; with 5 unrolled D updates G covers
  most of the 8 with a fifth of its samples or more within 3 std of a mode
  (on this test's machine seed 0 covers 8 with 39%; seeds 0-3 trained as
  one sweep 7 or 8 with 32-46%, the standard GAN 0 on each; over 16 seeds
  at 5e-4 and 8,000 steps: BENCHMARKS.md)."""
  measured = {}
  for unroll in (0, 5):
    config = eight_gaussians.get_config(unroll_steps=unroll)
    config.optim.lr_g = config.optim.lr_d = 1e-3
    samples = eight_gaussians.train(config, [0], 3000, (1000, 2000))
    measured[unroll] = {step: eight_gaussians.coverage(s[0])
                        for step, s in samples.items()}
  print(measured)
  assert all(modes <= 2 for modes, _ in measured[0].values()), measured
  modes, quality = measured[5][3000]
  assert modes >= 6 and quality > 0.2, measured
