"""Seconds per evaluation of N generated images: generating and embedding
them on the devices, then each metric, with the KID subsets and the
k-nearest-neighbour metrics on the devices (ours) against the same on the
host (numpy float64 KID, as this package computed it before; the authors'
`prdc` package for precision/recall/density/coverage), in one run.

Features are random (the metrics' cost depends on N and D alone), in
Inception's 2048 dimensions and the classifier's 128; embedding is timed
for the classifier (Inception at 299x299 is timed on --inception_images
and scaled to N).

  python benchmarks/eval_cost.py [--num 10000] [--inception_images 200]
"""

import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import jax  # pylint: disable=g-import-not-at-top,wrong-import-position
from flax import jax_utils  # pylint: disable=g-import-not-at-top,wrong-import-position

from configs import fashion_mnist  # pylint: disable=g-import-not-at-top,wrong-import-position
from dcgan_jax import evaluation  # pylint: disable=g-import-not-at-top,wrong-import-position
from dcgan_jax.evaluation import classifier  # pylint: disable=g-import-not-at-top,wrong-import-position
from dcgan_jax.evaluation import distances  # pylint: disable=g-import-not-at-top,wrong-import-position
from dcgan_jax.evaluation import inception  # pylint: disable=g-import-not-at-top,wrong-import-position
from dcgan_jax.gan import train_states  # pylint: disable=g-import-not-at-top,wrong-import-position
from tests.evaluation import inception_reference  # pylint: disable=g-import-not-at-top,wrong-import-position


def host_kid(x, y, num_subsets=100, subset_size=1000, seed=0):
  """KID in numpy float64 on the host."""
  rng = np.random.default_rng(seed)
  values = []
  for _ in range(num_subsets):
    a = x[rng.choice(len(x), subset_size, replace=False)].astype(np.float64)
    b = y[rng.choice(len(y), subset_size, replace=False)].astype(np.float64)
    k = lambda u, v: (u @ v.T / x.shape[1] + 1) ** 3
    k_aa, k_bb = k(a, a), k(b, b)
    m = subset_size
    values.append((k_aa.sum() - np.trace(k_aa)) / (m * (m - 1))
                  + (k_bb.sum() - np.trace(k_bb)) / (m * (m - 1))
                  - 2 * k(a, b).mean())
  return float(np.mean(values))


def host_prdc(real, fake):
  import prdc  # pylint: disable=g-import-not-at-top
  return (prdc.compute_prdc(real, fake, 3), prdc.compute_prdc(real, fake, 5))


def timed(fn, *args, repeats=1):
  fn(*args)  # Compiles.
  start = time.perf_counter()
  for _ in range(repeats):
    result = fn(*args)
  jax.block_until_ready(result)
  return (time.perf_counter() - start) / repeats


def main():
  parser = argparse.ArgumentParser(
      description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument('--num', type=int, default=10_000)
  parser.add_argument('--inception_images', type=int, default=200)
  args = parser.parse_args()
  rng = np.random.default_rng(0)
  rows = []

  # Generating and embedding, on the devices.
  config = fashion_mnist.get_config()
  config.eval.num_samples = args.num
  config.eval.batch_size = 500
  config.eval.metrics = ''  # No feature network loaded: set below.
  evaluator = evaluation.Evaluator(config)
  g_state, _ = train_states.create_train_states(config, jax.random.key(0))
  g_state = jax_utils.replicate(g_state)
  variables = classifier.Classifier(10).init(
      jax.random.key(0), np.zeros((1, 28, 28, 1), np.uint8))
  evaluator.features.spaces = {'classifier': (classifier.features, variables)}
  rows.append(('G + classifier features of N images', timed(
      lambda: evaluator.features.fake('classifier', g_state)[0])))
  weights = inception.variables_from_torch(
      inception_reference.random_state_dict())
  config.eval.num_samples = args.inception_images
  evaluator = evaluation.Evaluator(config)
  evaluator.features.spaces = {'inception': (inception.features, weights)}
  seconds = timed(lambda: evaluator.features.fake('inception', g_state)[0])
  rows.append((f'G + Inception features (timed on {args.inception_images}, '
               'scaled to N)', seconds * args.num / args.inception_images))

  for dim, space in ((2048, 'Inception'), (128, 'classifier')):
    real = np.abs(rng.normal(size=(args.num, dim))).astype(np.float32)
    fake = np.abs(rng.normal(size=(args.num, dim)) * 1.1).astype(np.float32)
    rows.append((f'FD, {space} ({dim}-d), host float64', timed(
        distances.frechet_distance_of_features, real, fake)))
    rows.append((f'KID 100 x 1000, {space}, device', timed(
        distances.kernel_inception_distance, real, fake)))
    rows.append((f'KID 100 x 1000, {space}, host numpy float64', timed(
        host_kid, real, fake)))
    rows.append((f'precision/recall/density/coverage, {space}, device',
                 timed(distances.precision_recall_density_coverage, real,
                       fake)))
    rows.append((f'precision/recall/density/coverage, {space}, host prdc '
                 '(k=3 and k=5)', timed(host_prdc, real, fake)))
  logits = rng.normal(size=(args.num, 1008)) * 3
  rows.append(('Inception Score (10 splits), host float64',
               timed(distances.inception_score, logits)))

  print(f'N = {args.num}; {jax.device_count()} {jax.devices()[0].platform} '
        'device(s)')
  print()
  print('| part | seconds |')
  print('| --- | --- |')
  for name, seconds in rows:
    print(f'| {name} | {seconds:.2f} |')


if __name__ == '__main__':
  main()
