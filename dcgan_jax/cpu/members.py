"""A sweep's members on CPU: one after another in the program where the
networks convolve, vmapped where they do not.

Vmapped over the members' weights, each convolution becomes one grouped
convolution (a feature group per member), which XLA:CPU runs several times
slower than the members' own convolutions one after another; dense layers
become batched matrix products, which it runs faster than one after
another (BENCHMARKS.md). On GPUs and TPUs the members stay vmapped: one
batched program keeps the device busy.
"""

from typing import Any, Callable

import jax
import jax.numpy as jnp


def _convolves(weights: Any) -> bool:
  """Whether stacked weights hold convolution kernels (4-D per member)."""
  return any(jnp.ndim(x) == 5 for x in jax.tree.leaves(weights))


def over_members(fn: Callable[..., Any], *stacked: Any) -> Any:
  """fn of each member's slice of `stacked` (a leading member axis; the
  first argument holds the members' weights), its outputs stacked:
  jax.vmap(fn), but on CPU for convolutional networks each member's own
  computation in turn."""
  def one_by_one(*args):
    count = jax.tree.leaves(args)[0].shape[0]
    outputs = [fn(*jax.tree.map(lambda x, k=k: x[k], args))
               for k in range(count)]
    return jax.tree.map(lambda *xs: jnp.stack(xs), *outputs)
  if not _convolves(stacked[0]):
    return jax.vmap(fn)(*stacked)
  return jax.lax.platform_dependent(*stacked, cpu=one_by_one,
                                    default=jax.vmap(fn))
