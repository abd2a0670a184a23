"""Test setup: four fake CPU devices, so pmap paths run on any machine,
cheaper compilation, and one compilation cache for the whole run.

XLA reads the flag when JAX initialises its backend, so it is set here,
before any test module imports jax.
"""

import importlib
import os

# The suite compiles hundreds of small programs, most run a few times:
# XLA:CPU's cheaper LLVM optimisation compiles them faster and leaves the
# results unchanged (the subprocesses inherit it too).
os.environ['XLA_FLAGS'] = (
    os.environ.get('XLA_FLAGS', '') +
    ' --xla_force_host_platform_device_count=4'
    ' --xla_llvm_disable_expensive_passes=true'
    ' --xla_backend_optimization_level=1').strip()
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
# Many tests, and the processes they start, compile the same small
# programs: JAX's persistent cache, shared by the test workers and their
# subprocesses through the environment, compiles each once.
os.environ.setdefault('JAX_COMPILATION_CACHE_DIR', os.path.join(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
    '.pytest_cache', 'jax_compilation'))
os.environ.setdefault('JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS', '0')

import jax  # pylint: disable=g-import-not-at-top,wrong-import-position
import ml_collections  # pylint: disable=g-import-not-at-top,wrong-import-position
import numpy as np  # pylint: disable=g-import-not-at-top,wrong-import-position
from PIL import Image  # pylint: disable=g-import-not-at-top,wrong-import-position

from dcgan_jax.gan import sweep  # pylint: disable=g-import-not-at-top,wrong-import-position
from dcgan_jax.gan import train_states  # pylint: disable=g-import-not-at-top,wrong-import-position
from dcgan_jax.run import checkpoint  # pylint: disable=g-import-not-at-top,wrong-import-position


REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GOLDEN = os.path.join(REPO, 'tests', 'golden')


def pytest_collection_modifyitems(items):
  # The slow tests first: on two workers they start at once and the many
  # short tests even out the end, instead of one long test running alone.
  items.sort(key=lambda item: item.get_closest_marker('slow') is None)


def tiny_config(image_size: int = 28, channels: int = 1, batch_size: int = 16,
                width: int = 8, nz: int = 16) -> ml_collections.ConfigDict:
  """The step-level fields of a config, small enough for fast CPU tests."""
  return ml_collections.ConfigDict({
      'seed': 0,
      'batch_size': batch_size,
      'data': {'image_size': image_size, 'channels': channels},
      'model': {'nz': nz, 'ngf': width, 'ndf': width},
      'optim': {'lr_g': 2e-4, 'lr_d': 2e-4, 'b1': 0.5, 'b2': 0.999},
  })


def write_image_folder(root: str, count: int = 12) -> list[str]:
  """Mixed formats, modes and sizes, nested at several depths."""
  rng = np.random.default_rng(0)
  paths = []
  for i in range(count):
    sub = os.path.join(root, f'class_{i % 3}', 'nested' if i % 2 else '')
    os.makedirs(sub, exist_ok=True)
    h, w = int(rng.integers(20, 60)), int(rng.integers(20, 60))
    pixels = rng.integers(0, 256, (h, w, 4), dtype=np.uint8)
    kind = i % 5
    if kind == 0:
      image, name = Image.fromarray(pixels[..., :3]), f'{i}.jpg'
    elif kind == 1:
      image, name = Image.fromarray(pixels[..., 0]), f'{i}.png'  # Grayscale.
    elif kind == 2:
      image, name = Image.fromarray(pixels, 'RGBA'), f'{i}.PNG'
    elif kind == 3:
      image, name = Image.fromarray(pixels[..., :3]).convert('P'), f'{i}.gif'
    else:
      image, name = Image.fromarray(pixels[..., :3]), f'{i}.bmp'
    image.save(os.path.join(sub, name))
    paths.append(os.path.join(sub, name))
  with open(os.path.join(root, 'notes.txt'), 'w') as f:
    f.write('not an image')
  return paths


def restore_checkpoint(workdir: str, step: int) -> tuple:
  """(g_state, d_state, rng) of a run's checkpoint at step, restored into
  the structure of the config saved with it."""
  manager = checkpoint.create_manager(workdir, read_only=True)
  config = checkpoint.restore_config(manager, step)
  listed = sweep.members(config)
  if listed:  # A sweep's stacked states and step keys.
    keys = sweep.member_keys([m['seed'] for m in listed])[1]
    return checkpoint.restore(manager, step,
                              *sweep.create_member_states(config), keys)
  g_state, d_state = train_states.create_train_states(config, jax.random.key(0))
  return checkpoint.restore(manager, step, g_state, d_state, jax.random.key(0))


def arrays_by_path(tree) -> dict[str, np.ndarray]:
  """A tree's leaves as numpy arrays, keyed by their paths."""
  return {jax.tree_util.keystr(path): np.asarray(leaf)
          for path, leaf in jax.tree_util.tree_leaves_with_path(tree)}


def load_config(name: str) -> ml_collections.ConfigDict:
  """configs/NAME.py's config."""
  return importlib.import_module(f'configs.{name}').get_config()


def write_labeled_folder(root, per_class=40, size=28):
  """Two classes a classifier separates at once: dark and bright images."""
  rng = np.random.default_rng(0)
  for label, (low, high) in enumerate(((0, 90), (160, 256))):
    os.makedirs(os.path.join(root, f'class_{label}'), exist_ok=True)
    for i in range(per_class):
      pixels = rng.integers(low, high, (size, size), dtype=np.uint8)
      Image.fromarray(pixels).save(
          os.path.join(root, f'class_{label}', f'{i}.png'))


def eval_config(tmp_path, metrics='classifier_fd,classifier_kid'):
  """configs/test.py evaluating on a labeled folder in tmp_path/images."""
  write_labeled_folder(str(tmp_path / 'images'))
  config = load_config('test')
  config.data.name = 'folder'
  config.data.path = str(tmp_path / 'images')
  config.num_train_steps = 4
  config.eval_every_steps = 2
  config.eval.metrics = metrics
  config.eval.num_samples = 32
  config.eval.batch_size = 16
  config.eval.kid_subsets = 5
  config.eval.kid_subset_size = 16
  config.eval.cache_dir = str(tmp_path / 'cache')
  config.eval.classifier_epochs = 30
  config.eval.min_classifier_accuracy = 0.9
  return config
