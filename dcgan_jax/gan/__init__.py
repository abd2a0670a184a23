"""The GAN itself, in pure JAX: train states, the objectives and penalties,
the optimizers, the augmentations of what D sees (DiffAugment, ADA) and
the step functions that update G and D.

Every step is a pure function of its states, batch and key, with an
`axis_name` so that one function runs under `jax.jit` and `jax.pmap`; its
hyperparameters arrive as a `Recipe`, never read from a config inside.
`sweep` stacks several members' states and vmaps the same step over them.
May import `models/` (which may import `cpu/`); never TensorFlow, files,
or the run machinery.
"""
