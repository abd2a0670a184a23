"""Makes tests/golden/checkpoint_v1/: a run of configs/test.py (with an EMA
of G) saved at step 2, and checkpoint_v1.npz, every array of the states it
holds, as restored by the version that wrote it. Made once, by the code
before the package's layout was split into layers, so that a test shows
that this version resumes what that one saved; remaking it with newer code
would show nothing. Run from the repository root:

  python tests/golden/make_checkpoint_fixture.py
"""

import os
import shutil
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))))

# pylint: disable=g-import-not-at-top,wrong-import-position
import jax
import numpy as np

from configs import test
from dcgan_jax.run import loop
from tests import conftest
# pylint: enable=g-import-not-at-top,wrong-import-position

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURE = os.path.join(HERE, 'checkpoint_v1')


def main():
  config = test.get_config()
  config.num_train_steps = 2
  config.ema_decay = 0.9
  workdir = os.path.join(FIXTURE, 'run')
  shutil.rmtree(FIXTURE, ignore_errors=True)
  loop.train_and_evaluate(config, workdir)
  # Only the checkpoint is kept: grids, plots and logs are not read back.
  os.rename(os.path.join(workdir, 'checkpoints'),
            os.path.join(FIXTURE, 'checkpoints'))
  shutil.rmtree(workdir)
  g_state, d_state, rng = conftest.restore_checkpoint(FIXTURE, 2)
  arrays = conftest.arrays_by_path({'g': g_state, 'd': d_state,
                                    'rng': jax.random.key_data(rng)})
  np.savez(os.path.join(HERE, 'checkpoint_v1.npz'), **arrays)
  print(f'{len(arrays)} arrays')


if __name__ == '__main__':
  main()
