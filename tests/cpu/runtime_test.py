"""Ahead-of-time compilation and returning freed heap to the OS."""

import ctypes
import ctypes.util

import jax
import jax.numpy as jnp
import numpy as np

from dcgan_jax.cpu import runtime


def _rss_bytes() -> int:
  with open('/proc/self/statm') as f:
    return int(f.read().split()[1]) * 4096


def test_compile_now_runs_like_the_jitted_function():
  jitted = jax.jit(lambda x, y: x * 2 + y, donate_argnums=0)
  compiled = runtime.compile_now(jitted, jnp.ones(4), 3.0)
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
  runtime.release_freed_memory()
  released = before - _rss_bytes()
  libc.free(guard)
  assert released > 50 * 2**20, released


def test_huge_pages_are_added_to_the_environment_once(monkeypatch):
  """The tunable joins the others; a setting already there (either value)
  is left as it is."""
  monkeypatch.setattr(runtime.sys, 'platform', 'linux')
  assert runtime.huge_pages_environ({'A': '1'}) == {
      'A': '1', 'GLIBC_TUNABLES': 'glibc.malloc.hugetlb=1'}
  assert runtime.huge_pages_environ(
      {'GLIBC_TUNABLES': 'glibc.malloc.arena_max=2'}) == {
          'GLIBC_TUNABLES': 'glibc.malloc.arena_max=2:glibc.malloc.hugetlb=1'}
  for tunables in ('glibc.malloc.hugetlb=0', 'glibc.malloc.hugetlb=1'):
    assert runtime.huge_pages_environ({'GLIBC_TUNABLES': tunables}) is None
  monkeypatch.setattr(runtime.sys, 'platform', 'darwin')
  assert runtime.huge_pages_environ({}) is None


def test_restart_reexecutes_the_same_command_with_huge_pages(monkeypatch):
  """The program restarts as it was started (interpreter options, -m,
  arguments), once: the restarted process finds the tunable and goes on.
  The CLI's own restart is checked in main_test (it logs GLIBC_TUNABLES)."""
  calls = []
  monkeypatch.setattr(runtime.sys, 'platform', 'linux')
  monkeypatch.setattr(runtime.sys, 'orig_argv',
                      ['python3', '-X', 'dev', '-m', 'dcgan_jax.main', '--x'])
  monkeypatch.setattr(runtime.os, 'execve',
                      lambda *args: calls.append(args))
  monkeypatch.delenv('GLIBC_TUNABLES', raising=False)
  runtime.restart_with_huge_pages()
  [(executable, argv, environ)] = calls
  assert executable == runtime.sys.executable
  assert argv == [runtime.sys.executable, '-X', 'dev', '-m', 'dcgan_jax.main',
                  '--x']
  assert environ['GLIBC_TUNABLES'] == 'glibc.malloc.hugetlb=1'
  monkeypatch.setenv('GLIBC_TUNABLES', environ['GLIBC_TUNABLES'])
  runtime.restart_with_huge_pages()
  assert len(calls) == 1
