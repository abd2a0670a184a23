"""Host memory: what XLA's compiler leaves behind, and how the step's
buffers are paged in.

Compiling a training step takes hundreds of MB of heap, which glibc keeps
after the compiler frees it; the step's buffers then come on top, and the
process's peak RSS with them (BENCHMARKS.md). Compiling ahead of the first
run and returning the freed heap to the OS in between avoids that.

On CPU every run of a step maps its large temporaries afresh (glibc serves
blocks above its mmap threshold with mmap and unmaps them when freed), and
the kernel faults them in 4 KiB at a time, every step. Asking glibc to back
such blocks with transparent huge pages (its `glibc.malloc.hugetlb=1`
tunable, read only at process start) faults them in 2 MiB at a time
(BENCHMARKS.md).
"""

import ctypes
import ctypes.util
import functools
import os
import sys
from typing import Any, Callable, Mapping, Optional

HUGE_PAGES_TUNABLE = 'glibc.malloc.hugetlb'


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


def huge_pages_environ(environ: Mapping[str, str]
                       ) -> Optional[dict[str, str]]:
  """environ with glibc's malloc told to use transparent huge pages, or
  None where it needs no change: not Linux, or GLIBC_TUNABLES already sets
  the tunable (either way: the user's choice stands). C libraries other
  than glibc >= 2.35 ignore it."""
  if (sys.platform != 'linux'
      or HUGE_PAGES_TUNABLE in environ.get('GLIBC_TUNABLES', '')):
    return None
  return with_tunable(environ, f'{HUGE_PAGES_TUNABLE}=1')


def with_tunable(environ: Mapping[str, str], setting: str) -> dict[str, str]:
  """environ with `setting` (name=value) appended to GLIBC_TUNABLES, where
  a later setting overrides an earlier one."""
  tunables = environ.get('GLIBC_TUNABLES')
  return {**environ,
          'GLIBC_TUNABLES': f'{tunables}:{setting}' if tunables else setting}


def restart_with_huge_pages() -> None:
  """Re-executes this program, same interpreter and arguments, with
  `huge_pages_environ`; returns where that needs no change. For a
  program's entry point, before it imports anything heavy."""
  environ = huge_pages_environ(os.environ)
  if environ is not None:
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, [sys.executable, *sys.orig_argv[1:]], environ)
