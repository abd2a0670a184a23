"""The DCGAN training loop: read top to bottom, one section per concern.

`train_and_evaluate(config, workdir)` trains on all local devices with
`jax.pmap` (and on every host of a multi-host run; `jax.jit` on a single
device), logs metrics to TensorBoard, the log and metrics.jsonl, writes
fixed-noise sample grids, evaluates config.eval.metrics (keeping the best
checkpoint by them) and keeps Orbax checkpoints; a run started on a workdir
with checkpoints resumes from the latest one. At the end it draws plots/.
With config.sweep it trains a sweep's members together (`gan.sweep`,
`members`).
On several processes every process trains and process 0 alone writes files
(`hosts`).
"""

import contextlib
import dataclasses
import functools
from typing import Any, Callable, Optional
import uuid

from absl import logging
from clu import metric_writers
from clu import parameter_overview
from clu import periodic_actions
from flax import jax_utils
import jax
import ml_collections
import numpy as np

from dcgan_jax.cpu import runtime
from dcgan_jax.data import input_pipeline
from dcgan_jax import evaluation
from dcgan_jax.gan import ema
from dcgan_jax.gan import forward
from dcgan_jax.gan import noise
from dcgan_jax.gan import steps
from dcgan_jax.gan import sweep
from dcgan_jax.gan import train_states
from dcgan_jax.output import images
from dcgan_jax.output import metrics_file
from dcgan_jax.output import paths
from dcgan_jax.output import plots
from dcgan_jax.output import trackers
from dcgan_jax.run import checkpoint
from dcgan_jax.run import config_schema
from dcgan_jax.run import hosts
from dcgan_jax.run import members
from dcgan_jax.run import schedule as schedule_lib

AXIS = 'batch'


def num_train_steps(config: Any, num_examples: int) -> int:
  """config.num_train_steps if positive, else num_epochs over the data (a
  positive number: `config_schema.validate`)."""
  if config.num_train_steps > 0:
    return config.num_train_steps
  return config.num_epochs * steps_per_epoch(config, num_examples)


def steps_per_epoch(config: Any, num_examples: int) -> int:
  """Steps per pass over the data (num_examples over all hosts); a step
  reads n_critic batches."""
  n_critic = train_states.Recipe.from_config(config).n_critic
  return max(1, num_examples // (config.batch_size * n_critic))


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
      value = np.ravel(value)
      if not np.all(np.isfinite(value)):
        raise FloatingPointError(
            f'{name} is {value[~np.isfinite(value)][0]} at step {step}: '
            'training diverged. No checkpoint holds it; the last one saved '
            f'is step {last_saved} in {checkpoint.checkpoint_dir(workdir)}.')


def _on_device_axis(step: Callable[..., Any]) -> Callable[..., Any]:
  """`step(*arrays, rng)` on arrays (states, batch) with a leading device
  axis of length 1, as pmap over one device takes and returns them (under
  jit the axis costs nothing)."""
  def run(*args):
    *arrays, rng = args
    squeezed = jax.tree.map(lambda x: x[0], arrays)
    return jax.tree.map(lambda x: x[None], step(*squeezed, rng))
  return run


def _compile_updates(config: ml_collections.ConfigDict,
                     recipe: train_states.Recipe, stacked: bool
                     ) -> tuple[Callable[..., Any], Callable[..., Any]]:
  """(train step, EMA statistics recomputation) on replicated states:
  pmapped over the local devices, the global batch split over every device
  of every host; on a single device jitted on the same layout instead,
  where pmap's collectives over one device cost time. With `stacked`
  (a sweep) both run over the members inside (`sweep.over_members`), the
  batch shared (with sweep.own_data, one per member)."""
  train_step = functools.partial(steps.train_step, recipe=recipe)
  recompute_ema_stats = functools.partial(
      ema.recompute_ema_batch_stats, num_batches=config.ema_stats_batches,
      batch_size=config.batch_size // jax.device_count())
  if stacked:
    train_step = functools.partial(
        sweep.sweep_step, recipe=recipe,
        hyperparameters=sweep.step_hyperparameters(config),
        batch_per_member=sweep.own_data(config))
    recompute_ema_stats = sweep.over_members(recompute_ema_stats)
  if jax.device_count() == 1:
    return (jax.jit(_on_device_axis(train_step), donate_argnums=(0, 1)),
            jax.jit(_on_device_axis(recompute_ema_stats), donate_argnums=0))
  return (jax.pmap(functools.partial(train_step, axis_name=AXIS),
                   axis_name=AXIS, in_axes=(0, 0, 0, None),
                   donate_argnums=(0, 1)),
          jax.pmap(functools.partial(recompute_ema_stats, axis_name=AXIS),
                   axis_name=AXIS, in_axes=(0, None), donate_argnums=0))


def _create_writer(config: ml_collections.ConfigDict,
                   workdir: paths.PathLike, g_state: Any, d_state: Any
                   ) -> metric_writers.MultiWriter:
  """Process 0's writers (TensorBoard and the log, metrics.jsonl, the
  trackers); the other processes' write nothing."""
  if not hosts.is_chief():
    return metric_writers.MultiWriter([])
  parameter_overview.log_parameter_overview(g_state.params, msg='Generator')
  parameter_overview.log_parameter_overview(d_state.params,
                                            msg='Discriminator')
  return metric_writers.MultiWriter([
      metric_writers.create_default_writer(str(paths.path(workdir))),
      metrics_file.JsonlWriter(workdir),
      *trackers.create_writers(config, workdir)])


def _write_real_images(config: ml_collections.ConfigDict,
                       workdir: paths.PathLike, batch: Any) -> None:
  """A grid of the first real batch, for plots' real-vs-fake figure."""
  path = plots.real_images_path(workdir)
  if hosts.is_chief() and not path.exists():
    batch = np.asarray(batch)
    images.save_png(path, images.make_grid(images.to_uint8(
        batch.reshape(-1, *batch.shape[-3:])[:config.grid_images])))


def _raise_if_non_finite_parameters(states: Any, step: int, last_saved: int,
                                    workdir: paths.PathLike) -> None:
  leaves = jax.tree_util.tree_leaves_with_path(states)
  _raise_if_non_finite(
      [(step, {f'parameter {jax.tree_util.keystr(path)}': value
               for path, value in leaves})], last_saved, workdir)


_generate = jax.jit(forward.generate)
_generate_members = jax.jit(lambda g_states, z: sweep.over_members(
    functools.partial(forward.generate, z=z))(g_states))


@dataclasses.dataclass
class _Run:
  """A run as set up by `_start`: its states (replicated), keys, writers,
  data, compiled updates and schedule."""
  config: ml_collections.ConfigDict
  workdir: paths.PathLike
  recipe: train_states.Recipe
  g_state: Any
  d_state: Any
  step_rng: jax.Array
  start_step: int
  manager: Any
  best_manager: Any
  evaluator: Any
  writer: metric_writers.MultiWriter
  train_iter: Any
  schedule: schedule_lib.Schedule
  epoch_steps: int
  train_step: Callable[..., Any]
  recompute_ema_stats: Callable[..., Any]
  grid_z: jax.Array
  seeds: Optional[list[int]]  # Each sweep member's seed; None: one run.

  def write_samples(self, step: int) -> None:
    """Process 0's grid of G(image_z(config.seed, i)), i < grid_images; in
    a sweep a row per member, all of the same z."""
    if not hosts.is_chief():
      return
    g_state = jax_utils.unreplicate(self.g_state)
    if self.seeds:
      columns = max(1, len(self.grid_z) // len(self.seeds))
      fakes = _generate_members(g_state, self.grid_z[:columns])
      grid = images.make_grid(images.to_uint8(
          fakes.reshape(-1, *fakes.shape[2:])), ncols=columns)
    else:
      grid = images.make_grid(images.to_uint8(_generate(g_state,
                                                        self.grid_z)))
    images.save_png(paths.path(self.workdir) / 'samples' / f'{step:07d}.png',
                    grid)
    self.writer.write_images(step, {'samples': grid[None]})

  def host_states(self) -> tuple[train_states.GeneratorState,
                                 train_states.TrainState]:
    return jax.device_get(jax_utils.unreplicate((self.g_state,
                                                 self.d_state)))


def _start(config: ml_collections.ConfigDict,
           workdir: paths.PathLike) -> _Run:
  """Checks the config and workdir, then sets a run up: the feature
  networks (a bad path fails before anything compiles), states restored
  from the latest good checkpoint, writers, data and compiled updates."""
  config_schema.validate(config)
  _check_writable(workdir)
  evaluator = (evaluation.Evaluator(config)
               if evaluation.metric_names(config) else None)

  listed = sweep.members(config)
  seeds = [member['seed'] for member in listed] if listed else None
  # A sweep's members share what is not swept: member 0's config shows it.
  recipe = train_states.Recipe.from_config(
      sweep.member_config(config, 0) if listed else config)
  if seeds:
    _, step_rng = sweep.member_keys(seeds)
    g_state, d_state = sweep.create_member_states(config)
  else:
    init_rng, step_rng = noise.run_keys(config.seed)
    g_state, d_state = train_states.create_train_states(config, init_rng)
  manager = checkpoint.create_manager(
      workdir, max_to_keep=config.max_checkpoints_to_keep)
  restored = checkpoint.restore_latest_good(manager, workdir, config, g_state,
                                            d_state, step_rng)
  start_step = 0
  if restored:
    start_step, g_state, d_state, step_rng = restored
    logging.info('Resumed from %s at step %d.',
                 manager.directory / str(start_step), start_step)
  writer = _create_writer(config, workdir, g_state, d_state)
  if not start_step:
    writer.write_hparams(config_schema.flat_config(config))

  # D's step counts the batches read, whatever n_critic was before; a
  # sweep's members read the same ones, or with own_data each its seed's.
  data = dict(start_batch=int(np.ravel(d_state.step)[0]),
              batches_per_step=recipe.n_critic)
  if listed and sweep.own_data(config):
    train_iter, num_examples = input_pipeline.create_datasets(
        [sweep.member_config(config, k) for k in range(len(listed))], **data)
  else:
    train_iter, num_examples = input_pipeline.create_dataset(config, **data)
  total_steps = num_train_steps(config, num_examples)
  epoch_steps = steps_per_epoch(config, num_examples)
  best_manager = None
  if evaluator:
    metric = evaluation.best_metric(config)
    best_manager = checkpoint.create_manager(
        workdir, best_metric=metric, best_mode=evaluation.best_mode(metric))
  train_step, recompute_ema_stats = _compile_updates(config, recipe,
                                                     stacked=bool(seeds))
  return _Run(
      config=config, workdir=workdir, recipe=recipe,
      g_state=jax_utils.replicate(g_state),
      d_state=jax_utils.replicate(d_state), step_rng=step_rng,
      start_step=start_step, manager=manager, best_manager=best_manager,
      evaluator=evaluator, writer=writer,
      train_iter=jax_utils.prefetch_to_device(
          train_iter, config.data.prefetch_to_device),
      schedule=schedule_lib.Schedule.from_config(
          config, total_steps, epoch_steps, bool(evaluator)),
      epoch_steps=epoch_steps, train_step=train_step,
      recompute_ema_stats=recompute_ema_stats,
      grid_z=noise.image_z(config.seed, np.arange(config.grid_images),
                           config.model.nz), seeds=seeds)


def _evaluate(run: _Run, step: int, states: tuple[Any, Any]) -> None:
  """Evaluates G, logs the results and offers the checkpoint to the best
  slot; in a sweep, evaluates every member and offers the best member's
  checkpoint as that of the single run it computes (`evaluate --best`
  reads it as any run's)."""
  if not run.seeds:
    results = run.evaluator(run.g_state)
    run.writer.write_scalars(step, results)
    checkpoint.save(run.best_manager, step, *states, run.step_rng, run.config,
                    metrics=results)
    return
  metric = evaluation.best_metric(run.config)
  summary, best, results = members.evaluate(
      run.evaluator, run.g_state, len(run.seeds), metric,
      evaluation.best_mode(metric))
  run.writer.write_scalars(step, summary)
  checkpoint.save(run.best_manager, step,
                  *members.single_run_states(*states, run.step_rng, best),
                  sweep.member_config(run.config, best), metrics=results)


def _train(run: _Run) -> None:
  """The loop: a step, then what `run.schedule` says after it."""
  config, workdir = run.config, run.workdir
  hooks = []
  if hosts.is_chief():
    hooks.append(periodic_actions.ReportProgress(
        num_train_steps=run.schedule.total_steps, writer=run.writer))
  logging.info('Training for %d steps (%d per epoch) from step %d.',
               run.schedule.total_steps, run.epoch_steps, run.start_step)
  if run.start_step == 0:
    if run.recipe.ema_decay:
      run.g_state = run.recompute_ema_stats(run.g_state, run.step_rng)
    run.write_samples(0)
  pending_metrics = []  # (step, metrics) not yet fetched from the devices.
  last_saved = run.start_step
  with schedule_lib.StopOnSignal() as stop:
    for step in range(run.start_step + 1, run.schedule.total_steps + 1):
      with jax.profiler.StepTraceAnnotation('train', step_num=step):
        batch = next(run.train_iter)
        if step == run.start_step + 1:
          _write_real_images(config, workdir, batch)
          # Over several processes, a pmap compiled ahead would expect
          # every process's arrays: there it compiles on the first call.
          if jax.process_count() == 1:
            run.train_step = runtime.compile_now(
                run.train_step, run.g_state, run.d_state, batch, run.step_rng)
            if run.seeds:
              members.check_memory(run.train_step, len(run.seeds))
        run.g_state, run.d_state, metrics = run.train_step(
            run.g_state, run.d_state, batch, run.step_rng)
      pending_metrics.append((step, metrics))
      for hook in hooks:
        hook(step)
      do = run.schedule.at(step, stopping=(
          run.manager.reached_preemption(step) if jax.process_count() > 1
          else stop.signal_name is not None))
      if do.fetch_metrics:
        fetched = jax.device_get(pending_metrics)
        _raise_if_non_finite(fetched, last_saved, workdir)
      if do.log:
        summary = members.summarize_steps(fetched, bool(run.seeds))
        summary['epoch'] = step / run.epoch_steps
        run.writer.write_scalars(step, summary)
        pending_metrics = []
      if run.recipe.ema_decay and do.uses_g:
        run.g_state = run.recompute_ema_stats(run.g_state, run.step_rng)
      if do.sample:
        run.write_samples(step)
      if do.save or do.evaluate:
        states = run.host_states()
        _raise_if_non_finite_parameters(states, step, last_saved, workdir)
      if do.save:
        checkpoint.save(run.manager, step, *states, run.step_rng, config)
        last_saved = step
      if do.evaluate:
        _evaluate(run, step, states)
      if do.stop:
        logging.info('Stopped at step %d (%s) after saving its checkpoint.',
                     step, stop.signal_name or 'preemption')
        break


def train_and_evaluate(
    config: ml_collections.ConfigDict, workdir: paths.PathLike
) -> tuple[train_states.GeneratorState, train_states.TrainState]:
  """Trains G and D, resuming from workdir's latest good checkpoint if any.

  SIGTERM or SIGINT (a preemption, Ctrl-C) make it save a checkpoint at the
  current step and return.

  Returns:
    The final (g_state, d_state), unreplicated, as host numpy arrays.

  Raises:
    config_schema.ConfigError: for a config value a run cannot use, before
      anything is read or compiled.
    FloatingPointError: when a loss or a parameter stops being finite; no
      checkpoint with such values is written.
  """
  run = _start(config, workdir)
  try:
    _train(run)
  except BaseException:
    # Saves already under way are complete and good: let them commit before
    # the error ends the process.
    for pending in (run.manager, run.best_manager):
      if pending:
        with contextlib.suppress(Exception):
          pending.wait_until_finished()
    raise
  finally:
    run.writer.close()
  checkpoint.wait(run.manager)
  if run.best_manager:
    checkpoint.wait(run.best_manager)
  if hosts.is_chief():
    plots.write_plots(workdir)
  return run.host_states()
