"""The training loop's periodic decisions."""

import os
import signal
import threading

import ml_collections

from dcgan_jax.run import schedule


def _steps(plan, action, stop_at=None):
  return [step for step in range(1, plan.total_steps + 1)
          if getattr(plan.at(step, stopping=step == stop_at), action)]


def test_every_interval_and_the_last_step():
  plan = schedule.Schedule(total_steps=10, log_every=3, sample_every=4,
                           checkpoint_every=5, eval_every=6)
  assert _steps(plan, 'log') == [3, 6, 9, 10]
  assert _steps(plan, 'sample') == [4, 8, 10]
  assert _steps(plan, 'save') == [5, 10]
  assert _steps(plan, 'evaluate') == [6, 10]
  assert _steps(plan, 'fetch_metrics') == [3, 5, 6, 9, 10]
  assert _steps(plan, 'uses_g') == [4, 5, 6, 8, 10]
  assert _steps(plan, 'stop') == []


def test_a_stop_logs_and_saves_but_does_not_evaluate_or_sample():
  plan = schedule.Schedule(total_steps=10, log_every=3, sample_every=4,
                           checkpoint_every=5, eval_every=1)
  actions = plan.at(7, stopping=True)
  assert (actions.log, actions.save, actions.stop) == (True, True, True)
  assert not actions.evaluate and not actions.sample
  assert plan.at(8, stopping=True).sample  # Its own interval still holds.


def test_from_config_evaluates_per_epoch_or_not_at_all():
  config = ml_collections.ConfigDict({
      'log_every_steps': 2, 'sample_every_steps': 3,
      'checkpoint_every_steps': 4, 'eval_every_steps': -1})
  plan = schedule.Schedule.from_config(config, total_steps=20,
                                       epoch_steps=7, evaluating=True)
  assert _steps(plan, 'evaluate') == [7, 14, 20]
  config.eval_every_steps = 5
  plan = schedule.Schedule.from_config(config, 20, 7, evaluating=True)
  assert _steps(plan, 'evaluate') == [5, 10, 15, 20]
  plan = schedule.Schedule.from_config(config, 20, 7, evaluating=False)
  assert _steps(plan, 'evaluate') == []


def test_sigterm_and_sigint_ask_to_stop_then_the_handlers_are_restored():
  # Signals go to the main thread, where pytest runs this.
  assert threading.current_thread() is threading.main_thread()
  before = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)}
  for signum in before:
    with schedule.StopOnSignal() as stop:
      assert stop.signal_name is None
      os.kill(os.getpid(), signum)
      assert stop.signal_name == signal.Signals(signum).name
    assert {s: signal.getsignal(s) for s in before} == before
