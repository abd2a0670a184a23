"""What makes training fast on CPUs, kept apart from the networks: the
convolutions' CPU forms with their custom gradients (`convolutions`,
`winograd`) and the process-level settings (`runtime`: compiling ahead,
returning freed memory, glibc's huge pages).

On GPUs and TPUs none of it runs: `convolutions` dispatches to XLA's
ordinary ops there. Imports only JAX and the standard library.
"""
