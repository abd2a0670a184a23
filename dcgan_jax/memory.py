"""Host memory: what XLA's compiler leaves behind.

Compiling a training step takes hundreds of MB of heap, which glibc keeps
after the compiler frees it; the step's buffers then come on top, and the
process's peak RSS with them (BENCHMARKS.md). Compiling ahead of the first
run and returning the freed heap to the OS in between avoids that.
"""

import ctypes
import ctypes.util
import functools
from typing import Any, Callable


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
  name = ctypes.util.find_library('c')
  library = ctypes.CDLL(name) if name else None
  return getattr(library, 'malloc_trim', None)  # glibc only.


def release_freed_memory() -> None:
  """Returns the heap's free pages to the OS (glibc's malloc_trim); does
  nothing where the C library has no malloc_trim."""
  trim = _malloc_trim()
  if trim is not None:
    trim(0)


def compile_now(jitted: Any, *args: Any) -> Any:
  """`jitted` (from jax.jit or jax.pmap) compiled for args, with the
  compiler's freed memory released before anything runs. The result is
  called like `jitted` with arguments of the same shapes."""
  compiled = jitted.lower(*args).compile()
  release_freed_memory()
  return compiled
