"""Command-line entry point: flags only; the logic lives in `loop.py`.

  python -m dcgan_jax.main --config=configs/celeba.py --workdir=runs/celeba \
      [--config.batch_size=256 ...]

Several processes (hosts): add --multihost to every process's command. On
SLURM, Cloud TPU VMs and Open MPI JAX finds the other processes itself;
elsewhere pass --coordinator_address, --num_processes and --process_id.
--dry_run prints each process's devices, batch and data share, and exits.

On Linux the program first restarts itself with glibc's malloc set to use
transparent huge pages (`runtime.restart_with_huge_pages`), unless
GLIBC_TUNABLES already sets that.
"""

import os
import sys

from dcgan_jax.cpu import runtime

if __name__ == '__main__':
  # Before jax is imported: the restart is cheap now, and the tunable must be
  # there from the start (see `memory`).
  runtime.restart_with_huge_pages()

# pylint: disable=g-import-not-at-top,wrong-import-position
from absl import app
from absl import flags
from absl import logging
import jax
from ml_collections import config_flags

from dcgan_jax.data import input_pipeline
from dcgan_jax.data import sources
from dcgan_jax.run import checkpoint
from dcgan_jax.run import cli
from dcgan_jax.run import loop

FLAGS = flags.FLAGS


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'Unexpected arguments: {argv[1:]}')
  checkpoint.quiet_orbax_info_logs()
  if runtime.HUGE_PAGES_TUNABLE in os.environ.get('GLIBC_TUNABLES', ''):
    logging.info('GLIBC_TUNABLES=%s', os.environ['GLIBC_TUNABLES'])
  if FLAGS.multihost:
    jax.distributed.initialize(
        coordinator_address=FLAGS.coordinator_address,
        num_processes=FLAGS.num_processes, process_id=FLAGS.process_id,
        initialization_timeout=FLAGS.initialization_timeout_s,
        heartbeat_timeout_seconds=FLAGS.heartbeat_timeout_s)
  sources.hide_gpus_from_tensorflow()
  logging.info('JAX process %d/%d, local devices: %s', jax.process_index(),
               jax.process_count(), jax.local_devices())
  if FLAGS.dry_run:
    print(input_pipeline.describe_layout(FLAGS.config), flush=True)
    return
  try:
    loop.train_and_evaluate(FLAGS.config, FLAGS.workdir)
  except BaseException:
    if jax.process_count() == 1:
      raise
    # Exiting normally would wait at JAX's shutdown barrier for processes
    # still training; leave at once instead, and JAX's heartbeat check stops
    # the others (train_and_evaluate has let started saves finish).
    logging.exception('Process %d failed.', jax.process_index())
    logging.flush()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(1)  # pylint: disable=protected-access


if __name__ == '__main__':
  flags.DEFINE_string('workdir', None,
                      'Directory (or gs:// path) for checkpoints, samples and '
                      'TensorBoard logs; shared by all processes.')
  config_flags.DEFINE_config_file(
      'config', None, 'Path to a config file with get_config().',
      lock_config=True)
  flags.DEFINE_bool(
      'multihost', False,
      'Call jax.distributed.initialize() first (a run over several processes).')
  flags.DEFINE_string(
      'coordinator_address', None,
      'With --multihost: host:port of process 0, where the cluster is not '
      'detected automatically (SLURM, Cloud TPU, Open MPI).')
  flags.DEFINE_integer('num_processes', None,
                       'With --multihost: process count.')
  flags.DEFINE_integer('process_id', None, 'With --multihost: this process.')
  flags.DEFINE_integer(
      'heartbeat_timeout_s', 100,
      'With --multihost: a process silent this long counts as dead, and JAX '
      'stops every other process with an error.')
  flags.DEFINE_integer(
      'initialization_timeout_s', 300,
      'With --multihost: how long to wait for every process to connect.')
  flags.DEFINE_bool('dry_run', False,
                    "Print each process's devices, batch and data share, then "
                    'exit without training.')
  flags.mark_flags_as_required(['config', 'workdir'])
  cli.run(main)
