"""Image decoding and preprocessing in TensorFlow, for the input pipelines."""

import functools
import io
from typing import Callable

import numpy as np
from PIL import Image
import tensorflow as tf


def _decode_with_pil(contents: tf.Tensor) -> np.ndarray:
  with Image.open(io.BytesIO(contents.numpy())) as image:
    return np.asarray(image.convert('RGB'))


def _decode_jpeg_near(contents: tf.Tensor, image_size: int) -> tf.Tensor:
  """Decodes a JPEG at the smallest DCT scale (1, 1/2, 1/4, 1/8) whose
  shorter side is still >= image_size.

  Scaling inside the decoder (as Pillow's draft mode does) skips most of the
  decoding work for images much larger than the training size; the resize
  in preprocess() then brings the shorter side to image_size as before.
  """
  shape = tf.image.extract_jpeg_shape(contents)
  shorter = tf.minimum(shape[0], shape[1])
  halvings = tf.add_n([tf.cast(shorter >= image_size * 2**k, tf.int32)
                       for k in (1, 2, 3)])
  return tf.switch_case(halvings, [
      functools.partial(tf.io.decode_jpeg, contents, channels=3, ratio=2**k)
      for k in range(4)])


def encoded_decoder(image_size: int) -> Callable[[tf.Tensor], tf.Tensor]:
  """Encoded bytes -> uint8 RGB, whatever the file holds.

  Gray, RGBA and palette images come out as RGB (TF decodes GIFs only to
  RGB; their first frame is kept); preprocess() converts to the configured
  channels. WebP, which TF cannot decode, goes through Pillow.
  """
  def decode(contents: tf.Tensor) -> tf.Tensor:
    image = tf.case([
        (tf.io.is_jpeg(contents),
         lambda: _decode_jpeg_near(contents, image_size)),
        (tf.strings.substr(contents, 8, 4) == b'WEBP',
         lambda: tf.py_function(_decode_with_pil, [contents], tf.uint8)),
    ], default=lambda: tf.io.decode_image(contents, channels=3,
                                          expand_animations=False))
    image.set_shape([None, None, 3])
    return image
  return decode


def preprocess(image: tf.Tensor, image_size: int, channels: int) -> tf.Tensor:
  """uint8 (H, W, C) -> float32 (S, S, channels) in [-1, 1].

  Resizes the shorter side to image_size, then center-crops, as
  torchvision's Resize(S) + CenterCrop(S) does. Downscaling averages over
  each output pixel's footprint (the area filter: antialiased like
  torchvision's, and several times faster in TF than its antialiased
  bilinear); upscaling is bilinear.
  """
  if image.shape[-1] != channels:
    image = (tf.image.rgb_to_grayscale(image[..., :3]) if channels == 1
             else tf.image.grayscale_to_rgb(image[..., :1]))
  height, width = tf.shape(image)[0], tf.shape(image)[1]
  scale = image_size / tf.cast(tf.minimum(height, width), tf.float32)
  new_size = tf.cast(
      tf.math.round(tf.cast(tf.stack([height, width]), tf.float32) * scale),
      tf.int32)
  new_size = tf.maximum(new_size, image_size)
  image = tf.cond(
      scale < 1.0,
      lambda: tf.image.resize(image, new_size, method='area'),
      lambda: tf.image.resize(image, new_size, method='bilinear'))
  top = (new_size[0] - image_size) // 2
  left = (new_size[1] - image_size) // 2
  image = image[top:top + image_size, left:left + image_size]
  image.set_shape([image_size, image_size, channels])
  return image / 127.5 - 1.0
