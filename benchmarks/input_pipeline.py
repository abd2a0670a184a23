"""Input pipeline throughput on CelebA-like JPEGs, against two references.

Generates a folder of 178x218 JPEGs (CelebA's aligned size), then measures
in one run, each alone on the machine:
  1. the seeds' PyTorch pipeline: torchvision ImageFolder + Resize(64) +
     CenterCrop(64) + ToTensor + Normalize, DataLoader with one worker per
     core (needs torch and torchvision);
  2. this project's folder pipeline at 64x64 (`input_pipeline.create_dataset`);
  3. the jitted train step's consumption at 64x64x3 (the `fake` dataset's
     shape), all at batch 128.
Prints img/s for each and the ratios the targets are stated in.

  python benchmarks/input_pipeline.py [--num_images 3000] [--batches 30]
"""

import argparse
import os
import subprocess
import sys
import tempfile
import time

import numpy as np
from PIL import Image

# torch and TensorFlow crash when loaded into one process, so torchvision is
# measured in a child process and the project's modules load only here.

BATCH = 128


def write_celeba_like(root: str, num_images: int) -> None:
  """Smooth colour fields with noise, JPEG quality 90: about 15 KB each."""
  os.makedirs(os.path.join(root, 'faces'), exist_ok=True)
  rng = np.random.default_rng(0)
  yy, xx = np.mgrid[:218, :178]
  for i in range(num_images):
    pixels = (rng.uniform(0, 255, 3)
              + 60 * np.sin(xx[..., None] / rng.uniform(5, 30)
                            + rng.uniform(0, 6, 3))
              + 40 * np.cos(yy[..., None] / rng.uniform(5, 30))
              + rng.normal(0, 12, (218, 178, 3)))
    Image.fromarray(pixels.clip(0, 255).astype(np.uint8)).save(
        os.path.join(root, 'faces', f'{i:06d}.jpg'), quality=90)


def images_per_second(batches, num_batches: int, warmup: int = 3) -> float:
  for _ in range(warmup):
    next(batches)
  start = time.perf_counter()
  for _ in range(num_batches):
    next(batches)
  return num_batches * BATCH / (time.perf_counter() - start)


def torchvision_rate(root: str, num_batches: int) -> float:
  import torch  # pylint: disable=g-import-not-at-top
  from torchvision import datasets, transforms  # pylint: disable=g-import-not-at-top
  dataset = datasets.ImageFolder(root, transform=transforms.Compose([
      transforms.Resize(64), transforms.CenterCrop(64), transforms.ToTensor(),
      transforms.Normalize((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))]))
  loader = torch.utils.data.DataLoader(
      dataset, batch_size=BATCH, shuffle=True, drop_last=True,
      num_workers=os.cpu_count(), persistent_workers=True)

  def forever():
    while True:
      yield from loader
  return images_per_second(forever(), num_batches)


def project_rate(root: str, num_batches: int) -> float:
  import ml_collections  # pylint: disable=g-import-not-at-top
  from dcgan_jax.data import input_pipeline  # pylint: disable=g-import-not-at-top
  config = ml_collections.ConfigDict({
      'seed': 0, 'batch_size': BATCH,
      'data': {'name': 'folder', 'split': 'train', 'path': root,
               'download': False, 'image_size': 64, 'channels': 3,
               'shuffle_buffer': 10_000, 'random_flip': False,
               'max_bad_fraction': 0.01, 'cache_mb': 0}})
  batches, _ = input_pipeline.create_dataset(config)
  return images_per_second(batches, num_batches)


def train_step_rate(num_steps: int = 3) -> float:
  import jax  # pylint: disable=g-import-not-at-top
  import ml_collections  # pylint: disable=g-import-not-at-top
  from dcgan_jax.gan import steps  # pylint: disable=g-import-not-at-top
  from dcgan_jax.gan import train_states  # pylint: disable=g-import-not-at-top
  config = ml_collections.ConfigDict({
      'data': {'image_size': 64, 'channels': 3},
      'model': {'nz': 100, 'ngf': 64, 'ndf': 64},
      'optim': {'lr_g': 2e-4, 'lr_d': 2e-4, 'b1': 0.5, 'b2': 0.999}})
  g_state, d_state = train_states.create_train_states(config, jax.random.key(0))
  step = jax.jit(steps.train_step, donate_argnums=(0, 1))
  batch = jax.random.uniform(jax.random.key(1), (BATCH, 64, 64, 3), minval=-1)
  rng = jax.random.key(2)

  def forever():
    nonlocal g_state, d_state
    while True:
      g_state, d_state, metrics = step(g_state, d_state, batch, rng)
      yield jax.block_until_ready(metrics)
  return images_per_second(forever(), num_steps, warmup=1)


def main():
  parser = argparse.ArgumentParser(description=__doc__)
  parser.add_argument('--num_images', type=int, default=3000)
  parser.add_argument('--batches', type=int, default=30)
  parser.add_argument('--dir', default=None,
                      help='Reuse or keep the generated images here.')
  parser.add_argument('--torchvision_only', action='store_true',
                      help=argparse.SUPPRESS)
  parser.add_argument('--ours_only', action='store_true',
                      help='Time only the dcgan_jax pipeline (no torch).')
  args = parser.parse_args()
  root = args.dir or tempfile.mkdtemp(prefix='celeba_like_')
  if args.torchvision_only:
    print(torchvision_rate(root, args.batches))
    return
  if not os.path.isdir(os.path.join(root, 'faces')):
    write_celeba_like(root, args.num_images)
  if args.ours_only:
    print(f'dcgan_jax folder pipeline: {project_rate(root, args.batches):.0f} '
          'img/s')
    return

  print(f'{args.num_images} JPEGs 178x218 -> 64x64x3, batch {BATCH}, '
        f'{os.cpu_count()} cores')
  child = subprocess.run(
      [sys.executable, __file__, '--torchvision_only', f'--dir={root}',
       f'--batches={args.batches}'], capture_output=True, text=True,
      check=True)
  torch_rate = float(child.stdout.split()[-1])
  print(f'torchvision ImageFolder + DataLoader({os.cpu_count()} workers): '
        f'{torch_rate:.0f} img/s')
  ours = project_rate(root, args.batches)
  print(f'dcgan_jax folder pipeline: {ours:.0f} img/s')
  consumed = train_step_rate()
  print(f'train step consumes: {consumed:.1f} img/s')
  print(f'pipeline / train step: {ours / consumed:.1f}x (target >= 3)')
  print(f'pipeline / torchvision: {ours / torch_rate:.2f}x (target >= 1.5)')


if __name__ == '__main__':
  main()
