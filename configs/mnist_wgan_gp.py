"""WGAN-GP on MNIST (Gulrajani et al. 2017): a cure for mode collapse.

The critic's loss is E[D(G(z))] - E[D(x)] plus lambda = 10 times the
gradient penalty; D (a critic without BatchNorm) takes 5 updates per G
update; Adam(1e-4, b1 = 0, b2 = 0.9), the paper's Algorithm 1. Each step
reads 5 batches of 64, so an epoch is 187 steps.
"""

from configs import mnist


def get_config():
  config = mnist.get_config()
  config.objective = 'wgan_gp'
  config.gp_weight = 10.0
  config.n_critic = 5
  config.model.d_norm = 'none'
  config.batch_size = 64
  config.optim.lr_g = config.optim.lr_d = 1e-4
  config.optim.b1 = 0.0
  config.optim.b2 = 0.9
  config.log_every_steps = 50
  config.sample_every_steps = 187  # About once per epoch.
  config.checkpoint_every_steps = 187
  return config
