"""SN-DCGAN on CIFAR-10: Miyato et al. 2018's "standard CNN" (table 3) with
every D weight spectrally normalised, the hinge loss and their setting C:
Adam(2e-4, b1=0.5, b2=0.999), one D update per G update, batch 64, z of 128,
100,000 G updates (the paper's table 2 reports this network's FID and
Inception score in these settings; for setting A, 5 D updates with
Adam(1e-4, 0.5, 0.9), pass --config.n_critic=5 --config.optim.lr_g=1e-4
--config.optim.lr_d=1e-4 --config.optim.b2=0.9).
"""

from configs import cifar10


def get_config():
  config = cifar10.get_config()
  config.model.name = 'sngan_cnn'
  config.model.nz = 128
  config.model.d_norm = 'spectral'
  config.objective = 'hinge'
  config.batch_size = 64
  config.num_train_steps = 100_000
  config.sample_every_steps = 2000
  config.checkpoint_every_steps = 2000
  config.eval_every_steps = 10_000
  return config
