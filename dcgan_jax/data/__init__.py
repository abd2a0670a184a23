"""Training images in: the sources a config names (TFDS, a folder of
images, Debian's IDX files, random images), decoding, and the `tf.data`
pipeline that shards, shuffles, batches and prefetches them per host.

May import `run.hosts` and `output.paths`; the only layer besides
evaluation and output that imports TensorFlow.
"""
