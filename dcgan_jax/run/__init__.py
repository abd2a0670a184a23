"""The run machinery: the training loop and its schedule, checkpoints, the
config schema, a sweep's members in the loop, and coordination between
hosts.

The top of the stack: may import every other layer. `hosts` is the
exception below it: it imports nothing from the package, and the data and
evaluation layers use it to agree across processes.
"""
