"""A folder of your own images (a few hundred to a few thousand), where D
overfits: DiffAugment's three ops on everything D sees and R1 with lazy
regularisation, as data-efficient GAN training does (Zhao et al. 2020;
Karras et al. 2020).

  python -m dcgan_jax.main --config=configs/small_data.py --workdir=runs/mine \
      --config.data.path=/path/to/images

`dcgan` at 64x64x3 with D unnormalised (R1 needs a D without BatchNorm;
`model.d_norm='spectral'` is the other choice). R1's gamma is StyleGAN2-ADA's
rule, 0.0002 * side^2 / batch (0.0128 here), computed every 16th D update.
These are the papers' settings, not measured here on a small data set of
this size; on 1,000 Fashion-MNIST images over 2,000 steps DiffAugment
made the default recipe's samples worse (BENCHMARKS.md): compare with
`--config.augment.policy=` on your data.
"""

from configs import default


def get_config():
  config = default.get_config()
  config.data.name = 'folder'
  config.data.image_size = 64
  config.data.channels = 3
  config.batch_size = 64
  config.num_train_steps = 20_000
  config.model.d_norm = 'none'
  config.augment.policy = 'color,translation,cutout'
  config.r1_gamma = 0.0002 * 64**2 / 64
  config.reg_every = 16
  config.sample_every_steps = 1000
  config.checkpoint_every_steps = 1000
  return config
