"""Ahead-of-time compilation and returning freed heap to the OS."""

import ctypes
import ctypes.util

import jax
import jax.numpy as jnp
import numpy as np

from dcgan_jax import memory


def _rss_bytes() -> int:
  with open('/proc/self/statm') as f:
    return int(f.read().split()[1]) * 4096


def test_compile_now_runs_like_the_jitted_function():
  jitted = jax.jit(lambda x, y: x * 2 + y, donate_argnums=0)
  compiled = memory.compile_now(jitted, jnp.ones(4), 3.0)
  np.testing.assert_array_equal(compiled(jnp.arange(4.0), 1.0),
                                [1.0, 3.0, 5.0, 7.0])


def test_release_returns_freed_heap_to_the_os():
  """100 MB freed inside the heap (a live block above it stops glibc from
  trimming on its own) stays resident until released."""
  libc = ctypes.CDLL(ctypes.util.find_library('c'))
  libc.malloc.restype = ctypes.c_void_p
  libc.free.argtypes = [ctypes.c_void_p]
  chunk = 64 * 1024  # Below glibc's mmap threshold: from the heap.
  blocks = [libc.malloc(chunk) for _ in range(1600)]
  guard = libc.malloc(chunk)
  for block in blocks:
    ctypes.memset(block, 1, chunk)
  for block in blocks:
    libc.free(block)
  before = _rss_bytes()
  memory.release_freed_memory()
  released = before - _rss_bytes()
  libc.free(guard)
  assert released > 50 * 2**20, released
