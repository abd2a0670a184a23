"""End to end: every config trains a step under mock TFDS data, the CLIs run,
and the README's research snippet runs as written."""

import functools
import glob
import importlib
import os
import re
import subprocess
import sys

from absl import flags
import jax
import numpy as np
import pytest
from PIL import Image
import tensorflow_datasets as tfds

from dcgan_jax.gan import train_states
from dcgan_jax.run import checkpoint
from dcgan_jax.run import config_schema
from dcgan_jax.run import loop
from dcgan_jax import sample
from tests.conftest import load_config
from tests.conftest import write_image_folder

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIGS = sorted(os.path.basename(p)[:-3]
                 for p in glob.glob(os.path.join(REPO, 'configs', '*.py'))
                 if not p.endswith('__init__.py'))


def test_every_config_is_covered():
  assert set(CONFIGS) == {'default', 'celeba', 'mnist', 'fashion_mnist',
                          'kmnist', 'cifar10', 'mnist_wgan_gp',
                          'mnist_unrolled', 'kmnist_mlp',
                          'fashion_mnist_keras', 'mnist_upsample',
                          'sngan_cifar10', 'small_data', 'test'}


REQUIRED_KEYS = (
    'seed', 'batch_size', 'num_train_steps', 'num_epochs', 'data.name',
    'data.path', 'data.image_size', 'data.channels', 'model.nz', 'model.ngf',
    'model.ndf', 'optim.lr_g', 'optim.lr_d', 'optim.b1', 'optim.b2',
    'log_every_steps', 'sample_every_steps', 'checkpoint_every_steps')


@pytest.mark.parametrize('name', CONFIGS)
def test_config_has_every_documented_key(name):
  config = load_config(name)
  for key in REQUIRED_KEYS:
    value = config
    for part in key.split('.'):
      assert part in value, f'configs/{name}.py lacks {key}'
      value = value[part]
  # The DCGAN recipe's Adam, except where a config follows another recipe.
  if config.optim.name == 'rmsprop':  # Keras's defaults.
    assert (config.optim.lr_g, config.optim.rho, config.optim.eps) == (
        1e-3, 0.9, 1e-7)
  else:
    expected = (1e-4, 0.0, 0.9) if name == 'mnist_wgan_gp' else (2e-4, 0.5,
                                                                 0.999)
    assert (config.optim.lr_g, config.optim.b1, config.optim.b2) == expected
  config_schema.validate(config)


# The configs whose programs compile longest run with the slow tests.
SLOW_CONFIGS = ('celeba', 'mnist_unrolled', 'small_data', 'sngan_cifar10')


@pytest.mark.parametrize('name', [
    pytest.param(name, marks=pytest.mark.slow) if name in SLOW_CONFIGS
    else name for name in CONFIGS])
def test_one_step_run_then_sample(name, tmp_path):
  config = load_config(name)
  # The config's data shape and recipe as they are, networks 16 wide (full
  # widths: models_test.py); a batch the 4 test devices divide, one step.
  config.model.ngf = config.model.ndf = 16
  config.batch_size = 8
  config.num_train_steps = 1
  config.data.shuffle_buffer = 16
  config.grid_images = 4
  config.eval.metrics = ''  # Evaluation: tests/evaluation_test.py.
  if config.data.name == 'folder':
    config.data.path = str(tmp_path / 'images')
    write_image_folder(config.data.path, count=16)
  workdir = str(tmp_path / 'run')
  with tfds.testing.mock_data(num_examples=16):
    g_state, _ = loop.train_and_evaluate(config, workdir)
  assert int(g_state.step) == 1
  manager = checkpoint.create_manager(workdir, read_only=True)
  assert manager.all_steps() == [1]
  saved = checkpoint.restore_config(manager, 1)
  assert saved.data.name == config.data.name
  size, channels = config.data.image_size, config.data.channels
  assert os.path.exists(os.path.join(workdir, 'samples', '0000001.png'))
  assert glob.glob(os.path.join(workdir, 'events.out.tfevents.*'))

  images = sample.generate_images(workdir, num=3)
  assert images.shape == (3, size, size, channels)
  assert images.dtype == np.uint8


def test_one_step_run_on_an_image_folder(tmp_path):
  write_image_folder(str(tmp_path / 'images'), count=16)
  config = load_config('test')
  config.data.name = 'folder'
  config.data.path = str(tmp_path / 'images')
  config.data.image_size, config.data.channels = 32, 3
  config.num_train_steps = 1
  workdir = str(tmp_path / 'run')
  g_state, _ = loop.train_and_evaluate(config, workdir)
  assert int(g_state.step) == 1
  assert sample.generate_images(workdir, num=2).shape == (2, 32, 32, 3)


def _run(module, *args):
  env = dict(os.environ, JAX_PLATFORMS='cpu')
  result = subprocess.run([sys.executable, '-m', module, *args], cwd=REPO,
                          env=env, capture_output=True, text=True,
                          timeout=600)
  return result


def test_cli_train_and_sample(tmp_path):
  workdir = str(tmp_path / 'run')
  result = _run('dcgan_jax.main', '--config=configs/test.py',
                f'--workdir={workdir}', '--dry_run')
  assert result.returncode == 0, result.stderr[-3000:]
  assert re.match(r'Process 0 of 1: (\d) local devices of \1 ',
                  result.stdout), result.stdout
  assert not os.path.exists(workdir)  # A dry run trains nothing.

  result = _run('dcgan_jax.main', '--config=configs/test.py',
                f'--workdir={workdir}')
  assert result.returncode == 0, result.stderr[-3000:]
  assert 'd_real=' in result.stderr and 'd_fake_after=' in result.stderr
  assert 'epoch=' in result.stderr
  assert 'steps/s' in result.stderr and 'ETA' in result.stderr
  # The program restarted itself with glibc's huge-page tunable.
  assert 'GLIBC_TUNABLES=glibc.malloc.hugetlb=1' in result.stderr
  assert 'Generator' in result.stderr and 'Discriminator' in result.stderr
  assert sorted(os.listdir(os.path.join(workdir, 'samples'))) == [
      '0000000.png', '0000002.png', '0000004.png']

  npz = str(tmp_path / 'out.npz')
  result = _run('dcgan_jax.sample', f'--workdir={workdir}', '--num=5',
                f'--out={npz}')
  assert result.returncode == 0, result.stderr[-3000:]
  with np.load(npz) as data:
    assert data['images'].shape == (5, 28, 28, 1)
    assert data['images'].dtype == np.uint8

  samples = sample.generate_images(workdir, 16)
  pngs = str(tmp_path / 'pngs')
  sample.write_images(samples[:3], pngs, grid=False)
  assert sorted(os.listdir(pngs)) == ['000000.png', '000001.png',
                                      '000002.png']
  assert Image.open(os.path.join(pngs, '000000.png')).size == (28, 28)
  grid = str(tmp_path / 'grid.png')
  sample.write_images(samples, grid, grid=True)
  assert Image.open(grid).size == (4 * 30 + 2, 4 * 30 + 2)


def test_sample_without_checkpoints_fails_clearly(tmp_path):
  with pytest.raises(FileNotFoundError, match='No checkpoints in'):
    sample.generate_images(str(tmp_path), 2)


def test_batch_not_divisible_fails_before_training(tmp_path):
  config = load_config('test')
  config.batch_size = 6
  with pytest.raises(ValueError, match=r'batch_size=6 .* devices \(4\)'):
    loop.train_and_evaluate(config, str(tmp_path))
  assert not os.path.exists(os.path.join(tmp_path, 'checkpoints'))


def test_readme_snippet_runs_as_written():
  with open(os.path.join(REPO, 'README.md')) as f:
    readme = f.read()
  section = readme.split('## Using the steps in your own code', 1)[1]
  section = section.split('\n## ', 1)[0]
  code = '\n'.join(re.findall(r'```python\n(.*?)```', section, re.S))
  exec(compile(code, 'README.md', 'exec'), {'__name__': 'readme'})  # pylint: disable=exec-used


def test_gan_models_sampling_and_evaluation_import_without_tensorflow():
  """Every module of the gan/, models/ and cpu/ layers, the public API, and
  what sampling and evaluation need; what the training program imports
  before it restarts itself does not import jax either."""
  code = ('import importlib, pkgutil, sys\n'
          'import dcgan_jax.cpu.runtime\n'
          'assert "jax" not in sys.modules, "jax was imported"\n'
          'import dcgan_jax, dcgan_jax.gan, dcgan_jax.models, dcgan_jax.cpu\n'
          'for name in dcgan_jax.__all__:\n'
          '  getattr(dcgan_jax, name)\n'
          'for package in (dcgan_jax.gan, dcgan_jax.models, dcgan_jax.cpu):\n'
          '  for module in pkgutil.iter_modules(package.__path__):\n'
          '    importlib.import_module(f"{package.__name__}.{module.name}")\n'
          'import dcgan_jax.run.checkpoint, dcgan_jax.output.images\n'
          'import dcgan_jax.sample, dcgan_jax.evaluation\n'
          'import dcgan_jax.run.hosts, dcgan_jax.output.paths\n'
          'assert "tensorflow" not in sys.modules, "tensorflow was imported"\n')
  result = subprocess.run([sys.executable, '-c', code], cwd=REPO,
                          capture_output=True, text=True, timeout=300)
  assert result.returncode == 0, result.stderr[-3000:]


@pytest.mark.parametrize('recipe', [
    {},
    # Every other piece of state at once: the critic's updates, EMA,
    # spectral normalisation's vectors, D's dropout masks (from the step,
    # like z) and ADA's p (raised: D's r_t stays above this target) and
    # sums, resumed between two adjustments.
    pytest.param({'objective': 'wgan_gp', 'n_critic': 2, 'ema_decay': 0.9,
                  'model': {'name': 'keras_dcgan', 'd_norm': 'spectral',
                            'g_spectral': True},
                  'optim': {'name': 'rmsprop', 'lr_g': 1e-3, 'lr_d': 1e-3},
                  'd_joint_batch': True,
                  'augment': {'ada': True, 'ada_interval': 4,
                              'ada_kimg': 0.2, 'ada_target': -0.99}},
                 marks=pytest.mark.slow)])
def test_resumed_run_ends_where_an_uninterrupted_run_does(tmp_path, recipe):
  """Same batches, same z, same optimizer state: bit-identical parameters."""
  write_image_folder(str(tmp_path / 'images'), count=24)
  config = load_config('test')
  config.update(recipe)
  config.data.name = 'folder'
  config.data.path = str(tmp_path / 'images')
  config.data.random_flip = True
  config.num_train_steps = 6
  config.checkpoint_every_steps = 3
  straight = loop.train_and_evaluate(config, str(tmp_path / 'straight'))
  config.num_train_steps = 3
  loop.train_and_evaluate(config, str(tmp_path / 'resumed'))
  config.num_train_steps = 6
  resumed = loop.train_and_evaluate(config, str(tmp_path / 'resumed'))
  for a, b in zip(jax.tree.leaves(straight), jax.tree.leaves(resumed),
                  strict=True):
    np.testing.assert_array_equal(a, b)
  if config.augment.ada:
    assert 0 < float(resumed[1].ada.p) < 1


def test_a_resumed_run_reuses_the_compiled_step_of_a_fresh_one(tmp_path):
  """Restored states have the types of new ones: a weakly typed new step
  count made every resumed run compile its step a second time."""
  config = load_config('test')
  states = train_states.create_train_states(config, jax.random.key(0))
  manager = checkpoint.create_manager(str(tmp_path))
  checkpoint.save(manager, 1, *states, jax.random.key(0), config)
  checkpoint.wait(manager)
  restored = checkpoint.restore(manager, 1, *states, jax.random.key(0))[:2]
  types = functools.partial(jax.tree.map, lambda x: jax.typeof(
      jax.device_put(x)).update(sharding=None))
  assert types(restored) == types(states)


def test_command_line_modules_import_together():
  # Each defines its flags only when run as a program.
  for name in ('main', 'sample', 'evaluate', 'explore', 'plots',
               'train_classifier', 'convert_inception', 'sweep', 'compare'):
    importlib.import_module(f'dcgan_jax.{name}')
  assert not {'workdir', 'out', 'images', 'config'} & set(flags.FLAGS)
