"""The run's scalar history as JSON lines (workdir/metrics.jsonl), beside
TensorBoard's event files, for plots and scripts that should not need
TensorFlow to read it."""

import json
from typing import Any, Mapping

from clu import metric_writers
import numpy as np

from dcgan_jax.output import paths

FILENAME = 'metrics.jsonl'


class JsonlWriter(metric_writers.MetricWriter):
  """Appends one line {"step": s, name: value, ...} per write_scalars call.

  Each line is flushed as written, so a killed run loses at most the line
  being written; read() skips such a partial line.
  """

  def __init__(self, workdir: paths.PathLike):
    self._file = (paths.path(workdir) / FILENAME).open('a')

  def write_scalars(self, step: int, scalars: Mapping[str, Any]) -> None:
    line = {'step': int(step), **{k: float(v) for k, v in scalars.items()}}
    self._file.write(json.dumps(line) + '\n')
    self._file.flush()

  def write_summaries(self, step, values, metadata=None):
    del step, values, metadata

  def write_images(self, step, images):
    del step, images

  def write_videos(self, step, videos):
    del step, videos

  def write_audios(self, step, audios, *, sample_rate):
    del step, audios, sample_rate

  def write_texts(self, step, texts):
    del step, texts

  def write_histograms(self, step, arrays, num_buckets=None):
    del step, arrays, num_buckets

  def write_hparams(self, hparams):
    del hparams

  def flush(self):
    self._file.flush()

  def close(self):
    self._file.close()


def read(workdir: paths.PathLike
         ) -> dict[str, tuple[np.ndarray, np.ndarray]]:
  """{name: (steps, values)} sorted by step. Where a resumed run logged a
  step again, its later value wins."""
  path = paths.path(workdir) / FILENAME
  series: dict[str, dict[int, float]] = {}
  if path.exists():
    with path.open('r') as f:
      for line in f:
        try:
          record = json.loads(line)
        except json.JSONDecodeError:
          continue  # The partial last line of a killed run.
        step = record.pop('step')
        for name, value in record.items():
          series.setdefault(name, {})[step] = value
  return {name: (np.array(sorted(values)),
                 np.array([values[s] for s in sorted(values)]))
          for name, values in series.items()}
