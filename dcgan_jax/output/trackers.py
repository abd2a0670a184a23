"""Experiment trackers beside TensorBoard: Weights & Biases, MLflow and
Neptune, each a clu `MetricWriter` that receives the run's scalars, images
and hyperparameters.

`config.trackers` names them (comma-separated); each is an optional extra
(`pip install 'dcgan_jax[wandb]'`), checked at start. A resumed run logs to
the same tracker run: its id comes from the workdir.
"""

import hashlib
import importlib.util
import time
from typing import Any, Mapping

from clu import metric_writers
import ml_collections
import numpy as np

from dcgan_jax import choices
from dcgan_jax.output import paths

# Name -> the module its client library provides (and the extra to install).
TRACKERS = {'wandb': 'wandb', 'mlflow': 'mlflow', 'neptune': 'neptune'}


def tracker_names(config: Any) -> list[str]:
  """The trackers config.trackers names, each known and installed.

  Raises:
    ValueError: naming an unknown tracker (with the known ones) or the extra
      to install for a missing client library.
  """
  names = choices.check_list('config.trackers', config.trackers, TRACKERS)
  for name in names:
    if importlib.util.find_spec(TRACKERS[name]) is None:
      raise ValueError(
          f'config.trackers names {name!r}, whose client library is not '
          f"installed: pip install 'dcgan_jax[{name}]'.")
  return names


def _run_id(workdir: paths.PathLike) -> str:
  """A tracker run id that a resumed run finds again."""
  return hashlib.sha256(str(paths.path(workdir)).encode()).hexdigest()[:16]


def _run_name(config: Any, workdir: paths.PathLike) -> str:
  return config.tracking.run_name or paths.path(workdir).name


class _Writer(metric_writers.MetricWriter):
  """The MetricWriter methods trackers do not take: ignored."""

  def write_summaries(self, step, values, metadata=None):
    pass

  def write_videos(self, step, videos):
    pass

  def write_audios(self, step, audios, *, sample_rate):
    pass

  def write_texts(self, step, texts):
    pass

  def write_histograms(self, step, arrays, num_buckets=None):
    pass

  def flush(self):
    pass


def _scalars(scalars: Mapping[str, Any]) -> dict[str, float]:
  return {k: float(np.asarray(v)) for k, v in scalars.items()}


def _images(batch: Any) -> np.ndarray:
  """(N, H, W, C) uint8 -> (N, H, W) for one channel, as the clients take
  gray images."""
  batch = np.asarray(batch)
  return batch[..., 0] if batch.shape[-1] == 1 else batch


class WandbWriter(_Writer):
  """Logs to a W&B run (tracking.wandb_mode 'offline' writes workdir/wandb
  only; `wandb sync` uploads it later)."""

  def __init__(self, config: Any, workdir: paths.PathLike):
    import wandb  # pylint: disable=g-import-not-at-top
    self._wandb = wandb
    self._run = wandb.init(
        project=config.tracking.project, name=_run_name(config, workdir),
        id=_run_id(workdir), resume='allow', dir=str(paths.path(workdir)),
        mode=config.tracking.wandb_mode or None,
        settings=wandb.Settings(silent=True))

  def write_scalars(self, step, scalars):
    self._run.log(_scalars(scalars), step=step)

  def write_images(self, step, images):
    self._run.log({name: [self._wandb.Image(i) for i in _images(batch)]
                   for name, batch in images.items()}, step=step)

  def write_hparams(self, hparams):
    self._run.config.update(dict(hparams), allow_val_change=True)

  def close(self):
    self._run.finish()


class MlflowWriter(_Writer):
  """Logs to an MLflow run (tracking.mlflow_uri: a server, or a local
  store such as sqlite:///mlflow.db; '' = MLflow's default)."""

  def __init__(self, config: Any, workdir: paths.PathLike):
    from mlflow import entities  # pylint: disable=g-import-not-at-top
    from mlflow.tracking import MlflowClient  # pylint: disable=g-import-not-at-top
    self._entities = entities
    self._client = MlflowClient(tracking_uri=config.tracking.mlflow_uri or None)
    experiment = self._client.get_experiment_by_name(config.tracking.project)
    experiment_id = (experiment.experiment_id if experiment else
                     self._client.create_experiment(config.tracking.project))
    run_id = _run_id(workdir)
    found = self._client.search_runs(
        [experiment_id], f"tags.dcgan_jax_run = '{run_id}'", max_results=1)
    if found:
      self.run_id = found[0].info.run_id
      self._client.update_run(self.run_id, status='RUNNING')
    else:
      self.run_id = self._client.create_run(
          experiment_id, run_name=_run_name(config, workdir),
          tags={'dcgan_jax_run': run_id,
                'workdir': str(paths.path(workdir))}).info.run_id

  def write_scalars(self, step, scalars):
    timestamp = int(1000 * time.time())
    self._client.log_batch(self.run_id, metrics=[
        self._entities.Metric(k, v, timestamp, step)
        for k, v in _scalars(scalars).items()])

  def write_images(self, step, images):
    for name, batch in images.items():
      for i, image in enumerate(_images(batch)):
        self._client.log_image(self.run_id, image,
                               key=name if len(batch) == 1 else f'{name}_{i}',
                               step=step)

  def write_hparams(self, hparams):
    params = [self._entities.Param(k, str(v)[:6000])
              for k, v in sorted(hparams.items())]
    for i in range(0, len(params), 100):  # MLflow's batch limit.
      self._client.log_batch(self.run_id, params=params[i:i + 100])

  def close(self):
    self._client.set_terminated(self.run_id)


class NeptuneWriter(_Writer):
  """Logs to a Neptune run (tracking.neptune_mode 'offline' keeps it in
  .neptune for `neptune sync`; tracking.neptune_project, else
  NEPTUNE_PROJECT)."""

  def __init__(self, config: Any, workdir: paths.PathLike):
    import neptune  # pylint: disable=g-import-not-at-top
    from neptune.types import File  # pylint: disable=g-import-not-at-top
    self._file = File
    self._run = neptune.init_run(
        project=config.tracking.neptune_project or None,
        custom_run_id=_run_id(workdir), name=_run_name(config, workdir),
        mode=config.tracking.neptune_mode or None,
        capture_hardware_metrics=False, capture_stdout=False,
        capture_stderr=False, source_files=[])

  def write_scalars(self, step, scalars):
    for name, value in _scalars(scalars).items():
      self._run[name].append(value, step=step)

  def write_images(self, step, images):
    for name, batch in images.items():
      for image in _images(batch):
        self._run[name].append(self._file.as_image(image / 255.0), step=step)

  def write_hparams(self, hparams):
    self._run['parameters'] = {k: v if isinstance(v, (int, float, str, bool))
                               else str(v) for k, v in hparams.items()}

  def close(self):
    self._run.stop()


_WRITERS = {'wandb': WandbWriter, 'mlflow': MlflowWriter,
            'neptune': NeptuneWriter}


def create_writers(config: ml_collections.ConfigDict,
                   workdir: paths.PathLike) -> list[metric_writers.MetricWriter]:
  """A writer per tracker config.trackers names (call on process 0)."""
  return [_WRITERS[name](config, workdir) for name in tracker_names(config)]
