"""Command-line entry point: flags only; the logic lives in `train.py`.

  python -m dcgan_jax.main --config=configs/celeba.py --workdir=runs/celeba \
      [--config.batch_size=256 ...]

Multi-host (TPU pods, SLURM, or explicit coordinator flags): add --multihost.
"""

from absl import app
from absl import flags
from absl import logging
import jax
from ml_collections import config_flags

from dcgan_jax import checkpoint
from dcgan_jax import input_pipeline
from dcgan_jax import train

FLAGS = flags.FLAGS
flags.DEFINE_string('workdir', None,
                    'Directory for checkpoints, samples and TensorBoard logs.')
config_flags.DEFINE_config_file(
    'config', None, 'Path to a config file with get_config().',
    lock_config=True)
flags.DEFINE_bool(
    'multihost', False,
    'Call jax.distributed.initialize() first (a run over several hosts).')
flags.DEFINE_string('coordinator_address', None,
                    'With --multihost: host:port of process 0, where the '
                    'cluster is not detected automatically (TPU, SLURM, MPI).')
flags.DEFINE_integer('num_processes', None, 'With --multihost: process count.')
flags.DEFINE_integer('process_id', None, 'With --multihost: this process.')
flags.mark_flags_as_required(['config', 'workdir'])


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'Unexpected arguments: {argv[1:]}')
  checkpoint.quiet_orbax_info_logs()
  if FLAGS.multihost:
    jax.distributed.initialize(
        coordinator_address=FLAGS.coordinator_address,
        num_processes=FLAGS.num_processes, process_id=FLAGS.process_id)
  input_pipeline.hide_gpus_from_tensorflow()
  logging.info('JAX process %d/%d, local devices: %s', jax.process_index(),
               jax.process_count(), jax.local_devices())
  train.train_and_evaluate(FLAGS.config, FLAGS.workdir)


if __name__ == '__main__':
  app.run(main)
