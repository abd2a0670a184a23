"""Finding the image files of a folder dataset and catching broken ones.

Through the path layer, so the folder may be a bucket.
"""

import concurrent.futures
from typing import Sequence

from absl import logging
import numpy as np
from PIL import Image
import PIL.features

from dcgan_jax.output import paths

IMAGE_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.bmp', '.gif')


def image_extensions() -> tuple[str, ...]:
  """Extensions the folder source reads; WebP only if Pillow can decode it."""
  return IMAGE_EXTENSIONS + (('.webp',) if PIL.features.check('webp') else ())


def list_image_files(root: paths.PathLike,
                     what: str = 'config.data.path') -> list[str]:
  """Every image file under root, at any depth, in a stable order; `what`
  names root in errors."""
  top = paths.path(root)
  if not top.is_dir():
    raise FileNotFoundError(
        f'{what}={str(root)!r} is not a directory of images.')
  extensions = image_extensions()
  files = sorted(
      str(directory / name)
      for directory, _, names in top.walk()
      for name in names if name.lower().endswith(extensions))
  if not files:
    raise FileNotFoundError(
        f'No image files ({", ".join(extensions)}) under '
        f'{what}={str(root)!r}.')
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


def read_images(source: paths.PathLike, channels: int,
                what: str = '--images') -> np.ndarray:
  """uint8 images (N, H, W, channels) of one size from a folder (every image
  file under it, in list_image_files' order) or an .npz holding them under
  'images' (as `dcgan_jax.sample` writes). Nothing is resized.

  Raises:
    ValueError, FileNotFoundError: naming the file and what is wrong.
  """
  if str(source).endswith('.npz'):
    try:
      images = paths.read_npz(source)['images']
    except (OSError, KeyError, ValueError) as e:
      raise ValueError(f'{what}={str(source)!r} is not an .npz of uint8 '
                       f"images under 'images': {e}") from e
    if images.ndim == 3:
      images = images[..., None]
    if images.dtype != np.uint8 or images.ndim != 4:
      raise ValueError(f'{what}={str(source)!r}: images are {images.dtype} '
                       f'{images.shape}; need uint8 (N, H, W, C).')
    if images.shape[-1] != channels:
      images = (np.repeat(images, 3, -1) if channels == 3 else
                np.asarray([np.asarray(Image.fromarray(i).convert('L'))
                            for i in images])[..., None])
    return images
  mode = 'L' if channels == 1 else 'RGB'
  images = []
  for name in list_image_files(source, what):
    with paths.path(name).open('rb') as f, Image.open(f) as image:
      array = np.asarray(image.convert(mode))
    if images and array.shape != images[0].shape:
      raise ValueError(f'{name} is {array.shape[1]}x{array.shape[0]}, the '
                       f'first image under {what}={str(source)!r} '
                       f'{images[0].shape[1]}x{images[0].shape[0]}: images '
                       'to score must share one size.')
    images.append(array)
  return np.stack(images).reshape(len(images), *images[0].shape[:2], channels)
