"""The config schema: validation before anything runs, unknown keys named
with the closest known ones, old configs upgraded, and the commands' one-
sentence errors."""

import os
import subprocess
import sys

from absl import flags as absl_flags
import ml_collections
from ml_collections import config_flags
import pytest

from dcgan_jax import choices
from dcgan_jax.run import cli
from dcgan_jax.run import config_schema
from tests.conftest import load_config
from tests.conftest import REPO



@pytest.mark.parametrize('key, value, message', [
    ('optim.lr_g', -1.0, r'config.optim.lr_g=-1.0 must be positive'),
    ('optim.lr_d', 0.0, r'config.optim.lr_d=0.0 must be positive'),
    ('optim.b1', 1.5, r'config.optim.b1=1.5 must be in \[0, 1\)'),
    ('batch_size', 0, r'config.batch_size=0 must be positive'),
    ('num_train_steps', 0, r'config.num_train_steps=0 must be positive, or '
     r'-1'),
    ('grid_images', -4, r'config.grid_images=-4 must be positive'),
    ('model.nz', 0, r'config.model.nz=0 must be positive'),
    ('data.max_bad_fraction', 2.0, r'config.data.max_bad_fraction=2.0 must '
     r'be in \[0, 1\]'),
    ('model.name', 'dcgann', r"config.model.name='dcgann' is not known; "
     r'choose one of dcgan, dcgan_upsample, keras_dcgan, mlp, sngan_cnn\.'),
    ('objective', 'wgan', r"config.objective='wgan' is not known; choose one "
     r'of non_saturating, minimax, wgan_gp, hinge, least_squares\.'),
    ('optim.name', 'sgd', r"config.optim.name='sgd' is not known; choose one "
     r'of adam, rmsprop\.'),
    ('dtype', 'float16', r"config.dtype='float16' is not known; choose one of "
     r'float32, bfloat16\.'),
    ('sweep.seeds', 'many', r"config.sweep.seeds='many' must be a number of "
     r'members'),
    ('sweep.seeds', '0', r"config.sweep.seeds='0' must be a number"),
    ('sweep.seeds', '1,1', r"config.sweep.seeds='1,1' repeats a seed"),
    ('sweep.lr_g', '1e-4,-1', r'config.optim.lr_g=-1.0 \(sweep member 1: '
     r"\{'optim.lr_g': -1.0\}\) must be positive"),
    ('sweep.ema_decay', '0,0.999', r'config.sweep.ema_decay=.*every value '
     r'must be > 0'),
    ('sweep.gp_weight', '1,10', r"config.sweep.gp_weight: "
     r"config.objective='non_saturating' has no gradient penalty"),
    ('data.seed', -2, r'config.data.seed=-2 must be >= 0, or -1'),
    ('reg_every', 4, r'config.reg_every=4 schedules the R1 and R2 '
     'penalties, and both are off'),
    ('sweep.r1_gamma', '0,1', r'config.r1_gamma needs a D without BatchNorm'
     r".* \(sweep member 1: \{'r1_gamma': 1.0\}\)"),
])
def test_validate_refuses_values_a_run_cannot_use(key, value, message):
  config = load_config('test')
  config.update_from_flattened_dict({key: value})
  with pytest.raises(config_schema.ConfigError, match=message):
    config_schema.validate(config)


def test_num_epochs_counts_only_without_num_train_steps():
  config = load_config('test')
  config.num_epochs = 0
  config_schema.validate(config)  # num_train_steps is set.
  config.num_train_steps = -1
  with pytest.raises(config_schema.ConfigError,
                     match='config.num_epochs=0 must be positive when '
                     'config.num_train_steps is -1'):
    config_schema.validate(config)


def test_validate_checks_an_optimizer_without_building_it():
  config = load_config('mnist_unrolled')
  config.optim.name = 'rmsprop'
  with pytest.raises(config_schema.ConfigError,
                     match="optim.name='rmsprop' cannot be differentiated"):
    config_schema.validate(config)


def test_unknown_keys_are_named_with_the_closest_known_ones():
  known = config_schema.flat_config(load_config('default'))
  assert config_schema.closest_keys('optim.lrg', known)[:2] == [
      'optim.lr_g', 'optim.lr_d']
  assert config_schema.closest_keys('data.imagesize', known)[0] == (
      'data.image_size')
  assert config_schema.unknown_key_error('bogus', known) == (
      'config.bogus is not a config key; see configs/default.py for the '
      'keys.')


def test_one_wording_for_every_unknown_name():
  with pytest.raises(ValueError, match=r"^config.x='c' is not known; choose "
                     r'one of a, b\.$'):
    choices.choose('config.x', 'c', {'a': 1, 'b': 2})
  assert choices.check('config.x', 'a', ('a', 'b')) == 'a'
  with pytest.raises(ValueError, match=r"^config.x='a,z': 'z' is not known; "
                     r'choose one of a, b\.$'):
    choices.check_list('config.x', 'a,z', ('a', 'b'))


def test_old_configs_gain_added_keys_and_renamed_ones():
  old = load_config('test').to_dict()
  del old['trackers'], old['model']['d_norm'], old['grid_images']
  old['num_samples'] = 36
  del old['sweep'], old['data']['seed']
  config = config_schema.upgrade(old)
  assert config.trackers == '' and config.model.d_norm == 'batch'
  assert config.sweep.seeds == '' and config.data.seed == -1
  assert config.grid_images == 36 and 'num_samples' not in config
  assert isinstance(config, ml_collections.ConfigDict)


@pytest.mark.parametrize('argv, message', [
    (['--config.optim.lrg=1e-4'], 'Error: config.optim.lrg is not a config '
     'key; the closest known keys: optim.lr_g, optim.lr_d'),
    (['--config.data.imagesize=32'], 'Error: config.data.imagesize is not a '
     'config key; the closest known keys: data.image_size'),
    (['--config=configs/missing.py'], 'Error: --config=configs/missing.py: '
     'no such file.'),
    (['--config.sweep.objective=hinge'], 'Error: config.sweep.objective: '
     'objective cannot be a sweep axis (it changes the program, or is not a '
     'number a step can take per member); train a run or sweep per value. '
     'The axes: sweep.seeds, sweep.lr_g, sweep.lr_d, sweep.ema_decay, '
     'sweep.gp_weight, sweep.r1_gamma, sweep.r2_gamma.'),
])
def test_config_flag_mistakes_are_one_sentence(argv, message, monkeypatch):
  monkeypatch.chdir(REPO)
  flag_values = absl_flags.FlagValues()
  config_flags.DEFINE_config_file('config', None, 'config', lock_config=True,
                                  flag_values=flag_values)
  with pytest.raises(SystemExit) as exit_info:
    cli.parse_flags(['main', '--config=configs/test.py', *argv],
                    flag_values)
  assert str(exit_info.value).startswith(message)


def test_a_config_mistake_ends_the_command_without_a_traceback(tmp_path):
  """A value the schema refuses, raised inside main; the flag parser's own
  errors: test_config_flag_mistakes_are_one_sentence."""
  result = subprocess.run(
      [sys.executable, '-m', 'dcgan_jax.main', '--config=configs/test.py',
       f'--workdir={tmp_path}', '--config.optim.lr_g=-1'],
      cwd=REPO, capture_output=True, text=True, timeout=300,
      env=dict(os.environ, JAX_PLATFORMS='cpu'))
  assert result.returncode == 1
  assert 'Error: config.optim.lr_g=-1.0 must be positive.' in result.stderr
  assert 'Traceback' not in result.stderr + result.stdout
  assert not os.listdir(tmp_path)  # Refused before the run wrote anything.
