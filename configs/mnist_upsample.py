"""The article's DCGAN with upsampling in G and dropout in D, on MNIST.

G = Linear(100 -> 7 * 7 * 128) -> reshape, then per doubling BatchNorm ->
upsample x2 (nearest; `--config.model.upsample=bilinear`) -> 3x3 conv ->
ReLU (128 -> 64 -> 32 channels), then a 3x3 conv to 1 channel and tanh: no
transposed convolutions, so no checkerboard artefacts. D = per halving a
4x4 stride-2 conv -> LeakyReLU(0.2) -> Dropout -> BatchNorm (not after the
first; 64 -> 128 channels), then flatten -> Linear(1). Real and fake
images go through D as one batch, as in the article; Adam(2e-4, b1=0.5),
weights N(0, 0.02).

The article gives no dropout rate: 0.3 here. D ends in a logit with BCE on
logits, where the article ends in a sigmoid: the same loss, computed
without overflow.
"""

from configs import mnist


def get_config():
  config = mnist.get_config()
  config.model.name = 'dcgan_upsample'
  config.model.d_dropout = 0.3
  config.d_joint_batch = True
  return config
