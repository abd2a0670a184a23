"""Orbax checkpoints of a run: both train states and the run's config.

Each checkpoint step holds two items: `state` ({'g': g_state, 'd': d_state})
and `config` (JSON), so a checkpoint alone is enough to rebuild the models.
"""

import logging
import os
from typing import Optional

from absl import logging as absl_logging
import ml_collections
import orbax.checkpoint as ocp

from dcgan_jax import steps


def checkpoint_dir(workdir: str) -> str:
  return os.path.join(os.path.abspath(workdir), 'checkpoints')


def create_manager(workdir: str, max_to_keep: Optional[int] = None,
                   read_only: bool = False) -> ocp.CheckpointManager:
  """The run's checkpoint manager, under `workdir/checkpoints`."""
  options = ocp.CheckpointManagerOptions(
      max_to_keep=max_to_keep, create=not read_only, read_only=read_only)
  return ocp.CheckpointManager(checkpoint_dir(workdir), options=options,
                               item_names=('state', 'config'))


def save(manager: ocp.CheckpointManager, step: int,
         g_state: steps.GeneratorState, d_state: steps.TrainState,
         config: ml_collections.ConfigDict) -> None:
  """Starts an async save of both states and the config.

  `manager.wait_until_finished()` waits for it; the step's directory only
  appears, complete, once the save has been committed.
  """
  manager.save(step, args=ocp.args.Composite(
      state=ocp.args.StandardSave({'g': g_state, 'd': d_state}),
      config=ocp.args.JsonSave(config.to_dict())))


def restore_states(manager: ocp.CheckpointManager, step: int,
                   g_state: steps.GeneratorState, d_state: steps.TrainState
                   ) -> tuple[steps.GeneratorState, steps.TrainState]:
  """Restores the states saved at `step` into the structure of the given ones."""
  restored = manager.restore(step, args=ocp.args.Composite(
      state=ocp.args.StandardRestore({'g': g_state, 'd': d_state})))
  return restored.state['g'], restored.state['d']


def restore_config(manager: ocp.CheckpointManager,
                   step: int) -> ml_collections.ConfigDict:
  """The config of the run that saved `step`."""
  restored = manager.restore(step, args=ocp.args.Composite(
      config=ocp.args.JsonRestore()))
  return ml_collections.ConfigDict(restored.config)


def latest_step_or_raise(manager: ocp.CheckpointManager, workdir: str,
                         step: Optional[int] = None) -> int:
  """`step` if it was saved, else the latest step; raises if there is none."""
  saved = manager.all_steps()
  if not saved:
    raise FileNotFoundError(
        f'No checkpoints in {checkpoint_dir(workdir)}: train with '
        f'`python -m dcgan_jax.main --workdir={workdir}` first.')
  if step is None:
    return max(saved)
  if step not in saved:
    raise FileNotFoundError(
        f'No checkpoint for step {step} in {checkpoint_dir(workdir)}; saved '
        f'steps: {sorted(saved)}.')
  return step



class _DropOrbaxInfo(logging.Filter):

  def filter(self, record: logging.LogRecord) -> bool:
    return record.levelno > logging.INFO or (
        f'{os.sep}orbax{os.sep}' not in record.pathname)


def quiet_orbax_info_logs() -> None:
  """Drops Orbax's INFO lines (dozens per save) from the log; keeps warnings."""
  absl_logging.get_absl_handler().addFilter(_DropOrbaxInfo())
