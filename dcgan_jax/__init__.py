"""DCGAN (Radford et al. 2015) in JAX/Flax.

Importing the package, its models or its step functions does not import
TensorFlow; only the input pipeline and the training loop's logging need it.
"""
