"""W&B, MLflow and Neptune writers, offline, read back through each
client's own files or API; the choice of trackers checked at start."""

import glob
import importlib.util
import json
import os

import ml_collections
import numpy as np
import pytest

from dcgan_jax.output import metrics_file
from dcgan_jax.output import trackers
from dcgan_jax.run import config_schema
from dcgan_jax.run import loop
from tests.conftest import load_config


def _config(tmp_path, names):
  config = load_config('test')
  config.trackers = names
  config.tracking.update(
      wandb_mode='offline', neptune_mode='offline',
      mlflow_uri=f'sqlite:///{tmp_path / "mlflow.db"}',
      neptune_project='dcgan/test')
  return config


def test_unknown_or_missing_trackers_fail_at_start(tmp_path, monkeypatch):
  config = _config(tmp_path, 'mlflow,tensorbord')
  with pytest.raises(ValueError, match=r"'tensorbord' is not known; choose "
                     r"one of wandb, mlflow, neptune"):
    loop.train_and_evaluate(config, str(tmp_path / 'a'))
  find_spec = importlib.util.find_spec
  monkeypatch.setattr(importlib.util, 'find_spec',
                      lambda name, *a: None if name == 'wandb'
                      else find_spec(name, *a))
  config.trackers = 'wandb'
  with pytest.raises(ValueError, match=r"pip install 'dcgan_jax\[wandb\]'"):
    loop.train_and_evaluate(config, str(tmp_path / 'b'))
  assert not os.path.exists(tmp_path / 'a' / 'checkpoints')


def _neptune_operations(root):
  operations = []
  for path in glob.glob(os.path.join(root, '.neptune', '**', 'data-1.log'),
                        recursive=True):
    with open(path) as f:
      operations += [json.loads(line)['obj'] for line in f]
  return operations


def _wandb_records(path):
  """The protobuf records of a .wandb file: a 7-byte header, then LevelDB's
  log format (32 KiB blocks of chunks: crc32, length, type, data)."""
  with open(path, 'rb') as f:
    data = f.read()
  assert data[:4] == b':W&B'
  records, pending, block = [], b'', 32768
  position = 7
  while position + 7 <= len(data):
    left = block - position % block
    if left < 7:  # Block trailer.
      position += left
      continue
    length = int.from_bytes(data[position + 4:position + 6], 'little')
    kind = data[position + 6]
    chunk = data[position + 7:position + 7 + length]
    position += 7 + length
    if kind in (1, 2):  # Full, first.
      pending = chunk
    else:  # Middle, last.
      pending += chunk
    if kind in (1, 4):
      records.append(pending)
  return records


def _wandb_history(workdir):
  from wandb.proto import wandb_internal_pb2  # pylint: disable=g-import-not-at-top
  logged = {}
  for path in glob.glob(os.path.join(workdir, 'wandb', 'offline-run-*',
                                     'run-*.wandb')):
    for data in _wandb_records(path):
      record = wandb_internal_pb2.Record()
      record.ParseFromString(data)
      if record.WhichOneof('record_type') == 'history':
        items = {i.key or '/'.join(i.nested_key): json.loads(i.value_json)
                 for i in record.history.item}
        for key, value in items.items():
          logged.setdefault(key, []).append((items.get('_step'), value))
  return logged


@pytest.mark.slow
def test_a_run_logs_to_every_tracker(tmp_path, monkeypatch):
  monkeypatch.chdir(tmp_path)  # Neptune keeps offline runs in ./.neptune.
  config = _config(tmp_path, 'wandb,mlflow,neptune')
  config.num_train_steps = 4
  config.log_every_steps = 2
  config.sample_every_steps = 4
  workdir = str(tmp_path / 'run')
  loop.train_and_evaluate(config, workdir)
  jsonl = metrics_file.read(workdir)
  d_loss = jsonl['d_loss'][1]

  # MLflow: metrics, parameters and images, through its own client.
  from mlflow.tracking import MlflowClient  # pylint: disable=g-import-not-at-top
  client = MlflowClient(tracking_uri=config.tracking.mlflow_uri)
  experiment = client.get_experiment_by_name('dcgan_jax')
  (run,) = client.search_runs([experiment.experiment_id])
  assert run.info.run_name == 'run' and run.info.status == 'FINISHED'
  logged = client.get_metric_history(run.info.run_id, 'd_loss')
  assert [m.step for m in logged] == [2, 4]
  np.testing.assert_allclose([m.value for m in logged], d_loss, rtol=1e-6)
  assert run.data.params['optim.lr_g'] == '0.0002'
  artifacts = [a.path for a in client.list_artifacts(run.info.run_id,
                                                     'images')]
  assert any(a.startswith('images/samples+step+4+') and a.endswith('.png')
             for a in artifacts), artifacts

  # W&B: the offline run's history records.
  wandb_logged = _wandb_history(workdir)
  assert [step for step, _ in wandb_logged['d_loss']] == [2, 4]
  np.testing.assert_allclose([v for _, v in wandb_logged['d_loss']], d_loss,
                             rtol=1e-6)
  assert [step for step, _ in wandb_logged['samples/filenames']] == [0, 4]
  assert len(glob.glob(os.path.join(workdir, 'wandb', 'offline-run-*',
                                    'files', 'media', 'images',
                                    'samples_*.png'))) == 2

  # Neptune: the offline run's operations.
  operations = _neptune_operations(str(tmp_path))
  values = [(v['step'], v['value']) for op in operations
            if op['type'] == 'LogFloats' and op['path'] == ['d_loss']
            for v in op['values']]
  assert [step for step, _ in values] == [2, 4]
  np.testing.assert_allclose([v for _, v in values], d_loss, rtol=1e-6)
  assert any(op['path'] == ['samples'] for op in operations)
  assert any(op['path'][:2] == ['parameters', 'optim.lr_g']
             or op['path'] == ['parameters', 'optim', 'lr_g']
             for op in operations)


def test_a_resumed_run_continues_the_same_mlflow_run(tmp_path):
  config = _config(tmp_path, 'mlflow')
  workdir = str(tmp_path / 'run')
  for step in (2, 4):
    writer = trackers.create_writers(config, workdir)[0]
    writer.write_scalars(step, {'d_loss': float(step)})
    writer.close()
  from mlflow.tracking import MlflowClient  # pylint: disable=g-import-not-at-top
  client = MlflowClient(tracking_uri=config.tracking.mlflow_uri)
  (run,) = client.search_runs(
      [client.get_experiment_by_name('dcgan_jax').experiment_id])
  assert [m.step for m in client.get_metric_history(
      run.info.run_id, 'd_loss')] == [2, 4]
  # A saved config without the tracker keys resumes as one without trackers.
  old = ml_collections.ConfigDict(config.to_dict())
  del old['trackers']
  assert config_schema.upgrade(old.to_dict()).trackers == ''
