"""Fashion-MNIST at its native 28x28x1, with MNIST's settings.

Without a prepared TFDS copy, the training images are read from Debian's
dataset-fashion-mnist package (/usr/share/datasets/fashion-mnist).
"""

from configs import mnist


def get_config():
  config = mnist.get_config()
  config.data.name = 'fashion_mnist'
  return config
