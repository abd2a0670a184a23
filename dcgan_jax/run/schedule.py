"""When the training loop logs, samples, saves, evaluates and stops."""

import dataclasses
from typing import Any


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
