"""What makes training fast on CPUs, kept apart from the networks: the
convolutions' CPU forms with their custom gradients (`convolutions`,
`winograd`), a sweep's convolutional members one after another instead of
vmapped (`members`) and the process-level settings (`runtime`: compiling
ahead, returning freed memory, glibc's huge pages).

On GPUs and TPUs none of it runs: `convolutions` and `members` dispatch to
XLA's ordinary ops and `jax.vmap` there. Imports only JAX and the standard library.
"""
