"""The config's schema: keys that runs saved by earlier versions lack (and
the values those runs had), renamed keys, keys a resume may not change,
and `validate`, which checks every key a run reads before any data is read
or code compiled.

Each registry owns the defaults of its own keys (`models.registry`'s
MODEL_DEFAULTS, `gan.optimizers`' OPTIM_DEFAULTS), so research code can
pass configs without them; ADDED_KEYS gathers them with the rest.
"""

import difflib
from typing import Any, Callable, Iterable

import ml_collections

from dcgan_jax.evaluation import metrics
from dcgan_jax.gan import ada
from dcgan_jax.gan import augment
from dcgan_jax.gan import optimizers
from dcgan_jax.gan import sweep
from dcgan_jax.gan import train_states
from dcgan_jax.models import registry
from dcgan_jax.run import hosts

# Keys a resumed run may not change: they change the networks, the
# optimizer's state, what D's output means, or the data they learn from.
PROTECTED_KEYS = ('data.name', 'data.image_size', 'data.channels',
                  'model.name', 'model.nz', 'model.ngf', 'model.ndf',
                  'model.d_norm', 'model.g_spectral', 'model.upsample',
                  'optim.name',
                  'objective',
                  *(f'sweep.{name}' for name in ('seeds', *sweep.AXES)))
# Keys added after runs were saved without them, and the value those runs had.
ADDED_KEYS = {**{f'model.{k}': v for k, v in registry.MODEL_DEFAULTS.items()},
              **{f'optim.{k}': v
                 for k, v in optimizers.OPTIM_DEFAULTS.items()},
              'objective': 'non_saturating', 'd_joint_batch': False,
              'eval.pr_k': 3, 'eval.dc_k': 5, 'eval.is_splits': 10,
              'eval.resize': 'pytorch', 'eval.reference_stats': '',
              'trackers': '', 'ema_stats_batches': 16, 'data.seed': -1,
              'r1_gamma': 0.0, 'r2_gamma': 0.0, 'reg_every': 1,
              'augment.policy': '', 'augment.translation': augment.TRANSLATION,
              'augment.cutout': augment.CUTOUT, 'augment.ada': False,
              'augment.ada_target': ada.TARGET,
              'augment.ada_interval': ada.INTERVAL,
              'augment.ada_kimg': ada.KIMG,
              **{f'sweep.{name}': '' for name in ('seeds', *sweep.AXES)},
              'sweep.own_data': False}
# Keys renamed since runs were saved: old name -> new name.
RENAMED_KEYS = {'num_samples': 'grid_images'}


class ConfigError(ValueError):
  """A config value a run cannot use; the message names the key."""


def _positive(value: Any) -> bool:
  return value > 0


def _in_unit_interval(value: Any) -> bool:
  return 0 <= value < 1


# Key -> (test, what the value must be). Names chosen from registries and
# the objective's settings are checked by the code that uses them, called
# from `validate`.
RANGES: dict[str, tuple[Callable[[Any], bool], str]] = {
    **{key: (_positive, 'positive') for key in (
        'batch_size', 'log_every_steps', 'sample_every_steps',
        'checkpoint_every_steps', 'max_checkpoints_to_keep', 'grid_images',
        'ema_stats_batches', 'model.nz', 'model.ngf', 'model.ndf',
        'optim.lr_g', 'optim.lr_d', 'optim.eps', 'data.shuffle_buffer',
        'eval.batch_size', 'eval.kid_subsets', 'eval.kid_subset_size',
        'eval.classifier_epochs')},
    **{key: (_in_unit_interval, 'in [0, 1)')
       for key in ('optim.b1', 'optim.b2', 'optim.rho')},
    'num_train_steps': (lambda v: v > 0 or v == -1,
                        'positive, or -1 for num_epochs'),
    'eval_every_steps': (lambda v: v > 0 or v == -1,
                         'positive, or -1 for once per epoch'),
    'data.max_bad_fraction': (lambda v: 0 <= v <= 1, 'in [0, 1]'),
    'data.cache_mb': (lambda v: v >= 0, '>= 0 (0: no cache)'),
    'data.prefetch_to_device': (lambda v: v >= 0, '>= 0'),
    'data.seed': (lambda v: v >= -1, '>= 0, or -1 for seed'),
}


def upgrade(saved: dict[str, Any]) -> ml_collections.ConfigDict:
  """A saved config with renamed keys under their new names and added keys
  at the values older runs had."""
  config = ml_collections.ConfigDict(saved)
  for old, new in RENAMED_KEYS.items():
    if old in config and new not in config:
      config[new] = config[old]
      del config[old]
  for key, value in ADDED_KEYS.items():
    *parents, leaf = key.split('.')
    node = config
    for parent in parents:
      if parent not in node:
        node[parent] = ml_collections.ConfigDict()
      node = node[parent]
    if leaf not in node:
      node[leaf] = value
  return config


def _flatten(tree: dict[str, Any], prefix: str = '') -> dict[str, Any]:
  flat = {}
  for key, value in tree.items():
    if isinstance(value, dict):
      flat.update(_flatten(value, f'{prefix}{key}.'))
    else:
      flat[f'{prefix}{key}'] = value
  return flat


def flat_config(config: ml_collections.ConfigDict) -> dict[str, Any]:
  """{'data.image_size': 64, ...}: a config as dotted keys."""
  return _flatten(config.to_dict())


def closest_keys(key: str, known: Iterable[str]) -> list[str]:
  """Up to 3 known keys that look like `key`, the closest first."""
  known = list(known)
  close = difflib.get_close_matches(key, known, n=3, cutoff=0.6)
  leaf = key.rsplit('.', 1)[-1]
  by_leaf = {k.rsplit('.', 1)[-1]: k for k in known}
  close += [by_leaf[m] for m in difflib.get_close_matches(leaf, by_leaf, n=3)
            if by_leaf[m] not in close]
  return close[:3]


def unknown_key_error(key: str, known: Iterable[str]) -> str:
  """The sentence for a config key that is not in the config."""
  known = list(known)
  leaf = key.removeprefix('sweep.')
  if leaf != key and any(k.rsplit('.', 1)[-1] == leaf for k in known):
    return (f'config.{key}: {leaf} cannot be a sweep axis (it changes the '
            'program, or is not a number a step can take per member); '
            'train a run or sweep per value. The axes: sweep.seeds, '
            f'{", ".join(f"sweep.{name}" for name in sweep.AXES)}.')
  close = closest_keys(key, known)
  hint = (f'the closest known keys: {", ".join(close)}' if close
          else 'see configs/default.py for the keys')
  return f'config.{key} is not a config key; {hint}.'


def _check_ranges(config: ml_collections.ConfigDict, where: str) -> None:
  flat = flat_config(config)
  for key, (test, requirement) in RANGES.items():
    if key in flat and not test(flat[key]):
      raise ValueError(f'config.{key}={flat[key]!r}{where} must be '
                       f'{requirement}.')


def _check_sweep(config: ml_collections.ConfigDict) -> None:
  """Each member's values in range, and axes the objective has."""
  listed = sweep.members(config)
  if not listed:
    return
  if sweep.own_data(config) and config.data.get('seed', -1) != -1:
    raise ValueError(
        f'config.data.seed={config.data.seed} with config.sweep.own_data: '
        'each member reads in its own seed\'s order; set data.seed=-1, or '
        'own_data=False for one shared order.')
  for k, member in enumerate(listed):
    values = {key: value for key, value in member.items() if key != 'seed'}
    where = f' (sweep member {k}: {values})' if values else ''
    _check_ranges(sweep.member_config(config, k), where)
    try:
      train_states.Recipe.from_config(sweep.member_config(config, k))
    except ValueError as e:
      raise ValueError(f'{e}{where}') from None
  recipe = train_states.Recipe.from_config(sweep.member_config(config, 0))
  if 'gp_weight' in listed[0] and not recipe.objective_fns.gradient_penalty:
    raise ValueError(
        f'config.sweep.gp_weight: config.objective={recipe.objective!r} has '
        'no gradient penalty to weigh.')


def _check_lazy_regularisation(config: ml_collections.ConfigDict) -> None:
  """reg_every > 1 only with R1 or R2 on (in some sweep member): alone it
  would do nothing, likely a forgotten gamma."""
  if config.get('reg_every', 1) == 1:
    return
  configs = [sweep.member_config(config, k)
             for k in range(len(sweep.members(config) or []))] or [config]
  if not any(c.get('r1_gamma', 0) or c.get('r2_gamma', 0) for c in configs):
    raise ValueError(f'config.reg_every={config.reg_every} schedules the R1 '
                     'and R2 penalties, and both are off: set '
                     'config.r1_gamma or config.r2_gamma.')


def validate(config: ml_collections.ConfigDict) -> None:
  """Checks every key a training run reads, before anything is read or
  compiled.

  Raises:
    ConfigError: naming the first key whose value a run cannot use.
  """
  # clu's writers import TensorFlow, which checkpoints and sampling, also
  # users of this module, do without.
  from dcgan_jax.output import trackers  # pylint: disable=g-import-not-at-top
  try:
    _check_ranges(config, '')
    if config.num_train_steps == -1 and config.num_epochs <= 0:
      raise ValueError(f'config.num_epochs={config.num_epochs} must be '
                       'positive when config.num_train_steps is -1.')
    registry.check_shape(config)
    registry.compute_dtype(config)
    recipe = train_states.Recipe.from_config(config)
    _check_lazy_regularisation(config)
    optimizers.check(config, differentiable=recipe.unroll_steps > 0)
    hosts.local_batch_layout(config.batch_size)
    _check_sweep(config)
    metrics.metric_names(config)
    trackers.tracker_names(config)
  except ConfigError:
    raise
  except ValueError as e:
    raise ConfigError(str(e)) from None
