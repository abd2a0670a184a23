"""The networks, chosen by name: `config.model.name` in `MODELS`.

Every model is a (G, D) pair of flax modules, and every pair, ours or one
passed to `gan.states.create_train_states(config, rng, networks=(G, D))`, meets
one contract:

- G maps z, shape (B, nz), to images (B, H, W, C) in [-1, 1] as float32; D
  maps images (B, H, W, C) to one float32 output per image, shape (B,): a
  logit, or a critic's score for objectives without probabilities.
- Both are called as `module.apply(variables, x, train=..., axis_name=...)`.
  `train=True` in the steps' updates (BatchNorm normalises with the batch's
  statistics, dropout is on); `train=False` at initialisation, for sampling
  and for evaluation. `axis_name` is the pmap axis or None: BatchNorm and
  `Dropout` use it to act on the global batch, so a run's numbers do not
  depend on the device count.
- Variables: float32 'params', and optionally 'batch_stats' (BatchNorm's
  running averages, updated by training passes); a network without
  BatchNorm has none. Computation may be in another dtype (`config.dtype`).
- Randomness inside a network (dropout) comes from the 'dropout' rng
  stream, which the steps derive from the step number as they do z, so a
  resumed run draws it again.

The models:
- `dcgan`: the PyTorch DCGAN tutorial's networks (the default). At 64x64 G
  lifts z from 1x1 to 4x4 with a 4x4 stride-1 transposed conv, then doubles
  the resolution with 4x4 stride-2 transposed convs; D mirrors it with 4x4
  stride-2 convs and ends in a 4x4 valid conv to one logit. Other sizes
  change only the number of doubling layers and the base resolution (7x7
  for 28x28 images).
- `dcgan_upsample`: the same layout with G's transposed convs replaced by
  upsampling and a 3x3 conv (no checkerboard artefacts), G starting from a
  dense projection of z, and D ending in a dense layer.
- `keras_dcgan`: the Keras DCGAN on Fashion-MNIST: a dense projection to
  7x7x128, two 5x5 stride-2 transposed convs (SELU, tanh); D two 5x5
  stride-2 convs with dropout 0.3 and 0.4 and a dense layer.
- `mlp`: fully connected G and D (the Kuzushiji-MNIST MLP GAN).
- `sngan_cnn`: the "standard CNN" of the spectral normalisation paper.

`model.d_norm='spectral'` and `model.g_spectral` wrap any of them in
`layers.SpectrallyNormalized`, whose power-iteration vectors live in
'batch_stats' beside BatchNorm's statistics.
"""

# pylint: disable=unused-import
from dcgan_jax.models.dcgan import ARCHITECTURES
from dcgan_jax.models.registry import check_shape
from dcgan_jax.models.registry import compute_dtype
from dcgan_jax.models.registry import create_models
from dcgan_jax.models.registry import d_uses_batch_norm
from dcgan_jax.models.registry import model_config
from dcgan_jax.models.registry import MODELS
