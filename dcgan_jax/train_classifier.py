"""Trains the classifier behind the offline metrics and caches it.

  python -m dcgan_jax.train_classifier --config=configs/fashion_mnist.py \
      [--config.eval.classifier_epochs=5]

Writes config.eval.classifier_path (default: a file per dataset under
config.eval.cache_dir), replacing an older one, and prints its test
accuracy. Exits with an error if the accuracy is below
config.eval.min_classifier_accuracy (the file is kept, with its accuracy).
Training runs do the same on first use when the file is missing.
"""

from absl import app
from absl import flags
from ml_collections import config_flags

from dcgan_jax.data import sources
from dcgan_jax.evaluation import classifier
from dcgan_jax.run import cli

def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'Unexpected arguments: {argv[1:]}')
  sources.hide_gpus_from_tensorflow()
  config = flags.FLAGS.config
  _, meta = classifier.train_and_save(config)
  path = classifier.default_path(config)
  print(f'{path}: test accuracy {meta["test_accuracy"]:.4f} on '
        f'{meta["num_test"]} images.')
  classifier.check_accuracy(meta, path, config)


if __name__ == '__main__':
  config_flags.DEFINE_config_file(
      'config', None, 'Path to a config file with get_config().',
      lock_config=True)
  flags.mark_flags_as_required(['config'])
  cli.run(main)
