"""Evaluation: the offline classifier metric, FID/KID on the devices,
in-training evaluation with the best checkpoint, the CLIs and the plots."""

import glob
import json
import os
import subprocess
import sys

from flax import jax_utils
import jax
import numpy as np
from PIL import Image
import pytest
import scipy.ndimage

from dcgan_jax.data import idx_files
from dcgan_jax.data import labeled_data
from dcgan_jax import evaluate
from dcgan_jax import evaluation
from dcgan_jax.evaluation import classifier
from dcgan_jax.evaluation import distances
from dcgan_jax.evaluation import inception
from dcgan_jax.gan import forward
from dcgan_jax.gan import noise
from dcgan_jax.gan import train_states
from dcgan_jax.output import images
from dcgan_jax.output import metrics_file
from dcgan_jax.output import paths
from dcgan_jax.output import plots
from dcgan_jax.run import checkpoint
from dcgan_jax.run import loop
from dcgan_jax import sample
from tests.conftest import eval_config
from tests.conftest import load_config
from tests.conftest import REPO
from tests.evaluation import inception_reference


@pytest.mark.slow
@pytest.mark.skipif(
    not os.path.isdir(idx_files.DEBIAN_FASHION_MNIST_DIR),
    reason='Debian package dataset-fashion-mnist not installed (.ci/run '
    'installs it)')
def test_classifier_distance_orders_real_blurred_and_noise():
  directory = idx_files.DEBIAN_FASHION_MNIST_DIR
  images = idx_files.read_images(directory, 'train')[:12_000]
  labels = idx_files.read_labels(directory, 'train')[:12_000]
  test_images = idx_files.read_images(directory, 'test')
  test_labels = idx_files.read_labels(directory, 'test')
  config = load_config('fashion_mnist')
  config.eval.classifier_epochs = 3
  variables, accuracy = classifier.train(
      config, (images[:10_000], labels[:10_000]), (test_images, test_labels),
      10)
  assert accuracy > 0.7

  embed = jax.jit(classifier.features)
  real = np.asarray(embed(variables, images[10_000:]))  # Held out.
  held_out = test_images[:2000]
  blurred = scipy.ndimage.uniform_filter(
      held_out.astype(np.float32), size=(1, 3, 3, 1)).round().astype(np.uint8)
  uniform = np.random.default_rng(0).integers(0, 256, held_out.shape,
                                              np.uint8)
  fd = {name: distances.frechet_distance_of_features(
      real, np.asarray(embed(variables, x)))
        for name, x in (('held_out', held_out), ('blurred', blurred),
                        ('noise', uniform))}
  assert fd['held_out'] < fd['blurred'] < fd['noise']
  assert fd['blurred'] > 3 * fd['held_out']


def test_labeled_folder_splits_by_class(tmp_path):
  config = eval_config(tmp_path)
  train_images, train_labels, num_classes = labeled_data.load_labeled(
      config, 'train')
  test_images, test_labels, _ = labeled_data.load_labeled(config, 'test')
  assert num_classes == 2
  assert train_images.shape == (72, 28, 28, 1) and len(test_images) == 8
  assert np.bincount(train_labels).tolist() == [36, 36]
  assert np.bincount(test_labels).tolist() == [4, 4]
  # Labels follow the folder: class_0 holds the dark images.
  assert train_images[train_labels == 0].max() < 90 <= (
      train_images[train_labels == 1].min() + 70)


@pytest.mark.slow
def test_training_evaluates_keeps_the_best_and_plots(tmp_path):
  config = eval_config(tmp_path)
  # A model other than the default, with dropout in D: evaluation, the
  # best slot and the CLI rebuild it from the saved config.
  config.model.update(name='keras_dcgan', d_norm='none')
  workdir = str(tmp_path / 'run')
  # The classifier comes from its own command, and the run reuses it.
  result = subprocess.run(
      [sys.executable, '-m', 'dcgan_jax.train_classifier',
       '--config=configs/test.py', '--config.data.name=folder',
       f'--config.data.path={config.data.path}',
       f'--config.eval.cache_dir={config.eval.cache_dir}',
       '--config.eval.classifier_epochs=30'],
      cwd=REPO, capture_output=True, text=True, timeout=600,
      env=dict(os.environ, JAX_PLATFORMS='cpu'))
  assert result.returncode == 0, result.stderr[-3000:]
  assert 'test accuracy 1.0000 on 8 images' in result.stdout
  path = classifier.default_path(config)
  mtime = os.path.getmtime(path)

  g_state, _ = loop.train_and_evaluate(config, workdir)
  assert os.path.getmtime(path) == mtime  # Reused, not retrained.

  logged = metrics_file.read(workdir)
  for name in ('classifier_fd', 'classifier_kid', 'classifier_kid_std'):
    assert logged[name][0].tolist() == [2, 4], name
    assert np.all(np.isfinite(logged[name][1]))
  assert logged['d_loss'][0].tolist() == [2, 4]
  # One real-feature cache file, computed once for both evaluations.
  assert len(glob.glob(os.path.join(config.eval.cache_dir,
                                    'real_features_*.npz'))) == 1

  # The best slot holds the step with the lower classifier_fd.
  steps_logged, values = logged['classifier_fd']
  best_step = int(steps_logged[np.argmin(values)])
  best = checkpoint.create_manager(workdir, read_only=True,
                                   best_metric='classifier_fd')
  assert best.all_steps() == [best_step]

  # Evaluating a checkpoint again gives the logged values: same z, same G.
  step, results = evaluate.evaluate(workdir, step=4)
  assert step == 4
  assert results['classifier_fd'] == pytest.approx(values[-1], rel=1e-5)
  step, results = evaluate.evaluate(workdir, best=True)
  assert step == best_step
  assert results['classifier_fd'] == pytest.approx(values.min(), rel=1e-5)
  del g_state

  for name in ('training.png', 'metrics.png', 'samples.gif',
               'real_vs_fake.png'):
    assert os.path.getsize(os.path.join(workdir, 'plots', name)) > 1000, name
  # The real half of real_vs_fake: a grid of the first batch of real images
  # (8 of the folder's dark and bright images, 28 px, padding 2).
  with Image.open(plots.real_images_path(workdir)) as real:
    assert real.size == (3 * 30 + 2, 3 * 30 + 2)
    assert np.asarray(real).max() >= 160
  with Image.open(os.path.join(workdir, 'plots', 'samples.gif')) as gif:
    assert gif.n_frames == 3  # Grids at steps 0, 2 and 4.

  result = subprocess.run(
      [sys.executable, '-m', 'dcgan_jax.evaluate', f'--workdir={workdir}',
       '--best', '--metrics=classifier_fd'],
      cwd=REPO, capture_output=True, text=True, timeout=600,
      env=dict(os.environ, JAX_PLATFORMS='cpu'))
  assert result.returncode == 0, result.stderr[-3000:]
  with open(os.path.join(workdir, 'eval', f'step_{best_step}.json')) as f:
    record = json.load(f)
  assert record['step'] == best_step
  assert record['classifier_fd'] == pytest.approx(values.min(), rel=1e-5)
  assert json.loads(result.stdout) == record


def test_bad_eval_configs_fail_before_training(tmp_path):
  config = eval_config(tmp_path, metrics='fid')
  with pytest.raises(ValueError, match='eval.inception_weights'):
    loop.train_and_evaluate(config, str(tmp_path / 'a'))
  config.eval.metrics = 'fid,precison'
  with pytest.raises(ValueError, match=r"'precison' is not known"):
    loop.train_and_evaluate(config, str(tmp_path / 'b'))
  config.eval.metrics = 'fid'
  config.eval.inception_weights = str(tmp_path / 'missing.npz')
  with pytest.raises(FileNotFoundError, match='missing.npz'):
    loop.train_and_evaluate(config, str(tmp_path / 'c'))
  config.eval.metrics = 'classifier_fd'
  config.eval.min_classifier_accuracy = 1.01
  with pytest.raises(ValueError, match=r'test accuracy 1.0000, below config'):
    loop.train_and_evaluate(config, str(tmp_path / 'd'))
  # The refused classifier stays cached with its accuracy; data it was not
  # trained on is refused too.
  config.eval.min_classifier_accuracy = 0.9
  config.data.image_size = 32
  config.eval.classifier_path = str(classifier.default_path(
      eval_config(tmp_path)))
  with pytest.raises(ValueError, match='was trained on'):
    loop.train_and_evaluate(config, str(tmp_path / 'e'))
  for name in 'abcde':
    assert not os.path.exists(tmp_path / name / 'checkpoints')


def _inception_weights(tmp_path):
  """Random weights with pytorch-fid's classifier layer."""
  state_dict = inception_reference.random_state_dict()
  rng = np.random.default_rng(2)
  state_dict['fc.weight'] = rng.normal(0, 0.05, (1008, 2048)).astype(
      np.float32)
  state_dict['fc.bias'] = np.zeros(1008, np.float32)
  path = str(tmp_path / 'inception.npz')
  inception.save_state_dict(path, state_dict)
  return path


@pytest.mark.slow
def test_inception_metrics_on_the_devices_match_host_features(tmp_path):
  config = load_config('test')
  config.eval.metrics = ('fid,kid,precision,recall,density,coverage,'
                         'inception_score')
  config.eval.inception_weights = _inception_weights(tmp_path)
  config.eval.num_samples = 10  # Not a multiple of the 4-device batches.
  config.eval.batch_size = 8
  config.eval.kid_subset_size = 5
  config.eval.is_splits = 2
  config.eval.cache_dir = str(tmp_path / 'cache')
  evaluator = evaluation.Evaluator(config)
  g_state, _ = train_states.create_train_states(config, jax.random.key(0))
  results = evaluator(jax_utils.replicate(g_state))

  fake, logits = evaluator.features.fake('inception',
                                         jax_utils.replicate(g_state))
  assert fake.shape == (10, inception.FEATURE_DIM)
  assert logits.shape == (10, inception.NUM_CLASSES)
  # The same images generated on the host, rounded to uint8 as a PNG holds
  # them, in order, through the network as the real images go (floats in
  # [-1, 1], the program already compiled for them).
  z = noise.image_z(config.eval.seed, np.arange(10), config.model.nz)
  pixels = images.to_uint8(forward.generate(g_state, z))
  batches = np.concatenate([pixels.astype(np.float32) / 127.5 - 1,
                            np.zeros((6, 28, 28, 1), np.float32)])
  embed, _, replicated = evaluator.features._functions('inception')  # pylint: disable=protected-access
  expected = np.concatenate([
      np.asarray(embed(replicated, batch.reshape(4, 2, 28, 28, 1))[0]
                 ).reshape(8, -1) for batch in np.split(batches, 2)])[:10]
  np.testing.assert_allclose(fake, expected, rtol=1e-4,
                             atol=1e-4 * np.abs(expected).max())
  variables = inception.load_variables(config.eval.inception_weights)
  np.testing.assert_allclose(logits, inception.logits(variables, fake),
                             rtol=1e-4, atol=1e-4)
  real = evaluator.features.real('inception')
  assert results['fid'] == pytest.approx(
      distances.frechet_distance_of_features(real, fake), rel=1e-6)
  assert results['kid'] == pytest.approx(
      distances.kernel_inception_distance(real, fake, 100, 5, 0)[0],
      rel=1e-6)
  manifold = distances.precision_recall_density_coverage(real, fake, 3, 5)
  for name, value in manifold.items():
    assert results[name] == value, name
  assert (results['inception_score'], results['inception_score_std']) == (
      pytest.approx(distances.inception_score(logits, 2), rel=1e-6))

  # Without the classifier layer the Inception Score is refused at start.
  weights = str(tmp_path / 'no_fc.npz')
  inception.save_state_dict(weights, inception_reference.random_state_dict())
  config.eval.inception_weights = weights
  with pytest.raises(ValueError, match=r'no_fc.npz.*no classifier layer'):
    evaluation.Evaluator(config)
  config.eval.metrics = 'fid'
  config.eval.resize = 'area'
  with pytest.raises(ValueError, match=r"eval.resize='area'.*tensorflow"):
    evaluation.Evaluator(config)


def test_higher_is_better_metrics_keep_the_highest():
  assert evaluation.best_mode('classifier_fd') == 'min'
  assert evaluation.best_mode('kid') == 'min'
  for name in ('precision', 'classifier_recall', 'density',
               'classifier_coverage', 'inception_score'):
    assert evaluation.best_mode(name) == 'max', name


def test_images_and_statistics_files_score_as_the_checkpoint(tmp_path):
  config = eval_config(
      tmp_path, metrics='classifier_fd,classifier_kid,classifier_precision,'
      'classifier_recall,classifier_density,classifier_coverage')
  config.eval.num_samples = 20
  config.eval.pr_k, config.eval.dc_k = 2, 3
  workdir = str(tmp_path / 'run')
  g_state, d_state = train_states.create_train_states(config, jax.random.key(1))
  manager = checkpoint.create_manager(workdir)
  checkpoint.save(manager, 7, g_state, d_state, jax.random.key(0), config)
  checkpoint.wait(manager)
  step, expected = evaluate.evaluate(workdir)
  assert step == 7 and set(expected) == {
      'classifier_fd', 'classifier_kid', 'classifier_kid_std',
      'classifier_precision', 'classifier_recall', 'classifier_density',
      'classifier_coverage'}

  # The checkpoint's evaluation images, as sample.py would write them.
  z = noise.image_z(config.eval.seed, np.arange(20), config.model.nz)
  pixels = np.asarray(sample.generate_uint8(g_state, z))
  sample.write_images(pixels, str(tmp_path / 'fake.npz'), grid=False)
  sample.write_images(pixels, str(tmp_path / 'fake'), grid=False)
  for source in ('fake.npz', 'fake'):
    results = evaluate.score_images(config, str(tmp_path / source))
    assert results.pop('num_images') == 20
    assert results.pop('images') == str(tmp_path / source)
    assert results == pytest.approx(expected, rel=1e-5, abs=1e-9), source

  # A statistics file of the dataset gives the same numbers without
  # reading the dataset (nor its cached features).
  stats = str(tmp_path / 'stats.npz')
  meta = evaluate.save_stats(config, stats)
  space = meta['spaces']['classifier']
  assert space['num_images'] == 20 and space['extractor'] == 'classifier'
  arrays = np.load(stats)
  assert arrays['classifier/features'].shape == (20, classifier.FEATURE_DIM)
  np.testing.assert_allclose(
      arrays['classifier/mu'], arrays['classifier/features'].mean(0),
      rtol=1e-6)
  cached = glob.glob(os.path.join(config.eval.cache_dir, 'real_features_*'))
  assert len(cached) == 1
  os.remove(cached[0])
  results = evaluate.score_images(config, str(tmp_path / 'fake.npz'),
                                  reference_stats=stats)
  assert {k: results[k] for k in expected} == pytest.approx(
      expected, rel=1e-5, abs=1e-9)
  assert not glob.glob(os.path.join(config.eval.cache_dir, 'real_features_*'))

  # A file made with other weights, or lacking a space, is refused.
  record = dict(arrays)
  spaces = {'classifier': {**space, 'weights': '0123abcd'}}
  record['meta'] = paths.json_to_array({'spaces': spaces})
  np.savez(tmp_path / 'other.npz', **record)
  with pytest.raises(ValueError, match=r"other.npz holds classifier "
                     r"features made with another weights '0123abcd'"):
    evaluate.score_images(config, str(tmp_path / 'fake.npz'),
                          reference_stats=str(tmp_path / 'other.npz'))
  config.eval.metrics = 'fid'
  config.eval.inception_weights = _inception_weights(tmp_path)
  with pytest.raises(ValueError, match=r'holds no inception features'):
    evaluation.Evaluator(config).features._features_from_stats(stats, 'inception')  # pylint: disable=protected-access
  spaces = {'inception': {'extractor': 'inception', 'resize': 'tensorflow',
                          'weights': evaluation.Evaluator(config).features.provenance(
                              'inception')['weights']}}
  record['meta'] = paths.json_to_array({'spaces': spaces})
  np.savez(tmp_path / 'tf.npz', **record)
  with pytest.raises(ValueError, match=r"another resize 'tensorflow' \(this "
                     r"evaluation: 'pytorch'\)"):
    evaluation.Evaluator(config).features._features_from_stats(  # pylint: disable=protected-access
        str(tmp_path / 'tf.npz'), 'inception')

  # The command line: images against the statistics file, same JSON.
  result = subprocess.run(
      [sys.executable, '-m', 'dcgan_jax.evaluate', '--config=configs/test.py',
       f'--images={tmp_path / "fake"}', f'--stats={stats}',
       f'--metrics={",".join(m for m in expected if "_std" not in m)}',
       f'--cache_dir={tmp_path / "cache"}', '--config.eval.pr_k=2',
       '--config.eval.dc_k=3', '--config.eval.kid_subsets=5',
       '--config.eval.kid_subset_size=16', '--config.data.name=folder',
       f'--config.data.path={tmp_path / "images"}',
       f'--config.eval.classifier_path={classifier.default_path(eval_config(tmp_path))}'],
      cwd=REPO, capture_output=True, text=True, timeout=600,
      env=dict(os.environ, JAX_PLATFORMS='cpu'))
  assert result.returncode == 0, result.stderr[-3000:]
  printed = json.loads(result.stdout)
  assert {k: printed[k] for k in expected} == pytest.approx(
      expected, rel=1e-5, abs=1e-9)


def test_history_keeps_the_latest_value_per_step(tmp_path):
  writer = metrics_file.JsonlWriter(str(tmp_path))
  writer.write_scalars(1, {'d_loss': 1.0})
  writer.write_scalars(2, {'d_loss': 2.0, 'fid': 9.0})
  writer.write_scalars(2, {'d_loss': 2.5})  # A resumed run's step 2.
  writer.close()
  with open(tmp_path / metrics_file.FILENAME, 'a') as f:
    f.write('{"step": 3, "d_lo')  # Killed mid-line.
  logged = metrics_file.read(str(tmp_path))
  assert logged['d_loss'][0].tolist() == [1, 2]
  assert logged['d_loss'][1].tolist() == [1.0, 2.5]
  assert logged['fid'][1].tolist() == [9.0]


@pytest.mark.slow
def test_ema_run_evaluates_the_averages_and_the_trained_weights(tmp_path):
  config = eval_config(tmp_path, metrics='classifier_fd')
  config.model.update(name='mlp', d_norm='none')
  config.ema_decay = 0.5
  config.eval.raw_weights = True
  workdir = str(tmp_path / 'run')
  g_state, _ = loop.train_and_evaluate(config, workdir)
  logged = metrics_file.read(workdir)
  ema, raw = logged['classifier_fd'][1], logged['classifier_fd_raw'][1]
  assert logged['classifier_fd_raw'][0].tolist() == [2, 4]
  assert np.all(ema != raw)
  # The best slot is chosen by the averaged weights' value.
  best = checkpoint.create_manager(workdir, read_only=True,
                                   best_metric='classifier_fd')
  assert best.all_steps() == [2 + 2 * int(np.argmin(ema))]
  # The checkpoint's averaged weights give the logged value again.
  _, results = evaluate.evaluate(workdir, step=4)
  assert results['classifier_fd'] == pytest.approx(ema[-1], rel=1e-5)
  # G's BatchNorm statistics were computed for the averaged weights before
  # the save, as loading computes them again; not the trained weights'.
  manager = checkpoint.create_manager(workdir, read_only=True)
  saved, _, _ = checkpoint.restore(
      manager, 4, *train_states.create_train_states(config, jax.random.key(0)),
      jax.random.key(0))
  _, _, loaded = checkpoint.load_generator(workdir, step=4)
  for s, l, trained in zip(*(jax.tree.leaves(x) for x in (
      saved.ema_batch_stats, loaded.ema_batch_stats, g_state.batch_stats))):
    np.testing.assert_allclose(s, l, rtol=1e-5, atol=1e-6)
    assert not np.allclose(s, trained)


def test_plots_draw_whatever_the_run_logged(tmp_path):
  writer = metrics_file.JsonlWriter(str(tmp_path))
  for step in (1, 2, 3):
    writer.write_scalars(step, {
        name: float(step) for name in (
            'd_loss', 'g_loss', 'critic_real', 'critic_fake',
            'critic_fake_after', 'wasserstein', 'gradient_penalty',
            'grad_norm', 'r1_penalty', 'ada_p', 'aux_loss', 'epoch',
            'steps_per_sec',
            'classifier_fd', 'classifier_fd_raw', 'classifier_kid_raw',
            'classifier_kid_raw_std')})
  writer.close()
  series = metrics_file.read(str(tmp_path))
  assert [title for title, _ in plots._training_panels(series)] == [  # pylint: disable=protected-access
      'Losses', 'Critic outputs', 'Wasserstein estimate', 'Gradient penalty',
      'R1 / R2 penalties', 'ADA', 'aux_loss']
  assert plots._metric_names(series) == [  # pylint: disable=protected-access
      'classifier_fd', 'classifier_fd_raw', 'classifier_kid_raw']
  written = plots.write_plots(str(tmp_path))
  assert [os.path.basename(p) for p in written] == ['training.png',
                                                    'metrics.png']
