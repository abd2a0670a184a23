"""CelebA at 64x64x3, batch 128: the PyTorch DCGAN tutorial's setting.

The tutorial's networks (`dcgan`: G 3,576,704 parameters, D 2,765,568),
Adam(2e-4, b1=0.5), BCE, 5 epochs, N(0, 0.02) weights.

TFDS cannot download CelebA automatically: prepare it with TFDS (manual
download into `data.path`), or point `--config.data.name=folder
--config.data.path=.../img_align_celeba` at the extracted images.
"""

from configs import default


def get_config():
  config = default.get_config()
  config.data.name = 'celeb_a'
  config.data.image_size = 64
  config.data.channels = 3
  config.batch_size = 128
  config.num_epochs = 5
  return config
