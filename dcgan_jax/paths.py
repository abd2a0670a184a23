"""The one path layer: every file a run reads or writes goes through here.

Paths are `etils.epath` paths (as in Orbax and TFDS), so a workdir, a cache
directory or a folder dataset may be a bucket (`gs://...`) as well as a
local directory.
"""

import contextlib
import os
import re
from typing import IO, Iterator
import uuid

from etils import epath

PathLike = str | os.PathLike


def path(p: PathLike) -> epath.Path:
  """`p` as an epath; local paths made absolute, with `~` expanded."""
  if is_local(p):
    return epath.Path(os.path.abspath(os.path.expanduser(os.fspath(p))))
  return epath.Path(p)


def is_local(p: PathLike) -> bool:
  """Whether p is on this machine's file system (no `scheme://`)."""
  return not re.match(r'^[a-zA-Z][\w+.-]*://', os.fspath(p))


@contextlib.contextmanager
def atomic_write(p: PathLike, mode: str = 'wb') -> Iterator[IO]:
  """Opens a temporary file beside p; it replaces p only once written.

  A crash or an error while writing leaves p as it was, never half-written.
  Parent directories are created.
  """
  target = path(p)
  target.parent.mkdir(parents=True, exist_ok=True)
  tmp = target.parent / f'.{target.name}.{uuid.uuid4().hex[:8]}.tmp'
  try:
    with tmp.open(mode) as f:
      yield f
    tmp.replace(target)
  except BaseException:
    if tmp.exists():
      tmp.unlink()
    raise
