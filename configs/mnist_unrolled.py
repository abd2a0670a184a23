"""Unrolled GAN on MNIST (Metz et al. 2017): a cure for mode collapse.

G's loss is taken against a copy of D advanced by 5 differentiable updates
(on the step's real batch and G's images), so G is steered by how D would
answer it, not only by D's current weights; D trains as in the DCGAN
recipe. A G update costs about as much as 6 D updates.
"""

from configs import mnist


def get_config():
  config = mnist.get_config()
  config.unroll_steps = 5
  return config
