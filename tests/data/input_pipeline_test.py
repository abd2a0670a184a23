"""Input pipelines on data the tests make: image folders, IDX files, fake."""

import gc
import gzip
import io
import os

import jax
import ml_collections
import numpy as np
import pytest
from PIL import Image
import tensorflow as tf
import tensorflow_datasets as tfds

from dcgan_jax.data import decoding
from dcgan_jax.data import idx_files
from dcgan_jax.data import image_files
from dcgan_jax.data import input_pipeline
from dcgan_jax.data import sources
from dcgan_jax.run import hosts
from tests.conftest import write_image_folder


def _config(name='folder', path='', image_size=32, channels=3, batch_size=8):
  return ml_collections.ConfigDict({
      'seed': 0, 'batch_size': batch_size,
      'data': {'name': name, 'split': 'train', 'path': path,
               'download': False, 'image_size': image_size,
               'channels': channels, 'shuffle_buffer': 64,
               'random_flip': False, 'max_bad_fraction': 0.01,
               'cache_mb': 0},
  })


@pytest.mark.parametrize('channels', [1, 3])
def test_folder_batches_have_device_layout_and_range(tmp_path, channels):
  paths = write_image_folder(str(tmp_path))
  assert len(image_files.list_image_files(str(tmp_path))) == len(paths)
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
  out = decoding.preprocess(tf.constant(image), 32, 3).numpy()
  assert out.shape == (32, 32, 3)
  np.testing.assert_allclose(out[:, 1:-1], 1.0, atol=1e-5)
  gray = decoding.preprocess(tf.constant(image), 32, 1).numpy()
  assert gray.shape == (32, 32, 1)


def test_fake_dataset_shape():
  it, num_examples = input_pipeline.create_dataset(
      _config(name='fake', image_size=28, channels=1))
  assert num_examples == sources.FAKE_DATASET_SIZE
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
  with pytest.raises(ValueError, match='3 examples, fewer than one batch of 8'):
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
    idx_files.read_images(str(tmp_path), 'train')


def test_idx_reader_reads_a_valid_file(tmp_path):
  pixels = np.random.default_rng(0).integers(
      0, 256, (10_000, 28, 28), dtype=np.uint8)
  _write_idx(tmp_path / 't10k-images-idx3-ubyte.gz', [2051, 10_000, 28, 28],
             pixels.tobytes())
  images = idx_files.read_images(str(tmp_path), 'test')
  np.testing.assert_array_equal(images[..., 0], pixels)


@pytest.mark.skipif(
    not os.path.isdir(idx_files.DEBIAN_FASHION_MNIST_DIR),
    reason='Debian package dataset-fashion-mnist not installed (.ci/run '
    'installs it)')
def test_debian_fashion_mnist_is_the_default_dataset_offline(tmp_path):
  images = idx_files.read_images(
      idx_files.DEBIAN_FASHION_MNIST_DIR, 'train')
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


def _write_colours(root, count):
  """Images of one flat grey level each, so a batch tells which it holds."""
  os.makedirs(root, exist_ok=True)
  levels = np.linspace(0, 255, count).round().astype(np.uint8)
  for i, level in enumerate(levels):
    Image.fromarray(np.full((40, 48, 3), level, np.uint8)).save(
        os.path.join(root, f'{i:03d}.png'))
  return levels


def _levels(batch):
  """The grey level (0..255) of each image in a batch, in order."""
  flat = batch.reshape((-1,) + batch.shape[2:])
  return np.rint((flat.mean(axis=(1, 2, 3)) + 1.0) * 127.5).astype(int)


def test_each_epoch_visits_every_image_once_in_a_new_order(tmp_path):
  levels = _write_colours(str(tmp_path), 16)
  it, _ = input_pipeline.create_dataset(_config(path=str(tmp_path)))
  epochs = [np.concatenate([_levels(next(it)) for _ in range(2)])
            for _ in range(3)]
  for epoch in epochs:
    assert sorted(epoch) == sorted(levels)
  assert not np.array_equal(epochs[0], epochs[1])


@pytest.mark.parametrize('start_step', [1, 2, 5])
def test_resumed_stream_equals_uninterrupted_stream(tmp_path, start_step):
  # 16 images, 8 per step: step 5 starts inside the third epoch.
  _write_colours(str(tmp_path / 'folder'), 16)
  for config in (_config(path=str(tmp_path / 'folder')),
                 _config(name='fake', image_size=28, channels=1)):
    config.data.random_flip = True
    uninterrupted, _ = input_pipeline.create_dataset(config)
    expected = [next(uninterrupted) for _ in range(start_step + 3)]
    resumed, _ = input_pipeline.create_dataset(config, start_batch=start_step)
    for want in expected[start_step:]:
      np.testing.assert_array_equal(next(resumed), want)


def test_a_step_of_n_critic_batches_is_n_consecutive_batches(tmp_path):
  """Step s holds batches s n .. s n + n - 1, each laid out over the
  devices as alone, so a resume at any batch count continues exactly."""
  _write_colours(str(tmp_path / 'folder'), 16)
  config = _config(path=str(tmp_path / 'folder'))
  single, _ = input_pipeline.create_dataset(config)
  batches = [next(single) for _ in range(9)]
  grouped, _ = input_pipeline.create_dataset(config, batches_per_step=3)
  resumed, _ = input_pipeline.create_dataset(config, start_batch=6,
                                             batches_per_step=3)
  for step, it in ((0, grouped), (1, grouped), (2, resumed)):
    got = next(it)
    assert got.shape == (4, 3, 2, 32, 32, 3)
    for k in range(3):
      np.testing.assert_array_equal(got[:, k], batches[3 * step + k])


def test_tfds_stream_resumes_exactly(tmp_path):
  config = _config(name='mnist', path=str(tmp_path), image_size=28,
                   channels=1)
  with tfds.testing.mock_data(num_examples=24):
    uninterrupted, num_examples = input_pipeline.create_dataset(config)
    expected = [next(uninterrupted) for _ in range(6)]
    resumed, _ = input_pipeline.create_dataset(config, start_batch=4)
    got = [next(resumed) for _ in range(2)]
  assert num_examples == 24
  for want, have in zip(expected[4:], got):
    np.testing.assert_array_equal(have, want)


def test_random_flip_is_seeded_and_flips_some(tmp_path):
  image = np.zeros((32, 32, 3), np.uint8)
  image[:, :16] = 255  # Left half white.
  for i in range(16):
    Image.fromarray(image).save(tmp_path / f'{i}.png')
  config = _config(path=str(tmp_path), batch_size=16)
  plain = next(input_pipeline.create_dataset(config)[0]).reshape(16, 32, 32, 3)
  assert np.all(plain[:, :, 0] == 1.0)  # Left column white: not flipped.
  config.data.random_flip = True
  batch = next(input_pipeline.create_dataset(config)[0]).reshape(16, 32, 32, 3)
  flipped = batch[:, 0, 0, 0] < 0  # Left column black: flipped.
  assert 0 < flipped.sum() < 16
  np.testing.assert_array_equal(batch[flipped], plain[flipped][:, :, ::-1])
  np.testing.assert_array_equal(batch[~flipped], plain[~flipped])
  again = next(input_pipeline.create_dataset(config)[0]).reshape(batch.shape)
  np.testing.assert_array_equal(again, batch)


def _as_host(monkeypatch, process, count=2, local_devices=2):
  """Makes this process look like host `process` of `count`, each driving
  `local_devices` of the 4 test devices."""
  monkeypatch.setattr(jax, 'process_count', lambda: count)
  monkeypatch.setattr(jax, 'process_index', lambda: process)
  monkeypatch.setattr(jax, 'local_device_count', lambda: local_devices)
  monkeypatch.setattr(hosts, 'local_axis_indices', lambda: tuple(
      range(process * local_devices, (process + 1) * local_devices)))


@pytest.mark.parametrize('name', ['folder', 'fake', 'fashion_mnist'])
def test_global_batch_does_not_depend_on_the_host_count(tmp_path, name,
                                                        monkeypatch):
  """Two hosts x 2 devices read, between them, exactly the batches one
  host x 4 devices reads, step by step, from the start and resumed: a
  folder, random images and in-memory images (Debian's Fashion-MNIST)."""
  if name == 'fashion_mnist' and not os.path.isdir(
      idx_files.DEBIAN_FASHION_MNIST_DIR):
    pytest.skip('Debian package dataset-fashion-mnist not installed (.ci/run '
                'installs it)')
  _write_colours(str(tmp_path / 'images'), 24)
  # fashion_mnist: no TFDS copy in data.path, so Debian's files are read.
  path = str(tmp_path / ('images' if name == 'folder' else 'empty'))
  config = _config(name=name, path=path, image_size=28, channels=1)
  config.data.random_flip = True
  for start_step in (0, 5):
    one_host, num_examples = input_pipeline.create_dataset(config, start_step)
    expected = [next(one_host) for _ in range(4)]  # (4, 2, 28, 28, 1) each.
    shares = []
    for process in (0, 1):
      with monkeypatch.context() as patch:
        _as_host(patch, process)
        stream, host_num_examples = input_pipeline.create_dataset(
            config, start_step)
      assert host_num_examples == num_examples
      shares.append([next(stream) for _ in range(4)])
    for want, first, second in zip(expected, *shares):
      assert first.shape == (2, 2, 28, 28, 1)
      np.testing.assert_array_equal(np.concatenate([first, second]), want)


def test_tfds_hosts_each_load_their_own_even_split(monkeypatch, tmp_path):
  """TFDS's files are split between hosts (tfds.split_for_jax_process), so
  each reads and shuffles its own half."""
  config = _config(name='mnist', path=str(tmp_path), image_size=28,
                   channels=1, batch_size=4)
  loaded = []
  load = tfds.load
  monkeypatch.setattr(tfds, 'load', lambda name, split, **kwargs: (
      loaded.append(split), load(name, split=split, **kwargs))[1])
  with tfds.testing.mock_data(num_examples=24):
    for process in (0, 1):
      with monkeypatch.context() as patch:
        _as_host(patch, process)
        next(input_pipeline.create_dataset(config)[0])
  assert loaded == tfds.even_splits('train', n=2, drop_remainder=True)


def test_layout_names_devices_batch_and_rows(tmp_path, monkeypatch):
  _write_colours(str(tmp_path), 24)
  config = _config(path=str(tmp_path))
  _as_host(monkeypatch, 1)
  text = input_pipeline.describe_layout(config)
  assert text == (
      'Process 1 of 2: 2 local devices of 4 (pmap axis indices 2, 3); '
      'global batch 8 = 4 devices x 2; this host reads 4 images per step: '
      'rows 4-7 of each global batch, drawn from all 24 examples.')


def test_bad_files_are_skipped_and_named(tmp_path, caplog):
  good = _write_colours(str(tmp_path), 200)
  jpeg = io.BytesIO()
  Image.fromarray(np.full((40, 40, 3), 9, np.uint8)).save(jpeg, 'JPEG')
  (tmp_path / 'truncated.jpg').write_bytes(jpeg.getvalue()[:300])
  (tmp_path / 'empty.png').write_bytes(b'')
  (tmp_path / 'notes.gif').write_bytes(b'plain text, not a GIF')
  files = image_files.list_image_files(str(tmp_path))
  assert len(files) == 203
  kept = image_files.check_image_files(files, 0.02)
  assert len(kept) == len(good)
  assert '3 of 203 image files are unreadable or truncated' in caplog.text
  for name in ('truncated.jpg', 'empty.png', 'notes.gif'):
    assert name in caplog.text
  with pytest.raises(ValueError, match=r'3 of 203 .*max_bad_fraction=0.01'):
    image_files.check_image_files(files, 0.01)
  # Through the pipeline: the run starts on the good files, and one damaged
  # inside (intact signature and end marker) is dropped when it fails to
  # decode.
  damaged = bytearray((tmp_path / '000.png').read_bytes())
  damaged[40:60] = b'\x00' * 20
  (tmp_path / '000.png').write_bytes(bytes(damaged))
  config = _config(path=str(tmp_path))
  config.data.max_bad_fraction = 0.02
  it, num_examples = input_pipeline.create_dataset(config)
  assert num_examples == 200
  seen = np.concatenate([_levels(next(it)) for _ in range(50)])
  assert 0 not in seen  # 000.png was the black one.
  assert set(seen) == set(good[1:])


def test_a_step_with_no_decodable_image_fails_instead_of_spinning(tmp_path):
  _write_colours(str(tmp_path), 8)
  for path in tmp_path.iterdir():  # Intact signature and end, damaged body.
    damaged = bytearray(path.read_bytes())
    damaged[40:60] = b'\x00' * 20
    path.write_bytes(bytes(damaged))
  it, _ = input_pipeline.create_dataset(_config(path=str(tmp_path)))
  with pytest.raises(tf.errors.InvalidArgumentError,
                     match=r'no image of a step of .*folder.* could be read'):
    next(it)


@pytest.mark.parametrize('name', ['folder', 'fake'])
def test_held_in_memory_the_batches_are_those_decoded_each_read(tmp_path,
                                                                name):
  """A table held in memory once decoded gives exactly the batches of
  decoding every image each time it is read: orders, flips, resumes,
  n_critic, with a damaged file in the folder."""
  files = write_image_folder(str(tmp_path))  # Mixed formats and sizes.
  png = next(f for f in files if f.endswith('.png'))
  with open(png, 'r+b') as f:  # Intact signature and end marker.
    f.seek(60)
    f.write(b'\x00' * 20)
  each_read = _config(name=name, path=str(tmp_path), image_size=28,
                      channels=1, batch_size=4)
  each_read.data.random_flip = True
  each_read.data.max_bad_fraction = 0.1
  held = each_read.copy_and_resolve_references()
  held.data.cache_mb = 4  # Above the 1,024 fake images' 3.1 MiB.
  for start, per_step in ((0, 1), (7, 2)):
    streams = [input_pipeline.create_dataset(c, start, per_step)
               for c in (each_read, held)]
    gc.collect()  # The held images outlive the call that made them.
    assert streams[0][1] == streams[1][1]
    for _ in range(10):  # Several epochs of the folder's 12 images.
      np.testing.assert_array_equal(next(streams[1][0]),
                                    next(streams[0][0]))
  assert 'held in memory once decoded (' in (
      input_pipeline.describe_layout(held))
  held.data.cache_mb = 0  # Above the limit: decoded each time.
  assert 'memory' not in input_pipeline.describe_layout(held)


def test_webp_and_animated_gif_decode(tmp_path):
  if not image_files.PIL.features.check('webp'):
    pytest.skip('Pillow built without WebP')
  red = np.zeros((40, 40, 3), np.uint8)
  red[..., 0] = 255
  frames = [Image.fromarray(red), Image.fromarray(255 - red)]
  for i in range(2):
    Image.fromarray(red).save(tmp_path / f'red{i}.webp', lossless=True)
    frames[0].save(tmp_path / f'anim{i}.gif', save_all=True,
                   append_images=frames[1:])
  it, num_examples = input_pipeline.create_dataset(
      _config(path=str(tmp_path), batch_size=4))
  assert num_examples == 4
  images = next(it).reshape(4, 32, 32, 3)
  # Both decode to the red first frame (1, -1, -1), give or take rounding.
  np.testing.assert_allclose(images.mean(axis=(1, 2)),
                             np.tile([1.0, -1.0, -1.0], (4, 1)), atol=0.02)


def test_downscaling_follows_torchvision_resize(tmp_path):
  """Against Pillow's antialiased bilinear resize (torchvision's Resize)."""
  rng = np.random.default_rng(0)
  yy, xx = np.mgrid[:218, :178]
  image = (128 + 60 * np.sin(xx[..., None] / 9.0 + rng.uniform(0, 6, 3))
           + 50 * np.cos(yy[..., None] / 13.0)).clip(0, 255).astype(np.uint8)
  reference = Image.fromarray(image).resize((64, 78), Image.BILINEAR)
  reference = np.asarray(reference, np.float32)[7:71] / 127.5 - 1.0
  got = decoding.preprocess(tf.constant(image), 64, 3).numpy()
  assert got.shape == reference.shape
  assert np.mean(np.abs(got - reference)) < 0.02
  # Through the JPEG path too (DCT-domain downscaling in the decoder).
  Image.fromarray(image).save(tmp_path / 'a.jpg', quality=95)
  decoded = decoding.encoded_decoder(64)(
      tf.io.read_file(str(tmp_path / 'a.jpg')))
  from_jpeg = decoding.preprocess(decoded, 64, 3).numpy()
  assert np.mean(np.abs(from_jpeg - reference)) < 0.03
