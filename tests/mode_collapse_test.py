"""The mode-collapse testbed: its measures, and unrolling on a short run."""

import jax
import numpy as np
import pytest

from dcgan_jax import mode_collapse


def test_samples_at_every_centre_cover_every_mode_and_are_high_quality():
  centres = mode_collapse.mode_centres()
  assert np.allclose(np.linalg.norm(centres, axis=1), mode_collapse.RADIUS)
  samples = np.repeat(centres, 100, axis=0)
  assert mode_collapse.coverage(samples) == (8, 1.0)


def test_samples_at_one_centre_cover_one_mode():
  samples = np.repeat(mode_collapse.mode_centres()[:1], 2500, axis=0)
  assert mode_collapse.coverage(samples) == (1, 1.0)


def test_thresholds_of_the_measures():
  centres = mode_collapse.mode_centres()
  std = mode_collapse.STD
  # 3.5 std away (outward) is not high quality; 2.5 std away is.
  samples = np.concatenate([centres[:1] * (1 + 3.5 * std / 2),
                            centres[1:2] * (1 + 2.5 * std / 2)])
  covered, quality = mode_collapse.coverage(samples)
  assert (covered, quality) == (1, 0.5)
  # A mode needs at least 1% of the samples: 24 of 2,500 do not count.
  samples = np.concatenate([np.repeat(centres[:1], 2476, axis=0),
                            np.repeat(centres[1:2], 24, axis=0)])
  assert mode_collapse.coverage(samples)[0] == 1
  data = np.asarray(mode_collapse.sample_data(jax.random.key(0), 2500))
  covered, quality = mode_collapse.coverage(data)
  assert covered == 8 and quality > 0.98  # 3 std holds 98.9% in 2-D.


@pytest.mark.slow
def test_unrolling_covers_at_least_as_many_modes_on_the_same_seeds():
  """3,000 G updates of the testbed's setup (benchmarks/mode_collapse.py's)
  on one seed, without and with 5 unrolled D updates: the unrolled run
  costs about 45 s on 2 cores, so one seed is what the suite affords.
  Shorter runs, or batches of 128, leave both at 0 modes here."""
  plain, unrolled = (
      [m for m, _ in mode_collapse.train(
          mode_collapse.get_config(unroll_steps=k), [1], 3000)]
      for k in (0, 5))
  print(f'modes covered per seed: plain {plain}, unrolled {unrolled}')
  assert all(u >= p for u, p in zip(unrolled, plain)), (plain, unrolled)
  assert sum(unrolled) > 0, (plain, unrolled)
