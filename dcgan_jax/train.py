"""The DCGAN training loop: read top to bottom, one section per concern.

`train_and_evaluate(config, workdir)` trains on all local devices with
`jax.pmap` (and on every host of a multi-host run), logs metrics to
TensorBoard and the log, writes fixed-noise sample grids and keeps Orbax
checkpoints; a run started on a workdir with checkpoints resumes from the
latest one.
"""

import functools
import os
from typing import Any

from absl import logging
from clu import metric_writers
from clu import parameter_overview
from clu import periodic_actions
from flax import jax_utils
import jax
import ml_collections
import numpy as np

from dcgan_jax import checkpoint
from dcgan_jax import images
from dcgan_jax import input_pipeline
from dcgan_jax import models
from dcgan_jax import steps

AXIS = 'batch'


def num_train_steps(config: Any, num_examples: int) -> int:
  """config.num_train_steps if positive, else num_epochs over the data."""
  if config.num_train_steps > 0:
    return config.num_train_steps
  if config.num_epochs <= 0:
    raise ValueError('Set config.num_train_steps or config.num_epochs > 0; '
                     f'got {config.num_train_steps} and {config.num_epochs}.')
  return config.num_epochs * steps_per_epoch(config, num_examples)


def steps_per_epoch(config: Any, num_examples: int) -> int:
  """Steps per pass over the data, from this host's share of it."""
  return max(1, num_examples * jax.process_count() // config.batch_size)


def _validate(config: Any) -> None:
  """Fails on bad config values before any data is read or code compiled."""
  models.check_architecture(config.data.image_size, config.data.channels)
  input_pipeline.local_batch_layout(config.batch_size)
  for key in ('log_every_steps', 'sample_every_steps',
              'checkpoint_every_steps'):
    if config[key] <= 0:
      raise ValueError(f'config.{key}={config[key]} must be positive.')


def train_and_evaluate(config: ml_collections.ConfigDict,
                       workdir: str) -> tuple[steps.GeneratorState,
                                              steps.TrainState]:
  """Trains G and D, resuming from workdir's latest checkpoint if any.

  Returns:
    The final (g_state, d_state), unreplicated, as host numpy arrays.
  """
  _validate(config)
  is_chief = jax.process_index() == 0

  # Logging.
  writer = metric_writers.create_default_writer(
      workdir, just_logging=not is_chief)

  # Model and optimizer states, restored from the latest checkpoint if any.
  rng = jax.random.key(config.seed)
  init_rng, step_rng, sample_rng = jax.random.split(rng, 3)
  g_state, d_state = steps.create_train_states(config, init_rng)
  manager = checkpoint.create_manager(
      workdir, max_to_keep=config.max_checkpoints_to_keep)
  start_step = manager.latest_step() or 0
  if start_step:
    g_state, d_state = checkpoint.restore_states(
        manager, start_step, g_state, d_state)
    logging.info('Resumed from %s at step %d.',
                 checkpoint.checkpoint_dir(workdir), start_step)
  else:
    writer.write_hparams(_flatten(config.to_dict()))
  parameter_overview.log_parameter_overview(g_state.params, msg='Generator')
  parameter_overview.log_parameter_overview(d_state.params,
                                            msg='Discriminator')

  # Input.
  train_iter, num_examples = input_pipeline.create_dataset(config, start_step)
  total_steps = num_train_steps(config, num_examples)
  epoch_steps = steps_per_epoch(config, num_examples)
  train_iter = jax_utils.prefetch_to_device(
      train_iter, config.data.prefetch_to_device)

  # Update step, pmapped over local devices; the global batch is split over
  # every device of every host.
  p_train_step = jax.pmap(
      functools.partial(steps.train_step, axis_name=AXIS), axis_name=AXIS,
      in_axes=(0, 0, 0, None), donate_argnums=(0, 1))
  g_state, d_state = jax_utils.replicate((g_state, d_state))
  fixed_z = jax.random.normal(sample_rng,
                              (config.num_samples, config.model.nz))

  generate = jax.jit(steps.generate)

  def write_samples(step: int) -> None:
    grid = images.make_grid(images.to_uint8(
        generate(jax_utils.unreplicate(g_state), fixed_z)))
    if is_chief:
      images.save_png(os.path.join(workdir, 'samples', f'{step:07d}.png'),
                      grid)
      writer.write_images(step, {'samples': grid[None]})

  def host_states() -> tuple[steps.GeneratorState, steps.TrainState]:
    return jax.device_get(jax_utils.unreplicate((g_state, d_state)))

  # Training loop.
  hooks = []
  if is_chief:
    hooks.append(periodic_actions.ReportProgress(
        num_train_steps=total_steps, writer=writer))
  logging.info('Training for %d steps (%d per epoch) from step %d.',
               total_steps, epoch_steps, start_step)
  if start_step == 0:
    write_samples(0)
  train_metrics = []
  for step in range(start_step + 1, total_steps + 1):
    with jax.profiler.StepTraceAnnotation('train', step_num=step):
      batch = next(train_iter)
      g_state, d_state, metrics = p_train_step(g_state, d_state, batch,
                                               step_rng)
    train_metrics.append(metrics)
    for hook in hooks:
      hook(step)
    if step % config.log_every_steps == 0 or step == total_steps:
      # The only host synchronisation: metrics since the last log, averaged
      # over steps (the step already averaged them over devices).
      fetched = jax.device_get(train_metrics)
      summary = {k: float(np.mean([m[k] for m in fetched]))
                 for k in fetched[0]}
      summary['epoch'] = step / epoch_steps
      writer.write_scalars(step, summary)
      train_metrics = []
    if step % config.sample_every_steps == 0 or step == total_steps:
      write_samples(step)
    if step % config.checkpoint_every_steps == 0 or step == total_steps:
      checkpoint.save(manager, step, *host_states(), config)
  manager.wait_until_finished()
  writer.flush()
  return host_states()


def _flatten(tree: dict[str, Any], prefix: str = '') -> dict[str, Any]:
  flat = {}
  for key, value in tree.items():
    if isinstance(value, dict):
      flat.update(_flatten(value, f'{prefix}{key}.'))
    else:
      flat[f'{prefix}{key}'] = value
  return flat
