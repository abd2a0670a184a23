"""Redraws a run's plots (`output.plots.write_plots`): losses, D outputs and
metrics, the GIF of its sample grids and the real-vs-fake figure.

  python -m dcgan_jax.plots --workdir=runs/fashion_mnist
"""

from absl import app
from absl import flags

from dcgan_jax.output import plots
from dcgan_jax.run import cli


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'Unexpected arguments: {argv[1:]}')
  for path in plots.write_plots(flags.FLAGS.workdir):
    print(path)


if __name__ == '__main__':
  flags.DEFINE_string('workdir', None, "A training run's workdir.")
  flags.mark_flag_as_required('workdir')
  cli.run(main)
