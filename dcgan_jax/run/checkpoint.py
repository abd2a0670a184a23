"""Orbax checkpoints of a run: what is kept, how it is found again.

Each checkpoint step under `workdir/checkpoints` holds two items: `state`
({'g': g_state, 'd': d_state, 'rng': the run's base key}, all arrays) and
`meta` (JSON: the run's config and the data position). Saves are atomic
(Orbax writes a temporary directory and renames it when complete), so a
kill during a save leaves the earlier checkpoints as they were. A checkpoint
that cannot be read is moved to `workdir/checkpoints_unreadable` (never
deleted) and the previous one is used; a readable one whose arrays do not
fit the run's state is never moved: fields STARTS_FROM names are started
from others, anything else stops the run naming the fields. On several
processes the arrays are saved by process 0 (every process holds the same
replicated values), and which checkpoint to resume from is decided for all
of them.

`workdir/checkpoints_best` is a second slot keeping the single best
checkpoint by a metric, for evaluation to fill.
"""

import json
import logging
import os
from typing import Any, Optional

from absl import logging as absl_logging
from etils import epath
import jax
import ml_collections
import numpy as np
import orbax.checkpoint as ocp

from dcgan_jax.gan import ema
from dcgan_jax.gan import sweep
from dcgan_jax.gan import train_states
from dcgan_jax.output import paths
from dcgan_jax.run import config_schema
from dcgan_jax.run import hosts

def checkpoint_dir(workdir: paths.PathLike) -> epath.Path:
  return paths.path(workdir) / 'checkpoints'


def create_manager(workdir: paths.PathLike, max_to_keep: Optional[int] = None,
                   read_only: bool = False, best_metric: Optional[str] = None,
                   best_mode: str = 'min') -> ocp.CheckpointManager:
  """The run's checkpoint manager, or with best_metric its best slot.

  Args:
    workdir: the run's directory.
    max_to_keep: newest checkpoints kept (None: all).
    read_only: open existing checkpoints without creating anything.
    best_metric: if set, the manager of `workdir/checkpoints_best`, which
      keeps the one checkpoint with the best value of this metric.
    best_mode: 'min' or 'max': which values of best_metric are better.
  """
  directory = checkpoint_dir(workdir)
  options = ocp.CheckpointManagerOptions(
      max_to_keep=max_to_keep, create=not read_only, read_only=read_only)
  if best_metric:
    directory = directory.parent / 'checkpoints_best'
    options = ocp.CheckpointManagerOptions(
        max_to_keep=1, create=not read_only, read_only=read_only,
        best_fn=lambda metrics: metrics[best_metric], best_mode=best_mode,
        keep_checkpoints_without_metrics=False,
        # Its own barriers: its saves may overlap the other manager's.
        multiprocessing_options=ocp.options.MultiprocessingOptions(
            barrier_sync_key_prefix='best'))
  return ocp.CheckpointManager(directory, options=options,
                               item_names=('state', 'meta'))


def save(manager: ocp.CheckpointManager, step: int,
         g_state: train_states.GeneratorState, d_state: train_states.TrainState,
         rng: jax.Array, config: ml_collections.ConfigDict,
         metrics: Optional[dict[str, float]] = None) -> None:
  """Starts an async save of a step; `wait` (or the next save) finishes it.

  The states are saved as host (numpy) arrays: a checkpoint written by any
  number of processes loads in any other.

  Raises:
    RuntimeError: naming the step and directory, if the save fails.
  """
  state = jax.device_get({'g': g_state, 'd': d_state,
                          'rng': jax.random.key_data(rng)})
  # A sweep's members step together: any member's count is the run's.
  batches = int(np.ravel(jax.device_get(d_state.step))[0])
  meta = {'config': config.to_dict(),
          'data': {'step': step,
                   'examples_seen': batches * config.batch_size}}
  try:
    manager.save(step, metrics=metrics, args=ocp.args.Composite(
        state=ocp.args.StandardSave(state), meta=ocp.args.JsonSave(meta)))
  except Exception as e:  # pylint: disable=broad-except
    raise RuntimeError(
        f'Saving the checkpoint for step {step} in {manager.directory} '
        f'failed: {e}. Earlier checkpoints are untouched.') from e


def wait(manager: ocp.CheckpointManager) -> None:
  """Waits for pending saves; raises RuntimeError if one failed."""
  try:
    manager.wait_until_finished()
  except Exception as e:  # pylint: disable=broad-except
    raise RuntimeError(
        f'Writing a checkpoint in {manager.directory} failed: {e}. Earlier '
        'checkpoints are untouched.') from e


def restore_config(manager: ocp.CheckpointManager,
                   step: int) -> ml_collections.ConfigDict:
  """The config of the run that saved `step`."""
  restored = manager.restore(step, args=ocp.args.Composite(
      meta=ocp.args.JsonRestore()))
  return config_schema.upgrade(restored.meta['config'])


class StructureError(ValueError):
  """A readable checkpoint whose arrays do not fit the run's state."""


# A field a newer state has and an older checkpoint lacks -> the field it
# starts from (EMA switched on: the averages start at the current weights).
STARTS_FROM = {('g', 'ema_params'): ('g', 'params'),
               ('g', 'ema_batch_stats'): ('g', 'batch_stats')}


def _key_name(key: Any) -> str:
  """One step of a tree path as a name, whatever container holds it."""
  for attribute in ('name', 'key', 'idx'):
    if hasattr(key, attribute):
      return str(getattr(key, attribute))
  return str(key)


def _leaves_by_path(tree: Any) -> dict[tuple[str, ...], Any]:
  return {tuple(map(_key_name, path)): leaf
          for path, leaf in jax.tree_util.tree_leaves_with_path(tree)}


def _fields(leaf_paths: list[tuple[str, ...]]) -> str:
  """'g.ema_params (5 arrays), d.batch_stats (4 arrays)'."""
  counts: dict[str, int] = {}
  for path in leaf_paths:
    field = '.'.join(path[:2])
    counts[field] = counts.get(field, 0) + 1
  return ', '.join(f'{field} ({count} array{"s" * (count > 1)})'
                   for field, count in sorted(counts.items()))


def _fit(saved: dict[str, Any], target: Any, where: str) -> Any:
  """The saved arrays in the target's structure.

  A target field the checkpoint lacks is started from the field STARTS_FROM
  names, with a warning; anything else that differs raises.

  Raises:
    StructureError: naming the fields that differ.
  """
  saved_leaves = _leaves_by_path(saved)
  flat, treedef = jax.tree_util.tree_flatten_with_path(target)
  target_paths = [tuple(map(_key_name, path)) for path, _ in flat]
  unknown = sorted(set(saved_leaves) - set(target_paths))
  missing, started, reshaped = [], [], []
  leaves = []
  for path, (_, leaf) in zip(target_paths, flat):
    source = path
    if path not in saved_leaves:
      origin = STARTS_FROM.get(path[:2])
      source = origin + path[2:] if origin else None
      if source not in saved_leaves:
        missing.append(path)
        continue
      started.append(path)
    value = np.asarray(saved_leaves[source])
    if value.shape != np.shape(leaf):
      reshaped.append(path)
      continue
    leaves.append(value.astype(np.asarray(leaf).dtype))
  problems = [f'{what}: {_fields(fields)}' for what, fields in (
      ('in the checkpoint, not in this run\'s state', unknown),
      ('in this run\'s state, not in the checkpoint', missing),
      ('of another shape', reshaped)) if fields]
  if problems:
    raise StructureError(
        f'{where} does not fit this run\'s state; fields '
        f'{"; ".join(problems)}. It is left as it is: resume it with the '
        'config it was saved with, or use another --workdir.')
  if started:
    absl_logging.warning(
        '%s has no %s: starting them from %s (the weights at this step).',
        where, _fields(started),
        ', '.join(sorted({'.'.join(STARTS_FROM[p[:2]]) for p in started})))
  return jax.tree_util.tree_unflatten(treedef, leaves)


def restore(manager: ocp.CheckpointManager, step: int,
            g_state: train_states.GeneratorState,
            d_state: train_states.TrainState, rng: jax.Array
            ) -> tuple[train_states.GeneratorState, train_states.TrainState,
                       jax.Array]:
  """Restores a step's states and base key into the given structures, as
  host (numpy) arrays.

  Raises:
    StructureError: if the checkpoint is readable but its arrays do not fit
      the given structures (other than fields STARTS_FROM fills).
  """
  saved = manager.restore(step, args=ocp.args.Composite(
      state=ocp.args.StandardRestore())).state
  target = jax.device_get({'g': g_state, 'd': d_state,
                           'rng': jax.random.key_data(rng)})
  state = _fit(saved, target, f'Checkpoint {manager.directory / str(step)}')
  rng = jax.random.wrap_key_data(np.asarray(state['rng']),
                                 impl=jax.random.key_impl(rng))
  return state['g'], state['d'], rng


def restore_latest_good(
    manager: ocp.CheckpointManager, workdir: paths.PathLike,
    config: ml_collections.ConfigDict, g_state: train_states.GeneratorState,
    d_state: train_states.TrainState, rng: jax.Array
) -> Optional[tuple[int, train_states.GeneratorState, train_states.TrainState,
                    jax.Array]]:
  """Restores the newest readable checkpoint, or returns None if none.

  Every process restores the same step: process 0 lists the steps, and a
  step counts as readable only if every process read it. An unreadable
  checkpoint is reported with its path and moved aside by process 0 to
  `workdir/checkpoints_unreadable/STEP`, so that nothing is deleted and the
  run can save that step again.

  Raises:
    ValueError: if the checkpoint's config differs in protected keys, or
      (StructureError) its arrays do not fit the run's state: such a
      checkpoint is readable, so it stays where it is.
  """
  saved = json.loads(hosts.run_on_chief(
      lambda: json.dumps(sorted(manager.all_steps(), reverse=True)).encode(),
      'list the checkpoints'))
  for step in saved:
    error = None
    try:
      saved_config = restore_config(manager, step)
    except Exception as e:  # pylint: disable=broad-except
      error = e
    if not hosts.all_true(error is None):
      _move_aside(manager, workdir, step, error)
      continue
    check_resumable(saved_config, config, workdir)
    try:
      restored = restore(manager, step, g_state, d_state, rng)
    except StructureError:
      raise  # Readable: never moved aside.
    except Exception as e:  # pylint: disable=broad-except
      error = e
    if hosts.all_true(error is None):
      return (step, *restored)
    _move_aside(manager, workdir, step, error)
  return None


def _move_aside(manager: ocp.CheckpointManager, workdir: paths.PathLike,
                step: int, error: Optional[Exception]) -> None:
  """Process 0 moves a step's directory aside; then every process reloads."""
  if hosts.is_chief():
    path = manager.directory / str(step)
    parent = paths.path(workdir) / 'checkpoints_unreadable'
    aside = parent / str(step)
    while aside.exists():
      aside = parent / f'{aside.name}_'
    reason = (f'{type(error).__name__}: {error}' if error
              else 'another process could not read it')
    absl_logging.error('Checkpoint %s cannot be read (%s); moving it to %s '
                       'and trying the previous one.', path, reason, aside)
    parent.mkdir(parents=True, exist_ok=True)
    path.rename(aside)
  hosts.barrier('move_aside')
  manager.reload()


def latest_step_or_raise(manager: ocp.CheckpointManager,
                         workdir: paths.PathLike,
                         step: Optional[int] = None) -> int:
  """`step` if it was saved, else the latest step; raises if there is none."""
  saved = manager.all_steps()
  if not saved:
    raise FileNotFoundError(
        f'No checkpoints in {manager.directory}: train with '
        f'`python -m dcgan_jax.main --workdir={workdir}` first.')
  if step is None:
    return max(saved)
  if step not in saved:
    raise FileNotFoundError(
        f'No checkpoint for step {step} in {manager.directory}; saved '
        f'steps: {sorted(saved)}.')
  return step


def load_generator(workdir: paths.PathLike, step: Optional[int] = None,
                   best_metric: Optional[str] = None
                   ) -> tuple[int, ml_collections.ConfigDict,
                              train_states.GeneratorState]:
  """(step, config, G state) of a run's checkpoint: `step`, else the latest,
  or with best_metric the one in the best slot (checkpoints_best).

  With EMA weights and BatchNorm, their statistics are computed again as
  training computed them at that step (the same z), so that checkpoints of
  code that averaged the statistics sample as well as newer ones.

  Raises:
    config_schema.ConfigError: for a sweep's checkpoint (the commands then
      end with its sentence: extract a member first).
  """
  manager = create_manager(workdir, read_only=True, best_metric=best_metric)
  step = latest_step_or_raise(manager, workdir, step)
  config = restore_config(manager, step)
  if sweep.members(config):
    raise config_schema.ConfigError(
        f'{manager.directory / str(step)} holds a sweep of '
        f'{len(sweep.members(config))} members: take one out with `python -m '
        f'dcgan_jax.sweep extract --workdir={workdir} --member=K --out=DIR` '
        'and use DIR.')
  g_state, d_state = train_states.create_train_states(config, jax.random.key(0))
  g_state, _, rng = restore(manager, step, g_state, d_state,
                            jax.random.key(0))
  g_state = jax.jit(ema.recompute_ema_batch_stats, static_argnums=(2, 3))(
      g_state, rng, config.ema_stats_batches, config.batch_size)
  return step, config, g_state


def check_resumable(saved: ml_collections.ConfigDict,
                    config: ml_collections.ConfigDict,
                    workdir: paths.PathLike) -> None:
  """Refuses a resume that changes config_schema.PROTECTED_KEYS; logs
  other changes.

  Raises:
    config_schema.ConfigError: listing every protected key whose value
      differs.
  """
  old, new = ({**config_schema.ADDED_KEYS, **config_schema.flat_config(c)}
              for c in (config_schema.upgrade(saved.to_dict()), config))
  changed = sorted(k for k in old.keys() | new.keys()
                   if old.get(k) != new.get(k))
  refused = [f'{k}: {old.get(k)!r} -> {new.get(k)!r}'
             for k in changed if k in config_schema.PROTECTED_KEYS]
  if refused:
    raise config_schema.ConfigError(
        f'{checkpoint_dir(workdir)} holds a run whose config differs in '
        f'{", ".join(refused)}; these change the model or the data, so the '
        'run cannot resume with them. Use another --workdir, or the saved '
        'values.')
  if changed:
    absl_logging.info('Resuming with config changes: %s', ', '.join(
        f'{k}: {old.get(k)!r} -> {new.get(k)!r}' for k in changed))


class _DropOrbaxInfo(logging.Filter):

  def filter(self, record: logging.LogRecord) -> bool:
    return record.levelno > logging.INFO or (
        f'{os.sep}orbax{os.sep}' not in record.pathname)


def quiet_orbax_info_logs() -> None:
  """Drops Orbax's INFO lines (dozens per save) from the log; keeps warnings."""
  absl_logging.get_absl_handler().addFilter(_DropOrbaxInfo())
