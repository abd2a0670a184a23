"""A sweep's members as single runs.

  python -m dcgan_jax.sweep extract --workdir=runs/sweep --member=2 \
      --out=runs/sweep_member2 [--step=S]

writes member 2 of the sweep's checkpoint (`--step`, else the latest) as
the checkpoint of the single run it computes (its seed, the sweep's data
order), at the same step; sample, evaluate and explore read `--out`, and
main trains it on.
"""

from absl import app
from absl import flags

from dcgan_jax.run import checkpoint
from dcgan_jax.run import cli
from dcgan_jax.run import members

FLAGS = flags.FLAGS


def main(argv):
  if argv[1:] != ['extract']:
    raise app.UsageError(f'Expected the command extract, got {argv[1:]}.')
  checkpoint.quiet_orbax_info_logs()
  try:
    step, config = members.extract(FLAGS.workdir, FLAGS.member, FLAGS.out,
                                   FLAGS.step)
  except (ValueError, FileNotFoundError) as e:
    raise SystemExit(f'Error: {e}') from None
  print(f'Member {FLAGS.member} (seed {config.seed}) at step {step} -> '
        f'{checkpoint.checkpoint_dir(FLAGS.out)}')


if __name__ == '__main__':
  flags.DEFINE_string('workdir', None, 'The sweep\'s workdir.')
  flags.DEFINE_integer('member', None, 'The member, from 0.')
  flags.DEFINE_string('out', None, 'The new single run\'s workdir (without '
                      'checkpoints).')
  flags.DEFINE_integer('step', None, 'Checkpoint step (default: the latest).')
  flags.mark_flags_as_required(['workdir', 'member', 'out'])
  cli.run(main)
