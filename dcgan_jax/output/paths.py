"""The one path layer: every file a run reads or writes goes through here.

Paths are `etils.epath` paths (as in Orbax and TFDS), so a workdir, a cache
directory or a folder dataset may be a bucket (`gs://...`) as well as a
local directory.
"""

import contextlib
import io
import json
import os
import re
from typing import IO, Iterator, Mapping
import uuid

from etils import epath
import numpy as np

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


def npz_bytes(arrays: Mapping[str, np.ndarray]) -> bytes:
  """Named arrays as the bytes of an .npz file."""
  buffer = io.BytesIO()
  np.savez(buffer, **arrays)
  return buffer.getvalue()


def arrays_from_npz(data: bytes) -> dict[str, np.ndarray]:
  """The arrays of an .npz file's bytes; never unpickles (allow_pickle is
  off), so a malicious file cannot run code."""
  with np.load(io.BytesIO(data), allow_pickle=False) as arrays:
    return {name: arrays[name] for name in arrays.files}


def json_to_array(record: object) -> np.ndarray:
  """A JSON-serialisable record as a uint8 array, to store in an .npz."""
  return np.frombuffer(json.dumps(record).encode(), np.uint8)


def json_from_array(array: np.ndarray) -> object:
  """The inverse of json_to_array."""
  return json.loads(array.tobytes())


def write_npz(p: PathLike, arrays: Mapping[str, np.ndarray]) -> None:
  """Writes named arrays to an .npz, atomically."""
  with atomic_write(p) as f:
    f.write(npz_bytes(arrays))


def read_npz(p: PathLike) -> dict[str, np.ndarray]:
  """The arrays of an .npz file (see arrays_from_npz)."""
  return arrays_from_npz(path(p).read_bytes())
