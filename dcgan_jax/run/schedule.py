"""When the training loop logs, samples, saves, evaluates and stops, and
the signals that ask it to stop."""

import dataclasses
import signal
import threading
from typing import Any

from absl import logging
import jax


@dataclasses.dataclass(frozen=True)
class Actions:
  """What the loop does after a step's update."""
  log: bool
  sample: bool
  save: bool
  evaluate: bool
  stop: bool

  @property
  def fetch_metrics(self) -> bool:
    """Whether the step's metrics come back from the devices: the only host
    synchronisation, checked before anything is saved."""
    return self.log or self.save or self.evaluate

  @property
  def uses_g(self) -> bool:
    """Whether G's EMA weights are used (and need their statistics)."""
    return self.sample or self.save or self.evaluate


@dataclasses.dataclass(frozen=True)
class Schedule:
  """Every `*_every` steps, and at the last step; on a stop (a signal or a
  preemption) the loop logs and saves, but does not evaluate or sample.

  Attributes:
    total_steps: the run's last step.
    log_every, sample_every, checkpoint_every: intervals in steps.
    eval_every: interval in steps; 0 = no evaluation.
  """
  total_steps: int
  log_every: int
  sample_every: int
  checkpoint_every: int
  eval_every: int = 0

  @classmethod
  def from_config(cls, config: Any, total_steps: int, epoch_steps: int,
                  evaluating: bool) -> 'Schedule':
    """config's intervals; eval_every_steps = -1 is once per epoch."""
    eval_every = (config.eval_every_steps if config.eval_every_steps > 0
                  else epoch_steps)
    return cls(total_steps, config.log_every_steps, config.sample_every_steps,
               config.checkpoint_every_steps, eval_every if evaluating else 0)

  def at(self, step: int, stopping: bool = False) -> Actions:
    last = step == self.total_steps
    end = last or stopping
    return Actions(
        log=step % self.log_every == 0 or end,
        sample=step % self.sample_every == 0 or last,
        save=step % self.checkpoint_every == 0 or end,
        evaluate=bool(self.eval_every) and not stopping and (
            step % self.eval_every == 0 or last),
        stop=stopping)


class StopOnSignal:
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
