"""A sweep through the training loop: each member trained, logged, evaluated
and saved as its single run would be; resumed exactly; taken out with
`sweep extract`; compared with `compare`."""

import json
import os
import shutil
import subprocess
import sys

import jax
import numpy as np
from PIL import Image
import pytest
from scipy import stats

from dcgan_jax import compare
from dcgan_jax import evaluate
from dcgan_jax.evaluation import comparison
from dcgan_jax.gan import sweep
from dcgan_jax.output import metrics_file
from dcgan_jax.run import checkpoint
from dcgan_jax.run import config_schema
from dcgan_jax.run import loop
from dcgan_jax.run import members
from tests.conftest import eval_config
from tests.conftest import REPO
from tests.conftest import restore_checkpoint


def _assert_close(a, b, atol=1e-5):
  leaves_a, leaves_b = jax.tree.leaves(a), jax.tree.leaves(b)
  assert len(leaves_a) == len(leaves_b)
  for x, y in zip(leaves_a, leaves_b):
    np.testing.assert_allclose(np.asarray(x), np.asarray(y), atol=atol,
                               rtol=0)


@pytest.mark.slow
def test_a_sweep_run_is_its_members_single_runs(tmp_path):
  config = eval_config(tmp_path)
  config.ema_decay = 0.9
  config.sweep.seeds = '1,5'
  config.sweep.lr_g = '5e-4'  # One value, traced: not the base 2e-4.
  workdir = str(tmp_path / 'sweep')
  g_states, d_states = loop.train_and_evaluate(config, workdir)
  assert g_states.params['ConvTranspose_0']['kernel'].shape[0] == 2

  # Scalars per member and as mean, std, min and max.
  series = metrics_file.read(workdir)
  loss = [series[f'd_loss/member_{k}'][1] for k in range(2)]
  np.testing.assert_allclose(series['d_loss'][1], np.mean(loss, axis=0))
  np.testing.assert_allclose(series['d_loss/std'][1], np.std(loss, axis=0))
  np.testing.assert_allclose(series['d_loss/min'][1], np.min(loss, axis=0))
  fd = np.array([series[f'classifier_fd/member_{k}'][1][-1]
                 for k in range(2)])
  assert series['classifier_fd/best_member'][1][-1] == np.argmin(fd)

  # A grid row per member, all of the same z; plots with bands.
  grid = Image.open(os.path.join(workdir, 'samples', '0000004.png'))
  assert grid.size == (2 + 8 * 30, 2 + 2 * 30)  # 16 images: 8 per member.
  assert os.path.exists(os.path.join(workdir, 'plots', 'metrics.png'))

  # Member 1 (seed 5, lr_g 5e-4) is the single run of its config, trained
  # and evaluated alone.
  single_config = sweep.member_config(config, 1)
  assert (single_config.seed, single_config.optim.lr_g) == (5, 5e-4)
  single = loop.train_and_evaluate(single_config, str(tmp_path / 'single'))
  member = [sweep.single_run_state(state)
            for state in sweep.member((g_states, d_states), 1)]
  _assert_close(member, single)
  np.testing.assert_allclose(
      fd[1], metrics_file.read(tmp_path / 'single')['classifier_fd'][1][-1],
      rtol=1e-3)

  # The best slot holds the best member as a single run's checkpoint.
  best = checkpoint.create_manager(workdir, read_only=True,
                                   best_metric='classifier_fd')
  best_config = checkpoint.restore_config(best, best.all_steps()[0])
  assert best_config.sweep.seeds == '' and best_config.sweep.lr_g == ''
  assert (best_config.seed, best_config.optim.lr_g) == (
      sweep.members(config)[int(np.argmin(fd))]['seed'],
      sweep.members(config)[int(np.argmin(fd))]['optim.lr_g'])
  _, results = evaluate.evaluate(workdir, best=True)
  np.testing.assert_allclose(results['classifier_fd'],
                             series['classifier_fd/min'][1].min(), rtol=1e-3)

  # Extracted, member 1 is a single run's checkpoint: it loads as one.
  extracted = str(tmp_path / 'extracted')
  result = subprocess.run(
      [sys.executable, '-m', 'dcgan_jax.sweep', 'extract',
       f'--workdir={workdir}', '--member=1', f'--out={extracted}'],
      cwd=REPO, capture_output=True, text=True, timeout=300)
  assert result.returncode == 0, result.stderr[-3000:]
  assert 'Member 1 (seed 5) at step 4' in result.stdout
  _assert_close(restore_checkpoint(extracted, 4)[:2], member, atol=0)
  assert checkpoint.load_generator(extracted)[1].seed == 5
  with pytest.raises(ValueError, match='holds a sweep'):
    checkpoint.load_generator(workdir)
  with pytest.raises(ValueError, match='has members 0 to 1'):
    members.extract(workdir, 2, str(tmp_path / 'none'))

  # Resumed from step 2, the sweep ends where it did.
  resumed = str(tmp_path / 'resumed')
  shutil.copytree(workdir, resumed)
  shutil.rmtree(os.path.join(checkpoint.checkpoint_dir(resumed), '4'))
  config.eval.metrics = ''
  for a, b in zip(jax.tree.leaves(loop.train_and_evaluate(config, resumed)),
                  jax.tree.leaves((g_states, d_states))):
    np.testing.assert_array_equal(a, b)


@pytest.mark.slow
def test_with_own_data_each_member_reads_its_seeds_order(tmp_path):
  config = eval_config(tmp_path)
  config.eval.metrics = ''
  config.data.random_flip = True
  config.num_train_steps = 3
  config.sweep.seeds = '3,8'
  config.sweep.own_data = True
  g_states, d_states = loop.train_and_evaluate(config, str(tmp_path / 'a'))
  single_config = sweep.member_config(config, 1)
  assert (single_config.seed, single_config.data.seed) == (8, -1)
  single = loop.train_and_evaluate(single_config, str(tmp_path / 'b'))
  _assert_close([sweep.single_run_state(state)
                 for state in sweep.member((g_states, d_states), 1)], single)


def test_compare_pairs_members_by_seed(tmp_path):
  """Two sweeps' checkpoints and logs, as the loop writes them, compared
  over their seeds."""
  config = eval_config(tmp_path)
  config.sweep.seeds = '4'
  a_values, b_values = [5.0, 6.0, 7.5, 6.5], [4.0, 5.5, 6.0, 6.4]
  workdirs = [str(tmp_path / 'a'), str(tmp_path / 'b')]
  manager = checkpoint.create_manager(workdirs[0])
  checkpoint.save(manager, 1, *sweep.create_member_states(config),
                  sweep.member_keys([0, 1, 2, 3])[1], config)
  checkpoint.wait(manager)
  shutil.copytree(workdirs[0], workdirs[1])
  for workdir, values in zip(workdirs, (a_values, b_values)):
    with open(os.path.join(workdir, metrics_file.FILENAME), 'a') as f:
      f.write(json.dumps({'step': 1, **members.summarize(
          {'classifier_fd': values})}) + '\n')
  report = compare.compare(*workdirs, 'classifier_fd')
  expected = stats.ttest_rel(b_values, a_values).confidence_interval()
  diff = np.mean(b_values) - np.mean(a_values)
  assert f'B - A: {diff:+.4g}, 95% CI [{expected.low:+.4g}, ' in report
  assert 'paired by seed, t over 4 seeds' in report
  assert f'{np.mean(a_values):.4g} +- {np.std(a_values, ddof=1):.2g}' in report


def test_confidence_intervals_match_scipy():
  a, b = [10.1, 9.5, 11.0, 10.4, 9.9], [9.2, 9.8, 10.0, 9.1, 9.6, 8.8]
  welch = comparison.difference(a, b, paired=False)
  expected = stats.ttest_ind(b, a, equal_var=False)
  interval = expected.confidence_interval()
  np.testing.assert_allclose([welch.low, welch.high, welch.t],
                             [interval.low, interval.high, expected.statistic],
                             rtol=1e-6)
  paired = comparison.difference(a, b[:5], paired=True, confidence=0.9)
  expected = stats.ttest_rel(b[:5], a)
  interval = expected.confidence_interval(0.9)
  np.testing.assert_allclose([paired.low, paired.high, paired.t],
                             [interval.low, interval.high, expected.statistic],
                             rtol=1e-6)
  with pytest.raises(ValueError, match='at least 2 seeds'):
    comparison.difference([1.0], [2.0, 3.0], paired=False)


def test_a_sweep_too_large_for_memory_fails_with_the_estimate(monkeypatch):
  compiled = jax.jit(lambda x: (x @ x) @ x).lower(
      jax.numpy.ones((256, 256))).compile()
  monkeypatch.setattr(members, '_free_bytes', lambda device: 10**12)
  members.check_memory(compiled, 8)
  monkeypatch.setattr(members, '_free_bytes', lambda device: 1000)
  with pytest.raises(config_schema.ConfigError,
                     match=r'config.sweep.seeds: 8 members need about .* GiB '
                     r'.* more than the 0.0 GiB free on cpu; about 0 would '
                     'fit'):
    members.check_memory(compiled, 8)
