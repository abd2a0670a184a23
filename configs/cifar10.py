"""CIFAR-10 at its native 32x32x3."""

from configs import default


def get_config():
  config = default.get_config()
  config.data.name = 'cifar10'
  config.data.image_size = 32
  config.data.channels = 3
  config.batch_size = 128
  config.num_epochs = 25
  config.sample_every_steps = 390  # About once per epoch.
  config.checkpoint_every_steps = 390
  config.eval.metrics = 'classifier_fd,classifier_kid'
  # A small CNN reaches ~70% on CIFAR-10 in a few epochs.
  config.eval.classifier_epochs = 10
  config.eval.min_classifier_accuracy = 0.6
  return config
