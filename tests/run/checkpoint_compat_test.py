"""A checkpoint written by the version before the package's layers were
split (tests/golden/checkpoint_v1, made by
tests/golden/make_checkpoint_fixture.py) restores and resumes."""

import os
import shutil

import jax
import numpy as np

from dcgan_jax.gan import train_states
from dcgan_jax.run import checkpoint
from dcgan_jax.run import loop
from tests.conftest import arrays_by_path
from tests.conftest import GOLDEN
from tests.conftest import load_config
from tests.conftest import restore_checkpoint



def _copy_fixture(tmp_path) -> str:
  workdir = str(tmp_path / 'run')
  shutil.copytree(os.path.join(GOLDEN, 'checkpoint_v1'), workdir)
  return workdir


def test_old_checkpoint_restores_the_arrays_it_was_saved_with(tmp_path):
  g_state, d_state, rng = restore_checkpoint(_copy_fixture(tmp_path), 2)
  restored = arrays_by_path({'g': g_state, 'd': d_state,
                             'rng': jax.random.key_data(rng)})
  with np.load(os.path.join(GOLDEN, 'checkpoint_v1.npz')) as saved:
    assert sorted(saved.files) == sorted(restored)
    for name in saved.files:
      np.testing.assert_array_equal(restored[name], saved[name], err_msg=name)


def test_old_checkpoint_resumes_to_the_end_of_the_run(tmp_path):
  workdir = _copy_fixture(tmp_path)
  config = load_config('test')
  config.ema_decay = 0.9
  loop.train_and_evaluate(config, workdir)
  manager = checkpoint.create_manager(workdir, read_only=True)
  assert manager.all_steps() == [2, 4]
  g_state, d_state = train_states.create_train_states(config, jax.random.key(0))
  g_state, _, _ = checkpoint.restore(manager, 4, g_state, d_state,
                                     jax.random.key(0))
  assert int(g_state.step) == 4
  assert all(np.isfinite(np.asarray(x)).all()
             for x in jax.tree.leaves(g_state.params))
  assert not os.path.exists(os.path.join(workdir, 'checkpoints_unreadable'))
