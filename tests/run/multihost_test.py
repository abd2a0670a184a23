"""Two processes x 2 CPU devices over loopback (JAX's multi-controller runtime,
gloo collectives), through the training CLI: what only real processes show.

The single-process side of each comparison runs in this pytest process,
which has 4 devices (conftest.py).
"""

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time

import jax
import numpy as np
import pytest

from dcgan_jax.output import metrics_file
from dcgan_jax.run import checkpoint
from dcgan_jax.run import config_schema
from dcgan_jax.run import loop
from tests.conftest import eval_config
from tests.conftest import load_config
from tests.conftest import REPO
from tests.conftest import restore_checkpoint

HEARTBEAT_TIMEOUT_S = 10
ENV = dict(os.environ, JAX_PLATFORMS='cpu',
           JAX_CPU_COLLECTIVES_IMPLEMENTATION='gloo',
           XLA_FLAGS='--xla_force_host_platform_device_count=2')


def _free_port():
  with socket.socket() as s:
    s.bind(('127.0.0.1', 0))
    return s.getsockname()[1]


class _Run:
  """The two processes of one run; their output in logdir/NAME.{0,1}.log."""

  def __init__(self, logdir, name, *flags):
    port = _free_port()
    self.logs = [os.path.join(logdir, f'{name}.{p}.log') for p in range(2)]
    self.processes = []
    for p in range(2):
      with open(self.logs[p], 'w') as log:
        self.processes.append(subprocess.Popen(
            [sys.executable, '-m', 'dcgan_jax.main',
             '--config=configs/test.py', '--multihost',
             f'--coordinator_address=127.0.0.1:{port}', '--num_processes=2',
             f'--process_id={p}',
             f'--heartbeat_timeout_s={HEARTBEAT_TIMEOUT_S}', *flags],
            cwd=REPO, env=ENV, stdout=log, stderr=subprocess.STDOUT))

  def log(self, p):
    with open(self.logs[p]) as f:
      return f.read()

  def wait(self, timeout=300):
    """Both exit codes; kills both if either is still running at timeout."""
    deadline = time.time() + timeout
    try:
      return [p.wait(timeout=max(1, deadline - time.time()))
              for p in self.processes]
    finally:
      for p in self.processes:
        if p.poll() is None:
          p.kill()

  def wait_for(self, pattern, p=0, timeout=300):
    deadline = time.time() + timeout
    while time.time() < deadline:
      match = re.search(pattern, self.log(p))
      if match:
        return match
      assert all(q.poll() is None for q in self.processes), (
          'a process ended before ' + pattern + ':\n' + self.log(p)[-3000:])
      time.sleep(0.2)
    self.wait(timeout=1)
    raise TimeoutError(pattern)


def _config_flags(config):
  return [f'--config.{key}={value}'
          for key, value in config_schema.flat_config(config).items()
          if key.split('.')[0] in ('data', 'eval', 'num_train_steps',
                                   'checkpoint_every_steps',
                                   'eval_every_steps', 'log_every_steps',
                                   'sweep')]


def _load(workdir, step):
  return restore_checkpoint(workdir, step)[:2]


def _assert_close(a, b):
  leaves_a, leaves_b = jax.tree.leaves(a), jax.tree.leaves(b)
  assert len(leaves_a) == len(leaves_b)
  for x, y in zip(leaves_a, leaves_b):
    np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=1e-5,
                               atol=1e-5)


def _copy_without(workdir, copy, *drop_steps):
  shutil.copytree(workdir, copy)
  for step in drop_steps:
    shutil.rmtree(os.path.join(checkpoint.checkpoint_dir(copy), str(step)))
  return copy


def _config(tmp_path):
  """Labeled folder data (a table: host-count independent), evaluated."""
  config = eval_config(tmp_path)
  config.data.random_flip = True
  config.num_train_steps = 6
  config.checkpoint_every_steps = 3
  config.eval_every_steps = 3
  return config


@pytest.mark.slow
def test_two_processes_train_like_one_and_resume_in_one(tmp_path):
  config = _config(tmp_path)
  flags = _config_flags(config)

  two = str(tmp_path / 'two')
  run = _Run(tmp_path, 'two', f'--workdir={two}', *flags)
  assert run.wait() == [0, 0], run.log(0)[-3000:] + run.log(1)[-3000:]
  # Each process logs its devices and rows (what --dry_run prints).
  for p, rows in ((0, '0-3'), (1, '4-7')):
    assert (f'Process {p} of 2: 2 local devices of 4 (pmap axis indices '
            f'{2 * p}, {2 * p + 1}); global batch 8 = 4 devices x 2; this '
            f'host reads 4 images per step: rows {rows} of each global '
            'batch, drawn from all 80 examples, held in memory once decoded '
            '(0.2 MiB).') in run.log(p)
  # Process 0 alone logs metrics and writes events, grids, plots, history,
  # the classifier and the cached features.
  assert 'd_loss=' in run.log(0) and 'd_loss=' not in run.log(1)
  assert 'Training the evaluation classifier' in run.log(0)
  assert 'Training the evaluation classifier' not in run.log(1)
  assert len([f for f in os.listdir(two) if 'tfevents' in f]) == 1
  assert sorted(os.listdir(os.path.join(two, 'samples'))) == [
      f'000000{s}.png' for s in (0, 2, 4, 6)]
  assert sorted(os.listdir(os.path.join(two, 'plots'))) == [
      'metrics.png', 'real_vs_fake.png', 'samples.gif', 'training.png']
  with open(os.path.join(two, metrics_file.FILENAME)) as f:
    logged = [(record['step'], name) for record in map(json.loads, f)
              for name in record if name != 'step']
  assert len(logged) == len(set(logged))  # Each value written once.
  assert [s for s, name in logged if name == 'd_loss'] == [2, 4, 6]
  assert [s for s, name in logged if name == 'classifier_fd'] == [3, 6]
  assert len(os.listdir(config.eval.cache_dir)) == 2  # Classifier, features.
  assert checkpoint.create_manager(two, read_only=True).all_steps() == [3, 6]
  assert len(checkpoint.create_manager(
      two, read_only=True, best_metric='classifier_fd').all_steps()) == 1

  # One process with 4 devices: the same parameters and metrics.
  one = str(tmp_path / 'one')
  states = loop.train_and_evaluate(config, one)
  _assert_close(_load(two, 6), states)
  for name in ('classifier_fd', 'classifier_kid'):
    np.testing.assert_allclose(metrics_file.read(two)[name][1],
                               metrics_file.read(one)[name][1], rtol=1e-3)

  # The 2-process checkpoint resumes in 1 process (in 2 processes: the
  # sweep test below).
  resumed = _copy_without(two, str(tmp_path / 'two_then_one'), 6)
  config.eval.metrics = ''
  _assert_close(loop.train_and_evaluate(config, resumed), states)


@pytest.mark.slow
def test_a_sweep_through_a_killed_process_and_a_preemption(tmp_path):
  """A sweep (2 seeds, lr_d traced) on two processes, one of them killed,
  both restarted, then preempted: where they stop, the members' states are
  those of the same sweep run uninterrupted in one process."""
  config = load_config('test')
  config.eval.metrics = ''
  config.num_train_steps = 100_000
  config.checkpoint_every_steps = 4
  config.log_every_steps = 1
  config.sweep.seeds = '2'
  config.sweep.lr_d = '4e-4'  # Traced: in the optimizer states.
  flags = [*_config_flags(config), '--config.sample_every_steps=100000']
  workdir = str(tmp_path / 'run')

  # kill -9 of process 1: process 0 fails at once if the gloo connection
  # breaks under a collective, or else once JAX's coordination service (in
  # process 0) misses process 1's heartbeats.
  run = _Run(tmp_path, 'killed', f'--workdir={workdir}', *flags)
  run.wait_for(r'\] \[5\] d_fake')
  deadline = time.time() + 60  # Orbax commits step 4 in the background.
  while not os.path.isdir(os.path.join(checkpoint.checkpoint_dir(workdir),
                                       '4')):
    assert time.time() < deadline
    time.sleep(0.05)
  killed = time.time()
  run.processes[1].kill()
  assert run.processes[0].wait(timeout=HEARTBEAT_TIMEOUT_S + 60) != 0
  print(f'Process 0 exited {time.time() - killed:.1f} s after the kill.')
  # Gloo reports the broken connection as reset or as closed, by timing.
  assert re.search('stopped sending heartbeats|Connection (reset|closed) by '
                   'peer', run.log(0)), run.log(0)[-3000:]
  last = checkpoint.create_manager(workdir, read_only=True).latest_step()
  assert last >= 4

  # Both restarted: they resume from the last checkpoint. Then SIGTERM to
  # both (a preemption): one checkpoint, at a step both agree on, and both
  # exit 0.
  run = _Run(tmp_path, 'restarted', f'--workdir={workdir}', *flags)
  for p in (0, 1):
    run.wait_for(rf'Resumed from \S+/checkpoints/{last} at step {last}\.', p)
  run.wait_for(rf'\] \[{last + 2}\] d_fake')
  for process in run.processes:
    process.send_signal(signal.SIGTERM)
  assert run.wait(timeout=120) == [0, 0]
  stopped = [int(re.search(r'Stopped at step (\d+) \(preemption\)',
                           run.log(p))[1]) for p in (0, 1)]
  assert stopped[0] == stopped[1] >= last + 2
  assert checkpoint.create_manager(
      workdir, read_only=True).latest_step() == stopped[0]
  assert 'd_loss/member_1' in metrics_file.read(workdir)
  config.num_train_steps = stopped[0]
  _assert_close(_load(workdir, stopped[0]),
                loop.train_and_evaluate(config, str(tmp_path / 'one')))
