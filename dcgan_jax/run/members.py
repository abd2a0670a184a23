"""A sweep's run, member by member: the loop trains the members of
config.sweep together (`gan.sweep`) and reports each of them and their
spread; `extract` writes one as a single run's checkpoint.

Names of what a sweep logs: `NAME` is the mean over members, `NAME/std`
(over members), `NAME/min`, `NAME/max` and `NAME/member_K` member K's value
(K counts members, `gan.sweep.members(config)[K]` its seed and values);
an evaluation adds `NAME/best_member`.
"""

import os
from typing import Any, Callable, Optional

import jax
import ml_collections
import numpy as np

from dcgan_jax.gan import sweep
from dcgan_jax.gan import train_states
from dcgan_jax.output import metrics_file
from dcgan_jax.output import paths
from dcgan_jax.run import checkpoint
from dcgan_jax.run import config_schema

MEMBER = '/member_'


def summarize(values: dict[str, np.ndarray]) -> dict[str, float]:
  """{NAME: mean, NAME/std, NAME/min, NAME/max, NAME/member_K} of
  per-member values {NAME: (members,)}."""
  summary = {}
  for name, per_member in values.items():
    per_member = np.asarray(per_member, np.float64)
    summary.update({name: per_member.mean(), f'{name}/std': per_member.std(),
                    f'{name}/min': per_member.min(),
                    f'{name}/max': per_member.max()})
    summary.update({f'{name}{MEMBER}{k}': value
                    for k, value in enumerate(per_member)})
  return {name: float(value) for name, value in summary.items()}


def summarize_steps(fetched: list[tuple[int, Any]],
                    stacked: bool) -> dict[str, float]:
  """The mean of each metric over fetched (step, metrics) and the devices;
  with `stacked` (a sweep's) per member, then `summarize`d."""
  if not stacked:
    return {k: float(np.mean([m[k] for _, m in fetched]))
            for k in fetched[0][1]}
  return summarize({k: np.mean([m[k] for _, m in fetched], axis=(0, 1))
                    for k in fetched[0][1]})


def per_member(series: dict[str, Any], name: str) -> list[Any]:
  """[member 0's, member 1's, ...] entries of NAME/member_K in a
  {name: value} record or series."""
  count = sum(1 for key in series if key.startswith(name + MEMBER))
  return [series[f'{name}{MEMBER}{k}'] for k in range(count)]


def evaluated(workdir: paths.PathLike, metric: str,
              step: Optional[int] = None
              ) -> tuple[int, list[dict[str, Any]], np.ndarray]:
  """(step, `sweep.members`, each member's value) of a sweep's metric in
  its metrics.jsonl at `step`, by default its last evaluation.

  Raises:
    ValueError: if workdir is not a sweep that logged the metric there.
  """
  manager = checkpoint.create_manager(workdir, read_only=True)
  config = checkpoint.restore_config(
      manager, checkpoint.latest_step_or_raise(manager, workdir))
  listed = sweep.members(config)
  series = metrics_file.read(workdir)
  if listed is None or f'{metric}{MEMBER}0' not in series:
    logged = sorted({name.split(MEMBER)[0] for name in series
                     if MEMBER in name})
    raise ValueError(
        f'{workdir} has no per-member {metric!r}: '
        + ('it is a single run, not a sweep.' if listed is None else
           f'its sweep logged {", ".join(logged) or "nothing per member"}.'))
  logged_steps, _ = series[f'{metric}{MEMBER}0']
  step = int(logged_steps[-1]) if step is None else step
  if step not in logged_steps:
    raise ValueError(f'{workdir} evaluated {metric} at steps '
                     f'{logged_steps.tolist()}, not at {step}.')
  at = list(logged_steps).index(step)
  return step, listed, np.array([steps_values[1][at] for steps_values
                                 in per_member(series, metric)])


def evaluate(evaluator: Callable[[Any], dict[str, float]], g_states: Any,
             num_members: int, metric: str, mode: str
             ) -> tuple[dict[str, float], int, dict[str, float]]:
  """Evaluates each member of replicated stacked G states (every member
  with the same z, so the members' values are paired).

  Returns:
    (the summary of every metric with NAME/best_member, the best member by
    `metric` (`mode` 'min' or 'max'), that member's own results).
  """
  results = [evaluator(sweep.member(g_states, k, axis=1))
             for k in range(num_members)]
  values = np.array([r[metric] for r in results])
  best = int(np.argmin(values) if mode == 'min' else np.argmax(values))
  summary = summarize({name: [r[name] for r in results]
                       for name in results[0]})
  summary[f'{metric}/best_member'] = float(best)
  return summary, best, results[best]


def _free_bytes(device: jax.Device) -> Optional[int]:
  """Memory a new allocation on `device` can take: the accelerator's free
  memory, or on CPU the host's available memory."""
  stats = device.memory_stats()
  if stats and 'bytes_limit' in stats:
    return stats['bytes_limit'] - stats.get('bytes_in_use', 0)
  if device.platform == 'cpu' and os.path.exists('/proc/meminfo'):
    with open('/proc/meminfo') as f:
      for line in f:
        if line.startswith('MemAvailable:'):
          return int(line.split()[1]) * 1024
  return None


def check_memory(compiled: Any, num_members: int) -> None:
  """Refuses a sweep whose compiled step needs more memory than is free,
  before it runs, with the estimate and the members that would fit.

  Raises:
    config_schema.ConfigError: naming config.sweep.seeds.
  """
  stats = compiled.memory_analysis()
  if isinstance(stats, (list, tuple)):
    stats = stats[0] if stats else None
  devices = jax.local_devices()
  free = _free_bytes(devices[0])
  if stats is None or free is None:
    return
  # The states are allocated already and the outputs reuse their (donated)
  # buffers: what the step adds is its temporaries and undonated outputs.
  need = (stats.temp_size_in_bytes + stats.output_size_in_bytes
          - stats.alias_size_in_bytes)
  if devices[0].platform == 'cpu':
    need *= len(devices)  # CPU devices share the host's memory.
  if need > free:
    fit = int(num_members * free / need)
    raise config_schema.ConfigError(
        f'config.sweep.seeds: {num_members} members need about '
        f'{need / 2**30:.1f} GiB for a step (the compiled step\'s buffers), '
        f'more than the {free / 2**30:.1f} GiB free on '
        f'{devices[0].platform}; about {fit} would fit. Use fewer members '
        'or a smaller batch.')


def extract(workdir: paths.PathLike, k: int, out: paths.PathLike,
            step: Optional[int] = None) -> tuple[int, ml_collections.ConfigDict]:
  """Writes member k of a sweep's checkpoint (`step`, else the latest) as
  the checkpoint of the single run it computes, at the same step, in
  `out`; sample, evaluate, explore and main (to go on training) read it.

  Returns:
    (the step, the member's config).

  Raises:
    ValueError: if workdir's checkpoint is not a sweep's, or has no member k.
  """
  manager = checkpoint.create_manager(workdir, read_only=True)
  step = checkpoint.latest_step_or_raise(manager, workdir, step)
  config = checkpoint.restore_config(manager, step)
  listed = sweep.members(config)
  if listed is None:
    raise ValueError(f'{manager.directory / str(step)} holds a single run, '
                     'not a sweep: use its workdir as it is.')
  if not 0 <= k < len(listed):
    raise ValueError(f'--member={k}: the sweep in {workdir} has members 0 to '
                     f'{len(listed) - 1}.')
  g_states, d_states = sweep.create_member_states(config)
  _, keys = sweep.member_keys([m['seed'] for m in listed])
  g_states, d_states, keys = checkpoint.restore(manager, step, g_states,
                                                d_states, keys)
  if checkpoint.checkpoint_dir(out).exists() and any(
      checkpoint.checkpoint_dir(out).iterdir()):
    raise ValueError(f'--out={out} holds checkpoints already: give a new '
                     'directory.')
  single = sweep.member_config(config, k)
  out_manager = checkpoint.create_manager(out)
  checkpoint.save(out_manager, step,
                  *single_run_states(g_states, d_states, keys, k), single)
  checkpoint.wait(out_manager)
  return step, single


def single_run_states(g_states: train_states.GeneratorState,
                      d_states: train_states.TrainState, keys: jax.Array,
                      k: int) -> tuple[Any, Any, jax.Array]:
  """Member k's (g_state, d_state, step key) from host stacked states, as
  the single run's."""
  g_state, d_state = sweep.member((g_states, d_states), k)
  return (sweep.single_run_state(g_state), sweep.single_run_state(d_state),
          keys[k])
