"""Finding the image files of a folder dataset and catching broken ones.

Through the path layer, so the folder may be a bucket.
"""

import concurrent.futures
from typing import Sequence

from absl import logging
import PIL.features

from dcgan_jax import paths

IMAGE_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.bmp', '.gif')


def image_extensions() -> tuple[str, ...]:
  """Extensions the folder source reads; WebP only if Pillow can decode it."""
  return IMAGE_EXTENSIONS + (('.webp',) if PIL.features.check('webp') else ())


def list_image_files(root: paths.PathLike) -> list[str]:
  """Every image file under root, at any depth, in a stable order."""
  top = paths.path(root)
  if not top.is_dir():
    raise FileNotFoundError(
        f'config.data.path={str(root)!r} is not a directory of images.')
  extensions = image_extensions()
  files = sorted(
      str(directory / name)
      for directory, _, names in top.walk()
      for name in names if name.lower().endswith(extensions))
  if not files:
    raise FileNotFoundError(
        f'No image files ({", ".join(extensions)}) under '
        f'config.data.path={str(root)!r}.')
  return files


def _looks_complete(p: str) -> bool:
  """Whether a file has a known image signature and its format's end marker.

  Reads only the first and last bytes: catches empty, truncated and
  non-image files in a fraction of the time a decode takes.
  """
  try:
    with paths.path(p).open('rb') as f:
      head = f.read(16)
      f.seek(0, 2)
      size = f.tell()
      f.seek(max(0, size - 1024))
      tail = f.read()
  except OSError:
    return False
  if head.startswith(b'\xff\xd8\xff'):  # JPEG: an end-of-image marker.
    return b'\xff\xd9' in tail
  if head.startswith(b'\x89PNG\r\n\x1a\n'):  # PNG: an IEND chunk.
    return b'IEND' in tail[-12:]
  if head[:6] in (b'GIF87a', b'GIF89a'):  # GIF: the trailer byte.
    return tail.rstrip(b'\x00').endswith(b';')
  if head.startswith(b'BM'):  # BMP: the size its header declares.
    return len(head) >= 6 and int.from_bytes(head[2:6], 'little') <= size
  if head.startswith(b'RIFF') and head[8:12] == b'WEBP':
    return int.from_bytes(head[4:8], 'little') + 8 <= size
  return False


def check_image_files(files: Sequence[str],
                      max_bad_fraction: float) -> list[str]:
  """Drops unreadable or truncated files, warning with the first few.

  Raises:
    ValueError: if more than max_bad_fraction of the files are bad.
  """
  with concurrent.futures.ThreadPoolExecutor(16) as pool:
    complete = list(pool.map(_looks_complete, files))
  bad = [f for f, ok in zip(files, complete) if not ok]
  if not bad:
    return list(files)
  message = (f'{len(bad)} of {len(files)} image files are unreadable or '
             f'truncated, e.g. {", ".join(bad[:5])}')
  if len(bad) > max_bad_fraction * len(files):
    raise ValueError(f'{message}: more than config.data.max_bad_fraction='
                     f'{max_bad_fraction}.')
  logging.warning('%s. Skipping them.', message)
  return [f for f, ok in zip(files, complete) if ok]
