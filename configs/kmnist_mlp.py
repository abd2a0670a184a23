"""The MLP GAN on Kuzushiji-MNIST, scored every epoch.

Fully connected networks: G = Linear(100 -> 128) -> LeakyReLU(0.2) ->
BatchNorm -> Linear(256) -> BatchNorm -> LeakyReLU -> Linear(512) ->
BatchNorm -> LeakyReLU -> Linear(784) -> tanh (581,520 parameters); D =
Linear(784 -> 512) -> LeakyReLU(0.2) -> Linear(256) -> LeakyReLU ->
Linear(1) (533,505), both initialised as PyTorch initialises nn.Linear.
Batch 64, Adam(2e-4, b1=0.5) for each, the quality metric after every
epoch.

How it differs from the PyTorch original, on purpose:
- D ends in a logit and the loss is BCE on logits, where the original ends
  in a sigmoid with BCE on probabilities: the same loss, computed without
  overflow.
- The original halves D's loss ((real + fake) / 2); Adam divides the
  gradient's scale out, so only its epsilon sees the difference.
- The metric is FD/KID in the offline classifier's features
  (classifier_fd, classifier_kid); the original's torcheval FID needs
  Inception weights: add `fid` to eval.metrics once
  eval.inception_weights points at them.
"""

from configs import mnist


def get_config():
  config = mnist.get_config()
  config.data.name = 'kmnist'
  config.model.name = 'mlp'
  config.model.d_norm = 'none'
  config.batch_size = 64
  config.sample_every_steps = 937  # About once per epoch.
  config.checkpoint_every_steps = 937
  return config
