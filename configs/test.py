"""A tiny run on random images that finishes in seconds on a CPU."""

from configs import default


def get_config():
  config = default.get_config()
  config.data.name = 'fake'
  config.data.image_size = 28
  config.data.channels = 1
  config.batch_size = 8
  config.num_train_steps = 4
  config.model.nz = 16
  config.model.ngf = 8
  config.model.ndf = 8
  config.log_every_steps = 2
  config.sample_every_steps = 2
  config.grid_images = 16
  config.checkpoint_every_steps = 2
  return config
