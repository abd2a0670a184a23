"""Input pipelines on data the tests make: image folders, IDX files, fake."""

import gzip
import os

import jax
import ml_collections
import numpy as np
import pytest
import tensorflow as tf

from dcgan_jax import input_pipeline
from tests.conftest import write_image_folder


def _config(name='folder', path='', image_size=32, channels=3, batch_size=8):
  return ml_collections.ConfigDict({
      'seed': 0, 'batch_size': batch_size,
      'data': {'name': name, 'split': 'train', 'path': path,
               'download': False, 'image_size': image_size,
               'channels': channels, 'shuffle_buffer': 64,
               'random_flip': False, 'max_bad_fraction': 0.01},
  })


@pytest.mark.parametrize('channels', [1, 3])
def test_folder_batches_have_device_layout_and_range(tmp_path, channels):
  paths = write_image_folder(str(tmp_path))
  assert len(input_pipeline.list_image_files(str(tmp_path))) == len(paths)
  it, num_examples = input_pipeline.create_dataset(
      _config(path=str(tmp_path), channels=channels))
  assert num_examples == len(paths)
  for _ in range(3):  # Past one epoch: the stream repeats.
    batch = next(it)
    assert batch.shape == (4, 2, 32, 32, channels)
    assert batch.dtype == np.float32
    assert batch.min() >= -1.0 and batch.max() <= 1.0


def test_same_seed_same_batches(tmp_path):
  write_image_folder(str(tmp_path))
  config = _config(path=str(tmp_path))
  first = [next(input_pipeline.create_dataset(config)[0]) for _ in range(2)]
  np.testing.assert_array_equal(first[0], first[1])


def test_preprocess_resizes_shorter_side_then_center_crops():
  # 40x80: after resizing to 32x64, the crop keeps columns 16..48, i.e. the
  # original's middle half, which is white; the outer quarters are black.
  image = np.zeros((40, 80, 3), np.uint8)
  image[:, 20:60] = 255
  out = input_pipeline.preprocess(tf.constant(image), 32, 3).numpy()
  assert out.shape == (32, 32, 3)
  np.testing.assert_allclose(out[:, 1:-1], 1.0, atol=1e-5)
  gray = input_pipeline.preprocess(tf.constant(image), 32, 1).numpy()
  assert gray.shape == (32, 32, 1)


def test_fake_dataset_shape():
  it, num_examples = input_pipeline.create_dataset(
      _config(name='fake', image_size=28, channels=1))
  assert num_examples == input_pipeline.FAKE_DATASET_SIZE
  assert next(it).shape == (4, 2, 28, 28, 1)


def test_batch_not_divisible_by_devices_fails():
  with pytest.raises(ValueError, match=r'batch_size=6 .* devices \(4\)'):
    input_pipeline.create_dataset(_config(name='fake', batch_size=6))


def test_missing_or_empty_folder_fails_with_path(tmp_path):
  missing = str(tmp_path / 'nope')
  with pytest.raises(FileNotFoundError, match='nope'):
    input_pipeline.create_dataset(_config(path=missing))
  (tmp_path / 'empty').mkdir()
  with pytest.raises(FileNotFoundError, match='No image files'):
    input_pipeline.create_dataset(_config(path=str(tmp_path / 'empty')))


def test_dataset_smaller_than_a_batch_fails(tmp_path):
  write_image_folder(str(tmp_path), count=3)
  with pytest.raises(ValueError, match='3 examples .* one batch of 8'):
    input_pipeline.create_dataset(_config(path=str(tmp_path)))


def test_missing_tfds_dataset_says_how_to_get_it(tmp_path):
  with pytest.raises(FileNotFoundError,
                     match=r"'cifar10'.*data.download=True"):
    input_pipeline.create_dataset(_config(name='cifar10',
                                          path=str(tmp_path)))
  with pytest.raises(FileNotFoundError, match='img_align_celeba'):
    input_pipeline.create_dataset(_config(name='celeb_a',
                                          path=str(tmp_path)))


def _write_idx(path, header, payload=b''):
  with gzip.open(path, 'wb') as f:
    f.write(np.array(header, '>u4').tobytes() + payload)


def test_idx_reader_rejects_wrong_files(tmp_path):
  _write_idx(tmp_path / 'train-images-idx3-ubyte.gz', [2049, 60000, 28, 28])
  with pytest.raises(ValueError, match='train-images-idx3-ubyte.gz is not'):
    input_pipeline.read_fashion_mnist_idx(str(tmp_path), 'train')


def test_idx_reader_reads_a_valid_file(tmp_path):
  pixels = np.random.default_rng(0).integers(
      0, 256, (10_000, 28, 28), dtype=np.uint8)
  _write_idx(tmp_path / 't10k-images-idx3-ubyte.gz', [2051, 10_000, 28, 28],
             pixels.tobytes())
  images = input_pipeline.read_fashion_mnist_idx(str(tmp_path), 'test')
  np.testing.assert_array_equal(images[..., 0], pixels)


@pytest.mark.skipif(
    not os.path.isdir(input_pipeline.DEBIAN_FASHION_MNIST_DIR),
    reason='Debian package dataset-fashion-mnist not installed (.ci/run '
    'installs it)')
def test_debian_fashion_mnist_is_the_default_dataset_offline(tmp_path):
  images = input_pipeline.read_fashion_mnist_idx(
      input_pipeline.DEBIAN_FASHION_MNIST_DIR, 'train')
  assert images.shape == (60_000, 28, 28, 1)
  # With no TFDS copy in data_dir, the fashion_mnist pipeline falls back to
  # the Debian files.
  it, num_examples = input_pipeline.create_dataset(
      _config(name='fashion_mnist', path=str(tmp_path), image_size=28,
              channels=1))
  assert num_examples == 60_000
  batch = next(it)
  assert batch.shape == (4, 2, 28, 28, 1)
  # Clothing on a black background: most pixels are at the minimum.
  assert np.mean(batch == -1.0) > 0.3
