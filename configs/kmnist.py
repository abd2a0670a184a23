"""Kuzushiji-MNIST at its native 28x28x1, with MNIST's settings."""

from configs import mnist


def get_config():
  config = mnist.get_config()
  config.data.name = 'kmnist'
  return config
