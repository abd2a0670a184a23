"""MNIST at its native 28x28x1; Fashion-MNIST and KMNIST reuse this setup."""

from configs import default


def get_config():
  config = default.get_config()
  config.data.name = 'mnist'
  config.data.image_size = 28
  config.data.channels = 1
  config.batch_size = 128
  config.num_epochs = 25
  config.log_every_steps = 100
  config.sample_every_steps = 469  # About once per epoch.
  config.checkpoint_every_steps = 469
  config.eval.metrics = 'classifier_fd,classifier_kid'
  return config
