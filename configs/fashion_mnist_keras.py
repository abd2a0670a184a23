"""The Keras DCGAN on Fashion-MNIST: noise 32, batch 64, RMSprop, 20 epochs.

G = Dense(7 * 7 * 128) -> reshape -> BatchNorm -> ConvTranspose(64, 5x5,
stride 2, same, SELU) -> BatchNorm -> ConvTranspose(1, 5x5, stride 2, same,
tanh): 413,825 trainable parameters plus 384 BatchNorm statistics; D =
Conv(64, 5x5, stride 2, same) + LeakyReLU(0.2) -> Dropout(0.3) -> Conv(128,
5x5, stride 2, same) + LeakyReLU(0.2) -> Dropout(0.4) -> flatten ->
Dense(1): 212,865. Keras's initialisers (Glorot-uniform, zero biases) and
BatchNorm settings (momentum 0.99, epsilon 1e-3); both networks use Keras's
RMSprop defaults (learning rate 1e-3, rho 0.9, epsilon 1e-7 outside the
square root); real and fake images go through D as one batch.

How it differs from the Keras original, on purpose:
- D ends in a logit and the loss is BCE on logits, where the original ends
  in a sigmoid with BCE on probabilities: the same loss, computed without
  overflow. Its D loss is the mean over the joint batch, half our sum;
  RMSprop divides the gradient's scale out, so only its epsilon sees it.
- G's update reuses the images D was just trained on, as in the PyTorch
  DCGAN, where the original draws new noise; and G makes them in training
  mode (BatchNorm with batch statistics), where the original calls G in
  inference mode for D's images.
- The data is shuffled whole every epoch, not through a buffer of 1,000.
"""

from configs import fashion_mnist


def get_config():
  config = fashion_mnist.get_config()
  config.model.name = 'keras_dcgan'
  config.model.nz = 32
  config.model.ngf = 64
  config.model.ndf = 64
  config.model.d_norm = 'none'
  config.d_joint_batch = True
  config.optim.name = 'rmsprop'
  config.optim.lr_g = config.optim.lr_d = 1e-3
  config.optim.rho = 0.9
  config.optim.eps = 1e-7
  config.batch_size = 64
  config.num_epochs = 20
  config.sample_every_steps = 937  # About once per epoch.
  config.checkpoint_every_steps = 937
  return config
