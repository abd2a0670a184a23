"""The DCGAN training loop: read top to bottom, one section per concern.

`train_and_evaluate(config, workdir)` trains on all local devices with
`jax.pmap` (and on every host of a multi-host run; `jax.jit` on a single
device), logs metrics to TensorBoard, the log and metrics.jsonl, writes
fixed-noise sample grids, evaluates config.eval.metrics (keeping the best
checkpoint by them) and keeps Orbax checkpoints; a run started on a workdir
with checkpoints resumes from the latest one. At the end it draws plots/.
On several processes every process trains and process 0 alone writes files
(`hosts`).
"""

import contextlib
import functools
import signal
import threading
from typing import Any, Callable
import uuid

from absl import logging
from clu import metric_writers
from clu import parameter_overview
from clu import periodic_actions
from flax import jax_utils
import jax
import ml_collections
import numpy as np

from dcgan_jax import checkpoint
from dcgan_jax import evaluation
from dcgan_jax import history
from dcgan_jax import hosts
from dcgan_jax import images
from dcgan_jax import input_pipeline
from dcgan_jax import memory
from dcgan_jax import models
from dcgan_jax import optimizers
from dcgan_jax import paths
from dcgan_jax import plots
from dcgan_jax import steps
from dcgan_jax import trackers

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
  """Steps per pass over the data (num_examples over all hosts); a step
  reads n_critic batches."""
  return max(1, num_examples // (config.batch_size *
                                 steps.Recipe.from_config(config).n_critic))


def _validate(config: Any) -> None:
  """Fails on bad config values before any data is read or code compiled."""
  models.check_shape(config)
  models.compute_dtype(config)
  recipe = steps.Recipe.from_config(config)
  optimizers.create_optimizer(config, config.optim.lr_d,
                              differentiable=recipe.unroll_steps > 0)
  input_pipeline.local_batch_layout(config.batch_size)
  for key in ('log_every_steps', 'sample_every_steps',
              'checkpoint_every_steps', 'ema_stats_batches'):
    if config[key] <= 0:
      raise ValueError(f'config.{key}={config[key]} must be positive.')
  if config.eval_every_steps == 0 or config.eval_every_steps < -1:
    raise ValueError(f'config.eval_every_steps={config.eval_every_steps} '
                     'must be positive, or -1 for once per epoch.')
  evaluation.metric_names(config)
  trackers.tracker_names(config)


def _check_writable(workdir: paths.PathLike) -> None:
  """Process 0 creates the workdir and writes a file there; all raise if it
  cannot."""
  def create() -> bytes:
    directory = paths.path(workdir)
    try:
      directory.mkdir(parents=True, exist_ok=True)
      probe = directory / f'.write_test_{uuid.uuid4().hex[:8]}'
      probe.write_bytes(b'')
      probe.unlink()
    except OSError as e:
      raise OSError(f'--workdir={workdir} is not a writable directory: {e}'
                    ) from e
    return b''
  hosts.run_on_chief(create, 'create the workdir')


def _raise_if_non_finite(step_metrics: list[tuple[int, Any]],
                         last_saved: int, workdir: paths.PathLike) -> None:
  """Stops the run at the first step whose metrics are not all finite."""
  for step, metrics in step_metrics:
    for name, value in sorted(metrics.items()):
      if not np.all(np.isfinite(value)):
        raise FloatingPointError(
            f'{name} is {np.ravel(value)[0]} at step {step}: training '
            f'diverged. No checkpoint holds it; the last one saved is step '
            f'{last_saved} in {checkpoint.checkpoint_dir(workdir)}.')


def _on_device_axis(step: Callable[..., Any]) -> Callable[..., Any]:
  """`step(*arrays, rng)` on arrays (states, batch) with a leading device
  axis of length 1, as pmap over one device takes and returns them (under
  jit the axis costs nothing)."""
  def run(*args):
    *arrays, rng = args
    squeezed = jax.tree.map(lambda x: x[0], arrays)
    return jax.tree.map(lambda x: x[None], step(*squeezed, rng))
  return run


class _StopOnSignal:
  """Turns SIGTERM and SIGINT into a request to checkpoint and stop.

  Only in a single-process run: on several hosts JAX's own preemption
  notifier handles SIGTERM and Orbax's sync point picks a common step.
  """

  def __init__(self):
    self.signal_name = None
    self._previous = {}

  def __enter__(self):
    if (jax.process_count() == 1 and
        threading.current_thread() is threading.main_thread()):
      for signum in (signal.SIGTERM, signal.SIGINT):
        self._previous[signum] = signal.signal(signum, self._handle)
    return self

  def _handle(self, signum, frame):
    del frame
    self.signal_name = signal.Signals(signum).name
    logging.warning('Received %s: saving a checkpoint after this step, then '
                    'stopping.', self.signal_name)

  def __exit__(self, *exc_info):
    for signum, handler in self._previous.items():
      signal.signal(signum, handler)


def train_and_evaluate(
    config: ml_collections.ConfigDict, workdir: paths.PathLike
) -> tuple[steps.GeneratorState, steps.TrainState]:
  """Trains G and D, resuming from workdir's latest good checkpoint if any.

  SIGTERM or SIGINT (a preemption, Ctrl-C) make it save a checkpoint at the
  current step and return.

  Returns:
    The final (g_state, d_state), unreplicated, as host numpy arrays.

  Raises:
    FloatingPointError: when a loss or a parameter stops being finite; no
      checkpoint with such values is written.
  """
  _validate(config)
  _check_writable(workdir)
  is_chief = hosts.is_chief()
  # Loads Inception's weights or the classifier (training it if needed)
  # before anything is compiled: a bad path fails now.
  evaluator = (evaluation.Evaluator(config)
               if evaluation.metric_names(config) else None)

  # Model and optimizer states, restored from the latest good checkpoint.
  rng = jax.random.key(config.seed)
  init_rng, step_rng, sample_rng = jax.random.split(rng, 3)
  recipe = steps.Recipe.from_config(config)
  g_state, d_state = steps.create_train_states(config, init_rng)
  manager = checkpoint.create_manager(
      workdir, max_to_keep=config.max_checkpoints_to_keep)
  restored = checkpoint.restore_latest_good(manager, workdir, config, g_state,
                                            d_state, step_rng)
  start_step = 0
  if restored:
    start_step, g_state, d_state, step_rng = restored
    logging.info('Resumed from %s at step %d.',
                 manager.directory / str(start_step), start_step)

  # Logging: process 0 alone logs metrics and writes events and files.
  writer = metric_writers.MultiWriter([])
  if is_chief:
    writer = metric_writers.MultiWriter([
        metric_writers.create_default_writer(str(paths.path(workdir))),
        history.JsonlWriter(workdir),
        *trackers.create_writers(config, workdir)])
    parameter_overview.log_parameter_overview(g_state.params, msg='Generator')
    parameter_overview.log_parameter_overview(d_state.params,
                                              msg='Discriminator')
  if not start_step:
    writer.write_hparams(checkpoint.flat_config(config))

  # Input.
  # D's step counts the batches read, whatever n_critic was before.
  train_iter, num_examples = input_pipeline.create_dataset(
      config, start_batch=int(d_state.step), batches_per_step=recipe.n_critic)
  total_steps = num_train_steps(config, num_examples)
  epoch_steps = steps_per_epoch(config, num_examples)
  eval_every = (config.eval_every_steps if config.eval_every_steps > 0
                else epoch_steps)
  best_manager = None
  if evaluator:
    metric = evaluation.best_metric(config)
    best_manager = checkpoint.create_manager(
        workdir, best_metric=metric, best_mode=evaluation.best_mode(metric))
  train_iter = jax_utils.prefetch_to_device(
      train_iter, config.data.prefetch_to_device)

  # Update step, pmapped over local devices; the global batch is split over
  # every device of every host. On a single device, jitted on the same
  # layout instead: pmap's collectives over one device cost time there.
  p_train_step = (
      jax.jit(_on_device_axis(functools.partial(steps.train_step,
                                                recipe=recipe)),
              donate_argnums=(0, 1)) if jax.device_count() == 1 else
      jax.pmap(
          functools.partial(steps.train_step, axis_name=AXIS, recipe=recipe),
          axis_name=AXIS, in_axes=(0, 0, 0, None), donate_argnums=(0, 1)))
  g_state, d_state = jax_utils.replicate((g_state, d_state))
  fixed_z = jax.random.normal(sample_rng,
                              (config.grid_images, config.model.nz))

  generate = jax.jit(steps.generate)
  # The EMA weights' BatchNorm statistics, computed for them before every
  # use (grid, evaluation, save); a no-op without EMA or BatchNorm.
  recompute_ema_stats = functools.partial(
      steps.recompute_ema_batch_stats, num_batches=config.ema_stats_batches,
      batch_size=config.batch_size // jax.device_count())
  p_recompute_ema_stats = (
      jax.jit(_on_device_axis(recompute_ema_stats), donate_argnums=0)
      if jax.device_count() == 1 else
      jax.pmap(functools.partial(recompute_ema_stats, axis_name=AXIS),
               axis_name=AXIS, in_axes=(0, None), donate_argnums=0))

  def write_samples(step: int) -> None:
    if not is_chief:
      return
    grid = images.make_grid(images.to_uint8(
        generate(jax_utils.unreplicate(g_state), fixed_z)))
    images.save_png(paths.path(workdir) / 'samples' / f'{step:07d}.png', grid)
    writer.write_images(step, {'samples': grid[None]})

  def write_real_images(batch: Any) -> None:
    """A grid of the first real batch, for plots' real-vs-fake figure."""
    path = plots.real_images_path(workdir)
    if is_chief and not path.exists():
      batch = np.asarray(batch)
      images.save_png(path, images.make_grid(images.to_uint8(
          batch.reshape(-1, *batch.shape[-3:])[:config.grid_images])))

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
    if recipe.ema_decay:
      g_state = p_recompute_ema_stats(g_state, step_rng)
    write_samples(0)
  pending_metrics = []  # (step, metrics) not yet fetched from the devices.
  last_saved = start_step
  try:
    with _StopOnSignal() as stop:
      for step in range(start_step + 1, total_steps + 1):
        with jax.profiler.StepTraceAnnotation('train', step_num=step):
          batch = next(train_iter)
          if step == start_step + 1:
            write_real_images(batch)
            # Over several processes, a pmap compiled ahead would expect
            # every process's arrays: there it compiles on the first call.
            if jax.process_count() == 1:
              p_train_step = memory.compile_now(p_train_step, g_state,
                                                d_state, batch, step_rng)
          g_state, d_state, metrics = p_train_step(g_state, d_state, batch,
                                                   step_rng)
        pending_metrics.append((step, metrics))
        for hook in hooks:
          hook(step)
        stopping = (manager.reached_preemption(step) if jax.process_count() > 1
                    else stop.signal_name is not None)
        last = step == total_steps or stopping
        log_now = step % config.log_every_steps == 0 or last
        save_now = step % config.checkpoint_every_steps == 0 or last
        eval_now = bool(evaluator) and not stopping and (
            step % eval_every == 0 or last)
        if log_now or save_now or eval_now:
          # The only host synchronisation: the metrics since the last log,
          # checked before anything is saved.
          fetched = jax.device_get(pending_metrics)
          _raise_if_non_finite(fetched, last_saved, workdir)
        if log_now:
          summary = {k: float(np.mean([m[k] for _, m in fetched]))
                     for k in fetched[0][1]}
          summary['epoch'] = step / epoch_steps
          writer.write_scalars(step, summary)
          pending_metrics = []
        sample_now = step % config.sample_every_steps == 0 or (
            step == total_steps)
        if recipe.ema_decay and (sample_now or save_now or eval_now):
          g_state = p_recompute_ema_stats(g_state, step_rng)
        if sample_now:
          write_samples(step)
        if save_now or eval_now:
          states = host_states()
          _raise_if_non_finite(
              [(step, {f'parameter {jax.tree_util.keystr(path)}': value
                       for path, value in
                       jax.tree_util.tree_leaves_with_path(states)})],
              last_saved, workdir)
        if save_now:
          checkpoint.save(manager, step, *states, step_rng, config)
          last_saved = step
        if eval_now:
          results = evaluator(g_state)
          writer.write_scalars(step, results)
          checkpoint.save(best_manager, step, *states, step_rng, config,
                          metrics=results)
        if stopping:
          logging.info('Stopped at step %d (%s) after saving its checkpoint.',
                       step, stop.signal_name or 'preemption')
          break
  except BaseException:
    # Saves already under way are complete and good: let them commit before
    # the error ends the process.
    for pending in (manager, best_manager):
      if pending:
        with contextlib.suppress(Exception):
          pending.wait_until_finished()
    raise
  finally:
    writer.close()
  checkpoint.wait(manager)
  if best_manager:
    checkpoint.wait(best_manager)
  if is_chief:
    plots.write_plots(workdir)
  return host_states()
