"""The path layer: atomic writes, and a run's files on a bucket (gs://), on a
fake file system (etils' mock_epath over a local folder; no network)."""

import contextlib
import os
import shutil
from unittest import mock

import jax
import numpy as np
import pytest

from etils.epath import gpath
from etils.epath import testing as epath_testing
from dcgan_jax.data import input_pipeline
from dcgan_jax import evaluation
from dcgan_jax.evaluation import classifier
from dcgan_jax.output import images
from dcgan_jax.output import metrics_file
from dcgan_jax.output import paths
from dcgan_jax.output import plots
from dcgan_jax.run import checkpoint
from dcgan_jax.run import loop
from tests.conftest import eval_config
from tests.conftest import write_image_folder

BUCKET = 'gs://test-bucket'


@contextlib.contextmanager
def fake_bucket(root):
  """gs://test-bucket/... is the local folder root/... for every epath."""
  root = str(root)
  os.makedirs(root, exist_ok=True)

  def local(p):
    p = os.fspath(p)
    return root + p[len(BUCKET):] if p.startswith(BUCKET) else p

  def remote(p):
    p = os.fspath(p)
    return BUCKET + p[len(root):] if p.startswith(root) else p

  def on_local(original, p, *args, **kwargs):
    return original(local(p), *args, **kwargs)

  def two_paths(original, p, dst, *args, **kwargs):
    return original(local(p), local(dst), *args, **kwargs)

  def glob(original, pattern):
    return [remote(p) for p in original(local(pattern))]

  def walk(original, top, **kwargs):
    for directory, dirs, files in original(local(top), **kwargs):
      yield remote(directory), dirs, files

  # With TensorFlow importable, epath sends gs:// to TF's file system
  # whatever mock_epath says; make it use the mocked backend instead.
  with mock.patch.object(gpath, '_is_tf_installed', lambda: False), \
      epath_testing.mock_epath(
      open=on_local, exists=on_local, isdir=on_local, listdir=on_local,
      makedirs=on_local, mkdir=on_local, remove=on_local, rmtree=on_local,
      stat=on_local, rename=two_paths, replace=two_paths, copy=two_paths,
      glob=glob, walk=walk):
    yield


def test_atomic_write_keeps_the_old_file_on_error(tmp_path):
  target = tmp_path / 'sub' / 'file.txt'
  with paths.atomic_write(target, 'w') as f:
    f.write('old')
  with pytest.raises(RuntimeError), paths.atomic_write(target, 'w') as f:
    f.write('half of the new')
    raise RuntimeError('crash while writing')
  assert target.read_text() == 'old'
  assert os.listdir(tmp_path / 'sub') == ['file.txt']  # No temporary left.


def test_paths_are_local_or_buckets(monkeypatch, tmp_path):
  monkeypatch.chdir(tmp_path)
  assert str(paths.path('runs/x')) == str(tmp_path / 'runs' / 'x')
  assert str(paths.path('~/x')) == os.path.expanduser('~/x')
  assert str(paths.path('gs://bucket/runs/x')) == 'gs://bucket/runs/x'
  assert paths.is_local('runs/x') and not paths.is_local('gs://bucket/x')


def test_a_runs_files_on_a_bucket(tmp_path, monkeypatch):
  """Workdir, samples, history, plots, checkpoint move-aside, folder data,
  the classifier and the feature cache, all on gs:// (a fake one)."""
  monkeypatch.chdir(tmp_path)
  root = tmp_path / 'bucket'
  config = eval_config(tmp_path)  # Writes a labeled folder to images/.
  local_batches, _ = input_pipeline.create_dataset(config)
  write_image_folder(str(root / 'unlabeled'), count=8)
  with fake_bucket(root):
    shutil.copytree(config.data.path, root / 'images')
    config.data.path = f'{BUCKET}/images'
    config.eval.cache_dir = f'{BUCKET}/cache'
    workdir = f'{BUCKET}/run'

    loop._check_writable(workdir)  # pylint: disable=protected-access
    grid = images.make_grid(np.zeros((4, 8, 8, 1), np.uint8))
    for step in (0, 2):
      images.save_png(paths.path(workdir) / 'samples' / f'{step:07d}.png',
                      grid)
    writer = metrics_file.JsonlWriter(workdir)
    writer.write_scalars(2, {'d_loss': 1.5, 'classifier_fd': 9.0})
    writer.close()
    assert metrics_file.read(workdir)['d_loss'][1].tolist() == [1.5]
    assert len(plots.write_plots(workdir)) == 3

    step_dir = checkpoint.checkpoint_dir(workdir) / '4'
    step_dir.mkdir(parents=True)
    (step_dir / 'data').write_text('damaged')

    class Manager:  # What _move_aside uses of an Orbax manager.
      directory = checkpoint.checkpoint_dir(workdir)
      reload = staticmethod(lambda: None)
    checkpoint._move_aside(  # pylint: disable=protected-access
        Manager, workdir, 4, OSError('truncated'))

    # The same batches from the bucket as from the local folder.
    bucket_batches, num_examples = input_pipeline.create_dataset(config)
    assert num_examples == 80
    for _ in range(3):
      np.testing.assert_array_equal(next(bucket_batches),
                                    next(local_batches))

    evaluator = evaluation.Evaluator(config)  # Trains the classifier.
    features = evaluator.features.real('classifier')
    again = evaluation.Evaluator(config).features.real('classifier')
    np.testing.assert_array_equal(features, again)
    variables, meta = classifier.load(classifier.default_path(config))
    assert meta['data.path'] == f'{BUCKET}/images'
    assert jax.tree.structure(variables) == jax.tree.structure(
        evaluator.spaces['classifier'][1])

  # Everything landed in the bucket's folder, nothing beside it.
  assert sorted(os.listdir(root / 'run')) == [
      'checkpoints', 'checkpoints_unreadable', metrics_file.FILENAME, 'plots',
      'samples']
  assert sorted(os.listdir(root / 'run' / 'samples')) == [
      '0000000.png', '0000002.png']
  assert os.listdir(root / 'run' / 'checkpoints_unreadable') == ['4']
  assert os.listdir(root / 'run' / 'checkpoints') == []
  assert sorted(f.split('_')[0] for f in os.listdir(root / 'cache')) == [
      'classifier', 'real']
  assert not os.path.exists(tmp_path / 'gs:')
