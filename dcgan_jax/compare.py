"""Compares two sweeps' recipes over their seeds.

  python -m dcgan_jax.compare --workdirs=runs/plain,runs/ema \
      [--metric=classifier_fd] [--step=10000]

Prints each recipe's metric as mean +- std over its members, and B - A with
a 95% confidence interval: paired by seed where both sweeps trained the
same seeds (then member k of each started from the same seed and was
evaluated on the same z), Welch's t otherwise.
"""

from typing import Optional

from absl import app
from absl import flags
import numpy as np

from dcgan_jax import evaluation
from dcgan_jax.evaluation import comparison
from dcgan_jax.run import checkpoint
from dcgan_jax.run import cli
from dcgan_jax.run import members

FLAGS = flags.FLAGS


def _over_seeds(workdir: str, metric: str, step: Optional[int]
                ) -> tuple[int, list[int], np.ndarray]:
  """(step, seeds, values) of a sweep over seeds alone."""
  at, listed, values = members.evaluated(workdir, metric, step)
  swept = sorted({key for member in listed for key in member} - {'seed'})
  if swept:
    raise ValueError(f'{workdir} also sweeps {", ".join(swept)}: its members '
                     'are not one recipe; compare sweeps over seeds alone.')
  return at, [member['seed'] for member in listed], values


def compare(workdir_a: str, workdir_b: str, metric: str = '',
            step: Optional[int] = None, confidence: float = 0.95) -> str:
  """The comparison's report: a line per sweep and one for B - A.

  Raises:
    ValueError: if either workdir is not a sweep that evaluated the metric.
  """
  if not metric:
    manager = checkpoint.create_manager(workdir_a, read_only=True)
    metric = evaluation.best_metric(checkpoint.restore_config(
        manager, checkpoint.latest_step_or_raise(manager, workdir_a)))
  (step_a, seeds_a, a), (step_b, seeds_b, b) = (
      _over_seeds(w, metric, step) for w in (workdir_a, workdir_b))
  paired = seeds_a == seeds_b
  diff = comparison.difference(a, b, paired, confidence)
  better = {'min': 'lower', 'max': 'higher'}[evaluation.best_mode(metric)]
  lines = [f'{metric} ({better} is better), mean +- std over seeds:']
  for name, workdir, at, seeds, values in (('A', workdir_a, step_a, seeds_a, a),
                                           ('B', workdir_b, step_b, seeds_b, b)):
    lines.append(f'  {name} {workdir} (step {at}, seeds {seeds}): '
                 f'{values.mean():.4g} +- {values.std(ddof=1):.2g}')
  how = (f'paired by seed, t over {len(a)} seeds' if paired else
         f"Welch's t, {diff.df:.1f} degrees of freedom")
  lines.append(f'  B - A: {diff.mean:+.4g}, {confidence:.0%} CI '
               f'[{diff.low:+.4g}, {diff.high:+.4g}] ({how}; t = {diff.t:.2f})')
  return '\n'.join(lines)


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'Unexpected arguments: {argv[1:]}')
  checkpoint.quiet_orbax_info_logs()
  workdirs = FLAGS.workdirs.split(',')
  if len(workdirs) != 2:
    raise app.UsageError(f'--workdirs={FLAGS.workdirs}: give two sweeps\' '
                         'workdirs, A,B.')
  try:
    print(compare(*workdirs, FLAGS.metric, FLAGS.step))
  except (ValueError, FileNotFoundError) as e:
    raise SystemExit(f'Error: {e}') from None


if __name__ == '__main__':
  flags.DEFINE_string('workdirs', None, 'Two sweeps\' workdirs: A,B.')
  flags.DEFINE_string('metric', '', 'An evaluated metric (default: the best '
                      'checkpoint\'s, eval.best_metric of A).')
  flags.DEFINE_integer('step', None, 'The evaluation step (default: each '
                       'sweep\'s last).')
  flags.mark_flags_as_required(['workdirs'])
  cli.run(main)
