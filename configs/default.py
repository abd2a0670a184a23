"""Default hyperparameters: the DCGAN paper's recipe on CelebA at 64x64.

Other configs import this one and override fields. Every field can also be
overridden on the command line, e.g. `--config.batch_size=256`.
"""

import ml_collections


def get_config() -> ml_collections.ConfigDict:
  config = ml_collections.ConfigDict()
  config.seed = 0
  # Global: images per D update over all devices of all hosts (each host
  # reads batch_size / process count, each device batch_size / device
  # count). Every size below is global too unless it says otherwise.
  config.batch_size = 128
  # Training length: num_train_steps if > 0, else num_epochs over the data.
  config.num_train_steps = -1
  config.num_epochs = 5

  config.data = ml_collections.ConfigDict()
  # A TFDS name, 'folder' (every image under data.path) or 'fake' (random
  # images at the configured shape, for benchmarks and smoke runs).
  config.data.name = 'celeb_a'
  config.data.split = 'train'
  config.data.path = ''  # Folder root, or TFDS data_dir ('' = TFDS default).
  # TFDS datasets are only downloaded when asked for.
  config.data.download = False
  config.data.image_size = 64
  config.data.channels = 3
  # TFDS records shuffled together within an epoch (folders and in-memory
  # arrays are shuffled whole).
  config.data.shuffle_buffer = 10_000
  config.data.random_flip = False  # Random horizontal flips.
  # Folder: skip unreadable or truncated files, up to this fraction of them.
  config.data.max_bad_fraction = 0.01
  # Folders, Debian's files and random images whose preprocessed images
  # (float32) take at most this many MiB are held in memory: each image is
  # decoded the first time it is read, not again every epoch; 0 = never.
  config.data.cache_mb = 1024
  config.data.prefetch_to_device = 2
  # The data order's seed (shuffling, flips, random images); -1 = seed.
  config.data.seed = -1

  # Computation dtype: 'float32', or 'bfloat16' for mixed precision
  # (parameters, optimizer state, BatchNorm statistics and losses stay
  # float32).
  config.dtype = 'float32'

  config.model = ml_collections.ConfigDict()
  # The networks: dcgan (the PyTorch tutorial's), dcgan_upsample
  # (upsampling + conv in G, dense layers at both ends), keras_dcgan (the
  # Keras Fashion-MNIST DCGAN) or mlp (fully connected).
  config.model.name = 'dcgan'
  config.model.nz = 100
  # Widths: G's and D's channels (dcgan: 64 -> 512 at 64x64; see models.py
  # for each model).
  config.model.ngf = 64
  config.model.ndf = 64
  # D's normalisation after its hidden layers but the first: 'batch',
  # 'layer' (per image) or 'none'; or 'spectral': none of those, every D
  # weight divided by its largest singular value (Miyato et al. 2018).
  # Input-gradient penalties (wgan_gp, R1, R2) need one without BatchNorm.
  config.model.d_norm = 'batch'
  # Spectral normalisation of G's weights too (SAGAN, BigGAN).
  config.model.g_spectral = False
  # Dropout rate after D's activations (keras_dcgan has its own).
  config.model.d_dropout = 0.0
  config.model.upsample = 'nearest'  # dcgan_upsample: or 'bilinear'.

  # The objective: non_saturating (BCE, G maximises log D(G(z))), minimax
  # (G minimises log(1 - D(G(z))), the saturating original), wgan_gp
  # (Wasserstein critic with gradient penalty), hinge or least_squares
  # (LSGAN).
  config.objective = 'non_saturating'
  config.gp_weight = 10.0  # lambda of the gradient penalty (wgan_gp).
  # One-sided label smoothing: D's target for real images is 1 - s
  # (non_saturating and minimax).
  config.label_smoothing = 0.0
  # D updates per G update; each step reads n_critic batches of batch_size.
  config.n_critic = 1
  # G's loss against D advanced by this many differentiable updates
  # (unrolled GAN, Metz et al. 2017); 0 = off.
  config.unroll_steps = 0
  # Exponential moving average of G's weights (0 = off), e.g. 0.999,
  # warmed up over the first updates; when on, sample grids, sampling,
  # evaluation and the best checkpoint use it.
  config.ema_decay = 0.0
  # Batches of config.batch_size fresh z whose BatchNorm statistics, averaged,
  # go with the EMA weights (recomputed before every grid, evaluation, save).
  config.ema_stats_batches = 16
  # Real and fake images through D as one batch (one set of BatchNorm
  # statistics) instead of two.
  config.d_joint_batch = False
  # R1 / R2 (Mescheder et al. 2018): gamma / 2 E[||grad D||^2] on real /
  # fake images, added to D's loss (0 = off; logistic and hinge objectives,
  # D without BatchNorm). reg_every = k: computed every k-th D update and
  # scaled by k (StyleGAN2's lazy regularisation, there k = 16).
  config.r1_gamma = 0.0
  config.r2_gamma = 0.0
  config.reg_every = 1

  # DiffAugment (Zhao et al. 2020): D sees real and fake images, in its
  # updates and G's, through random differentiable transformations, from
  # 'color', 'translation', 'cutout' (comma-separated, in that order; ''
  # = none); the paper uses all three for small data sets. translation:
  # the largest shift, cutout: the square's side, as fractions of the
  # image side.
  config.augment = ml_collections.ConfigDict()
  config.augment.policy = ''
  config.augment.translation = 0.125
  config.augment.cutout = 0.5
  # ADA (Karras et al. 2020) instead: x-flip, 90-degree rotations, integer
  # translation and colour transforms, each with a probability p that rises
  # while E[sign(D(x))] on real images exceeds ada_target (and falls while
  # it is below), adjusted every ada_interval D updates by up to its full
  # range over ada_kimg thousand images. The paper's settings.
  config.augment.ada = False
  config.augment.ada_target = 0.6
  config.augment.ada_interval = 4
  config.augment.ada_kimg = 500.0

  # Separate learning rates for G and D: unequal ones are the two time-scale
  # update rule (TTUR, Heusel et al. 2017).
  config.optim = ml_collections.ConfigDict()
  config.optim.name = 'adam'  # Or 'rmsprop'.
  config.optim.lr_g = 2e-4
  config.optim.lr_d = 2e-4
  config.optim.b1 = 0.5  # Adam.
  config.optim.b2 = 0.999  # Adam.
  config.optim.rho = 0.9  # RMSprop: the squared gradients' decay.
  config.optim.eps = 1e-8

  # Experiment trackers besides TensorBoard, comma-separated: wandb,
  # mlflow, neptune (each an extra: pip install 'dcgan_jax[wandb]').
  config.trackers = ''
  config.tracking = ml_collections.ConfigDict()
  config.tracking.project = 'dcgan_jax'  # W&B project, MLflow experiment.
  config.tracking.run_name = ''  # '' = the workdir's name.
  config.tracking.wandb_mode = ''  # '' = W&B's default; or 'offline'.
  # A server or a local store, e.g. sqlite:///mlflow.db ('' = MLflow's
  # default, MLFLOW_TRACKING_URI).
  config.tracking.mlflow_uri = ''
  config.tracking.neptune_project = ''  # '' = NEPTUNE_PROJECT.
  config.tracking.neptune_mode = ''  # '' = async; or 'offline', 'debug'.

  # Several GANs trained in one program (docs/sweeps.md). seeds: '' = one
  # run; 'N' = N members with seeds seed, seed + 1, ..., seed + N - 1;
  # '3,7,11' = those seeds. The hyperparameter axes take comma-separated
  # values (e.g. lr_g = '1e-4,2e-4'); the members are their product with
  # the seeds. Each member computes what the single run of its seed and
  # values computes; they read the same batches (data.seed) and are logged,
  # evaluated and plotted as mean +- std and each alone.
  config.sweep = ml_collections.ConfigDict()
  config.sweep.seeds = ''
  config.sweep.lr_g = ''
  config.sweep.lr_d = ''
  config.sweep.ema_decay = ''
  config.sweep.gp_weight = ''
  config.sweep.r1_gamma = ''
  config.sweep.r2_gamma = ''
  # Each member reads the data in its own seed's order (its single run's;
  # a pipeline per member) instead of all reading data.seed's batches.
  config.sweep.own_data = False

  config.log_every_steps = 50
  config.sample_every_steps = 500
  # Images in the fixed-noise grid (generated by process 0 alone).
  config.grid_images = 64
  config.checkpoint_every_steps = 1000
  config.max_checkpoints_to_keep = 3
  # Evaluation of G during training: every eval_every_steps (-1: once per
  # epoch) when eval.metrics names any.
  config.eval_every_steps = -1

  config.eval = ml_collections.ConfigDict()
  # Comma-separated: fid, kid, precision, recall, density, coverage,
  # inception_score (Inception features: need eval.inception_weights), and
  # classifier_fd, classifier_kid, classifier_precision, ...,
  # classifier_coverage (features of a classifier trained on the dataset's
  # labels; work offline).
  config.eval.metrics = ''
  config.eval.best_metric = ''  # Kept in checkpoints_best ('' = the first).
  config.eval.num_samples = 10_000  # Generated and real images compared.
  # Images per feature batch over all devices (rounded up to a multiple of
  # the device count).
  config.eval.batch_size = 200
  config.eval.kid_subsets = 100
  config.eval.kid_subset_size = 1000
  # Nearest neighbours of the manifold estimates: precision and recall
  # (Kynkaanniemi et al. 2019), density and coverage (Naeem et al. 2020).
  config.eval.pr_k = 3
  config.eval.dc_k = 5
  config.eval.is_splits = 10  # Inception Score: mean and std over splits.
  # pytorch-fid's weights converted by `python -m dcgan_jax.convert_inception`.
  config.eval.inception_weights = ''
  # How Inception's input is resized: 'pytorch' (pytorch-fid's bilinear)
  # or 'tensorflow' (the original TTUR TensorFlow graph's); see README.
  config.eval.resize = 'pytorch'
  # A statistics file (`python -m dcgan_jax.evaluate --save_stats`) to
  # compare with instead of computing the real data's features.
  config.eval.reference_stats = ''
  # Cached classifiers and real-data features.
  config.eval.cache_dir = '~/.cache/dcgan_jax'
  config.eval.classifier_path = ''  # '' = a file per dataset in cache_dir.
  config.eval.classifier_epochs = 5
  config.eval.min_classifier_accuracy = 0.8
  config.eval.seed = 0  # For the generated images' z and the KID subsets.
  # With EMA on, also evaluate G's trained (not averaged) weights, logged
  # as METRIC_raw.
  config.eval.raw_weights = False
  return config
