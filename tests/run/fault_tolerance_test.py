"""Kills, preemptions, corrupt checkpoints, divergence and bad workdirs: kills
and signals through the real training CLI in a subprocess, the rest in
this process."""

import errno
import logging
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import jax
import numpy as np
import orbax.checkpoint as ocp
import pytest

from dcgan_jax.gan import train_states
from dcgan_jax.run import checkpoint
from dcgan_jax.run import loop
from dcgan_jax import sample
from tests.conftest import load_config
from tests.conftest import REPO
from tests.conftest import restore_checkpoint

MAIN = ['-m', 'dcgan_jax.main', '--config=configs/test.py']
# Logs every step, so a test can act after a given step.
EVERY_STEP = ['--config.log_every_steps=1', '--config.sample_every_steps=1000']
# A model big enough that a step takes a noticeable time on a CPU, so a kill
# lands between checkpoints.
SLOW = [*EVERY_STEP, '--config.data.image_size=32',
        '--config.data.channels=3', '--config.model.ngf=32',
        '--config.model.ndf=32', '--config.batch_size=16']


def _start(workdir, *flags, python_args=MAIN):
  log = tempfile.NamedTemporaryFile('w', suffix='.log', delete=False)  # pylint: disable=consider-using-with
  process = subprocess.Popen(
      [sys.executable, *python_args, f'--workdir={workdir}', *flags],
      cwd=REPO, stdout=log, stderr=subprocess.STDOUT)
  process.log_path = log.name
  return process


def _run(workdir, *flags, python_args=MAIN):
  process = _start(workdir, *flags, python_args=python_args)
  process.wait(timeout=600)
  with open(process.log_path) as f:
    return process.returncode, f.read()


def _wait_for(process, pattern, timeout=300):
  deadline = time.time() + timeout
  while time.time() < deadline:
    with open(process.log_path) as f:
      if re.search(pattern, f.read()):
        return
    assert process.poll() is None, 'run ended before ' + pattern
    time.sleep(0.2)
  raise TimeoutError(pattern)


def _saved_steps(workdir):
  return checkpoint.create_manager(workdir, read_only=True).all_steps()


def _load(workdir, step):
  g_state, d_state, rng = restore_checkpoint(workdir, step)
  return g_state, d_state, jax.random.key_data(rng)


def _assert_identical(a, b):
  leaves_a, leaves_b = jax.tree.leaves(a), jax.tree.leaves(b)
  assert len(leaves_a) == len(leaves_b)
  for x, y in zip(leaves_a, leaves_b):
    assert np.array_equal(np.asarray(x), np.asarray(y))


@pytest.mark.slow
def test_sigkill_between_checkpoints_then_restart_is_exact(tmp_path):
  flags = [*SLOW, '--config.num_train_steps=10',
           '--config.checkpoint_every_steps=4']
  straight = str(tmp_path / 'straight')
  config = _config(num_train_steps=10, checkpoint_every_steps=4)
  for flag in SLOW:
    key, value = flag[len('--config.'):].split('=')
    section, _, name = key.rpartition('.')
    (config[section] if section else config)[name] = int(value)
  loop.train_and_evaluate(config, straight)  # The same run, in this process.

  killed = str(tmp_path / 'killed')
  process = _start(killed, *flags)
  _wait_for(process, r'\] \[5\] d_fake')  # Past the checkpoint at step 4,
  # which Orbax commits in the background: kill once it is there.
  committed = os.path.join(checkpoint.checkpoint_dir(killed), '4')
  deadline = time.time() + 120
  while not os.path.isdir(committed) and time.time() < deadline:
    assert process.poll() is None, 'run ended before step 4 was committed'
    time.sleep(0.05)
  process.send_signal(signal.SIGKILL)
  process.wait(timeout=60)
  assert process.returncode == -signal.SIGKILL
  assert max(_saved_steps(killed)) < 10

  code, log = _run(killed, *flags)
  assert code == 0, log[-3000:]
  assert re.search(r'Resumed from \S+/checkpoints/[48] at step [48]', log)
  # Parameters, batch_stats, optimizer state, step and rng, bit for bit.
  _assert_identical(_load(straight, 10), _load(killed, 10))


@pytest.mark.slow
def test_preemption_saves_the_current_step_and_exits_0(tmp_path):
  """SIGTERM through the CLI; SIGINT reaches the same handler
  (schedule_test.py)."""
  workdir = str(tmp_path / 'run')
  process = _start(workdir, *EVERY_STEP, '--config.num_train_steps=100000',
                   '--config.checkpoint_every_steps=100000')
  _wait_for(process, r'\] \[2\] d_fake')
  sent = time.time()
  process.send_signal(signal.SIGTERM)
  process.wait(timeout=120)
  assert process.returncode == 0
  assert time.time() - sent < 60
  with open(process.log_path) as f:
    stopped = int(re.search(r'Stopped at step (\d+) \(SIGTERM\)',
                            f.read())[1])
  assert stopped >= 2
  assert _saved_steps(workdir) == [stopped]


def _config(**overrides):
  config = load_config('test')
  for key, value in overrides.items():
    config[key] = value
  return config


def test_corrupt_checkpoints_are_skipped_not_deleted(tmp_path, caplog):
  workdir = str(tmp_path / 'run')
  loop.train_and_evaluate(_config(num_train_steps=6), workdir)
  assert _saved_steps(workdir) == [2, 4, 6]
  # Step 6 loses its files, step 4 has them cut short.
  for step, damage in ((6, 'delete'), (4, 'truncate')):
    state_dir = os.path.join(checkpoint.checkpoint_dir(workdir), str(step),
                             'state')
    data_files = [os.path.join(d, f) for d, _, names in os.walk(state_dir)
                  for f in names if 'ocdbt' in d or f.startswith('manifest')]
    assert data_files
    for path in data_files:
      if damage == 'delete':
        os.remove(path)
      else:
        with open(path, 'r+b') as f:
          f.truncate(os.path.getsize(path) // 2)

  with caplog.at_level(logging.INFO, logger='absl'):
    loop.train_and_evaluate(_config(num_train_steps=8), workdir)
  for step in (6, 4):
    bad_path = os.path.join(checkpoint.checkpoint_dir(workdir), str(step))
    assert f'Checkpoint {bad_path} cannot be read' in caplog.text
    # Moved aside for inspection, not deleted.
    assert os.path.isdir(os.path.join(workdir, 'checkpoints_unreadable',
                                      str(step)))
  assert re.search(r'Resumed from \S+/checkpoints/2 at step 2', caplog.text)
  assert _saved_steps(workdir) == [4, 6, 8]  # Saved anew; 3 kept.
  # Any step can be sampled, not only the latest.
  assert sample.generate_images(workdir, 3, step=4).shape == (3, 28, 28, 1)


def test_divergence_stops_the_run_and_keeps_the_last_good_checkpoint(
    tmp_path, caplog):
  workdir = str(tmp_path / 'run')
  loop.train_and_evaluate(_config(num_train_steps=2), workdir)
  before = _load(workdir, 2)
  # An absurd learning rate sends the parameters to about 1e38 in one step;
  # the next forward pass overflows.
  config = _config(num_train_steps=8)
  config.optim.lr_d = config.optim.lr_g = 1e38
  with caplog.at_level(logging.INFO, logger='absl'), pytest.raises(
      FloatingPointError, match=r'(\w+) is (nan|inf|-inf) at step (\d+): '
      r'training diverged.* the last one saved is step 2') as error:
    loop.train_and_evaluate(config, workdir)
  # Learning rates may change on resume (only shapes and data may not).
  assert re.search(r'Resumed from \S+/checkpoints/2 at step 2', caplog.text)
  assert int(re.search(r'at step (\d+)', str(error.value))[1]) > 2
  assert _saved_steps(workdir) == [2]
  _assert_identical(before, _load(workdir, 2))


def test_unwritable_workdir_fails_clearly(tmp_path):
  not_a_dir = tmp_path / 'file'
  not_a_dir.write_text('')
  with pytest.raises(OSError, match=f'{not_a_dir}.* is not a writable '
                     'directory'):
    loop.train_and_evaluate(_config(), str(not_a_dir / 'run'))


def test_failing_save_keeps_earlier_checkpoints(tmp_path, monkeypatch):
  workdir = str(tmp_path / 'run')
  save = ocp.CheckpointManager.save

  def full_disk(self, step, *args, **kwargs):  # The disk is full from step 4.
    if step >= 4:
      raise OSError(errno.ENOSPC, 'No space left on device')
    return save(self, step, *args, **kwargs)
  monkeypatch.setattr(ocp.CheckpointManager, 'save', full_disk)
  with pytest.raises(RuntimeError, match=r'Saving the checkpoint for step 4 .*'
                     'No space left on device.* Earlier checkpoints are '
                     'untouched'):
    loop.train_and_evaluate(_config(num_train_steps=6), workdir)
  assert _saved_steps(workdir) == [2]
  _load(workdir, 2)  # Still loadable.


def test_resume_refuses_a_config_that_changes_the_model(tmp_path):
  workdir = str(tmp_path / 'run')
  loop.train_and_evaluate(_config(num_train_steps=2), workdir)
  ckpt_dir = checkpoint.checkpoint_dir(workdir)
  before = sorted((d, os.path.getmtime(os.path.join(d, f)))
                  for d, _, files in os.walk(ckpt_dir) for f in files)
  config = _config(num_train_steps=4)
  config.model.ngf = 16
  config.model.name = 'dcgan_upsample'
  config.data.image_size = 32
  config.objective = 'hinge'
  config.optim.name = 'rmsprop'
  with pytest.raises(ValueError, match=r'data.image_size: 28 -> 32, '
                     r"model.name: 'dcgan' -> 'dcgan_upsample', "
                     r"model.ngf: 8 -> 16, objective: 'non_saturating' -> "
                     r"'hinge', optim.name: 'adam' -> 'rmsprop'"):
    loop.train_and_evaluate(config, workdir)
  after = sorted((d, os.path.getmtime(os.path.join(d, f)))
                 for d, _, files in os.walk(ckpt_dir) for f in files)
  assert before == after


def test_best_slot_keeps_the_best_step_by_metric(tmp_path):
  from tests.conftest import tiny_config  # pylint: disable=g-import-not-at-top
  config = tiny_config()
  config.batch_size = 8
  g_state, d_state = train_states.create_train_states(config, jax.random.key(0))
  best = checkpoint.create_manager(str(tmp_path), best_metric='fid')
  for step, fid in [(1, 50.0), (2, 30.0), (3, 40.0), (4, 35.0)]:
    checkpoint.save(best, step, g_state, d_state, jax.random.key(0), config,
                    metrics={'fid': fid})
  checkpoint.wait(best)
  assert best.best_step() == 2
  assert best.all_steps() == [2]
  assert os.path.isdir(os.path.join(str(tmp_path), 'checkpoints_best', '2'))
  shutil.rmtree(str(tmp_path / 'checkpoints_best'))


def test_resume_turns_ema_on_at_the_same_step(tmp_path, caplog):
  workdir = str(tmp_path / 'run')
  loop.train_and_evaluate(_config(num_train_steps=2), workdir)
  config = _config(num_train_steps=4)
  config.ema_decay = 0.9
  # Restored into a state with EMA: the averages start at the weights.
  g_state, d_state = train_states.create_train_states(config, jax.random.key(0))
  manager = checkpoint.create_manager(workdir, read_only=True)
  g_state, _, _ = checkpoint.restore(manager, 2, g_state, d_state,
                                     jax.random.key(0))
  _assert_identical((g_state.params, g_state.batch_stats),
                    (g_state.ema_params, g_state.ema_batch_stats))

  with caplog.at_level(logging.INFO, logger='absl'):
    g_state, _ = loop.train_and_evaluate(config, workdir)
  assert re.search(r'Resumed from \S+/checkpoints/2 at step 2', caplog.text)
  assert re.search(r'checkpoints/2 has no g.ema_batch_stats \(\d+ arrays\), '
                   r'g.ema_params \(\d+ arrays\): starting them from '
                   r'g.batch_stats, g.params', caplog.text)
  assert _saved_steps(workdir) == [2, 4]
  restored, _, _ = _load(workdir, 4)
  _assert_identical(restored.ema_params, g_state.ema_params)
  assert not np.array_equal(jax.tree.leaves(g_state.ema_params)[0],
                            jax.tree.leaves(g_state.params)[0])


def _files_and_times(directory):
  return sorted((os.path.join(d, f), os.path.getmtime(os.path.join(d, f)))
                for d, _, files in os.walk(directory) for f in files)


def test_checkpoint_that_does_not_fit_is_refused_not_moved(tmp_path):
  workdir = str(tmp_path / 'run')
  config = _config(num_train_steps=2)
  config.ema_decay = 0.9
  loop.train_and_evaluate(config, workdir)
  # Step 4: the same arrays and one field this code does not know.
  manager = checkpoint.create_manager(workdir)
  saved = manager.restore(2, args=ocp.args.Composite(
      state=ocp.args.StandardRestore())).state
  saved['d']['spectral_u'] = np.zeros(3, np.float32)
  meta = {'config': config.to_dict(), 'data': {'step': 4}}
  manager.save(4, args=ocp.args.Composite(
      state=ocp.args.StandardSave(saved), meta=ocp.args.JsonSave(meta)))
  checkpoint.wait(manager)
  before = _files_and_times(workdir)

  config.num_train_steps = 6
  with pytest.raises(checkpoint.StructureError, match=(
      r"checkpoints/4 does not fit this run's state; fields in the "
      r"checkpoint, not in this run's state: d.spectral_u \(1 array\)\. It "
      'is left as it is')):
    loop.train_and_evaluate(config, workdir)
  # EMA switched off: the averages would be dropped, so step 2 is refused.
  shutil.rmtree(os.path.join(checkpoint.checkpoint_dir(workdir), '4'))
  before = _files_and_times(workdir)
  config.ema_decay = 0.0
  with pytest.raises(checkpoint.StructureError, match=(
      r"checkpoints/2 does not fit .* not in this run's state: "
      r'g.ema_batch_stats \(\d+ arrays\), g.ema_params')):
    loop.train_and_evaluate(config, workdir)
  assert _files_and_times(workdir) == before
  assert not os.path.exists(os.path.join(workdir, 'checkpoints_unreadable'))
