"""Sample quality of dcgan_jax's recipes against the PyTorch DCGAN tutorial's
loop, over seeds, on the same data.

Every run trains on the first --images (10,000) Fashion-MNIST training
images (Debian's dataset-fashion-mnist files) at 28x28x1, batch 64, and is
scored the same way: the offline classifier's FD and KID
(`classifier_fd`, `classifier_kid`, the Fashion-MNIST classifier) of
10,000 samples against 10,000 real training images. Per seed:

- torch: the tutorial's loop (benchmarks/torch_reference.py: the same
  networks, N(0, 0.02) init, BCE, Adam 2e-4 / 0.5; D on a real and a fake
  batch, then G on the same fakes) for --steps steps, the images shuffled
  every epoch; samples from G in eval mode (BatchNorm's running averages).
- default: `python -m dcgan_jax.main --config=configs/fashion_mnist.py` on
  a folder of the same images as PNGs, batch 64, --steps steps, with an
  EMA of G kept (`ema_decay=0.999`); scored with the trained weights (the
  config's default) and, as "+ EMA", with the average (`python -m
  dcgan_jax.sample --noema` and without): one run gives both, as EMA does
  not change training.
- hinge: the same with `objective=hinge`; wgan_gp: configs/mnist_wgan_gp.py
  (5 critic updates of 64 images per step, Adam 1e-4 / 0, 0.9) on the same
  folder. Both run for the wall time of default's training: their step
  counts are --steps times default's step time over theirs, timed in this
  process before the runs.

Each run's wall time is its process's, start to exit. Prints a markdown
table: FD and KID mean +- std over the seeds, and each seed's FD.

  python benchmarks/quality_vs_torch.py [--seeds 0 1 2 3 4] [--steps 5000]
      [--recipes torch default hinge wgan_gp] [--override KEY=VALUE ...]

Needs torch (`pip install -e '.[bench]'`; torchvision is not used).
"""

import argparse
import ast
import functools
import importlib
import json
import os
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)

# pylint: disable=g-import-not-at-top,wrong-import-position
import numpy as np

from benchmarks import end_to_end
from benchmarks import summary
from dcgan_jax.data import idx_files
# pylint: enable=g-import-not-at-top,wrong-import-position

BATCH = 64
NUM_SAMPLES = 10_000
# dcgan_jax recipes: config module (configs/NAME.py) and overrides; all
# train on the folder. The DCGAN ones keep an EMA of G, which does not
# change training, so that one run scores both.
RECIPES = {
    'default': ('fashion_mnist', {'ema_decay': 0.999}),
    'hinge': ('fashion_mnist', {'objective': 'hinge', 'ema_decay': 0.999}),
    'wgan_gp': ('mnist_wgan_gp', {}),
}
# Recipes that run for default's wall time instead of --steps steps.
EQUAL_TIME = ('hinge', 'wgan_gp')


def torch_worker(args) -> None:
  """The tutorial's loop on the images; writes samples to --out (.npz)."""
  import torch  # pylint: disable=g-import-not-at-top
  from benchmarks import torch_reference  # pylint: disable=g-import-not-at-top

  torch.manual_seed(args.seed)
  images = idx_files.read_images(idx_files.DEBIAN_FASHION_MNIST_DIR,
                                 'train')[:args.images]
  # ToTensor + Normalize((0.5,), (0.5,)), as the tutorial.
  data = torch.from_numpy(images).permute(0, 3, 1, 2).float() / 127.5 - 1.0
  step = torch_reference.ReferenceStep(tuple(args.architecture), 1, BATCH)
  order = torch.Generator().manual_seed(args.seed)
  done = 0
  while done < args.steps:
    permutation = torch.randperm(len(data), generator=order)
    for start in range(0, len(data) - BATCH + 1, BATCH):
      step(data[permutation[start:start + BATCH]])
      done += 1
      if done == args.steps:
        break
  step.netG.eval()
  with torch.no_grad():
    samples = torch.cat([
        step.netG(torch.randn(500, step.nz, 1, 1))
        for _ in range(NUM_SAMPLES // 500)])
  samples = torch.clamp(torch.round((samples + 1.0) * 127.5), 0, 255)
  np.savez(args.out, images=samples.permute(0, 2, 3, 1).to(
      torch.uint8).numpy())


def _overrides(recipe: str, extra: list[str]) -> dict[str, object]:
  """A recipe's config overrides beyond its file's, --override's last."""
  overrides = {} if recipe == 'wgan_gp' else {'batch_size': BATCH}
  overrides.update(RECIPES[recipe][1])
  for item in extra:
    key, value = item.split('=', 1)
    try:
      overrides[key] = ast.literal_eval(value)
    except (ValueError, SyntaxError):
      overrides[key] = value
  return overrides


def _ours_command(recipe: str, folder: str, workdir: str, seed: int,
                  steps: int, extra: list[str]) -> list[str]:
  overrides = {'data.name': 'folder', 'data.path': folder, 'seed': seed,
               'num_train_steps': steps, 'eval.metrics': '',
               'sample_every_steps': steps, 'checkpoint_every_steps': steps,
               **_overrides(recipe, extra)}
  return [sys.executable, '-m', 'dcgan_jax.main',
          f'--config=configs/{RECIPES[recipe][0]}.py', f'--workdir={workdir}',
          *[f'--config.{key}={value}' for key, value in overrides.items()]]


def _step_seconds(recipe: str, extra: list[str]) -> float:
  """Median time of one jitted training step of a recipe, in this process."""
  import jax  # pylint: disable=g-import-not-at-top
  from dcgan_jax.gan import steps  # pylint: disable=g-import-not-at-top
  from dcgan_jax.gan import train_states  # pylint: disable=g-import-not-at-top

  config = importlib.import_module(f'configs.{RECIPES[recipe][0]}').get_config()
  config.update_from_flattened_dict(_overrides(recipe, extra))
  recipe_ = train_states.Recipe.from_config(config)
  g_state, d_state = train_states.create_train_states(config, jax.random.key(0))
  lead = (recipe_.n_critic,) if recipe_.n_critic > 1 else ()
  batch = jax.random.uniform(jax.random.key(1),
                             lead + (config.batch_size, 28, 28, 1), minval=-1)
  step = jax.jit(functools.partial(steps.train_step, recipe=recipe_),
                 donate_argnums=(0, 1))
  states = step(g_state, d_state, batch, jax.random.key(2))[:2]
  times = []
  for _ in range(25):
    start = time.perf_counter()
    states = jax.block_until_ready(step(*states, batch,
                                        jax.random.key(2))[:2])
    times.append(time.perf_counter() - start)
  return sorted(times)[len(times) // 2]


def main():
  parser = argparse.ArgumentParser(
      description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument('--seeds', nargs='+', type=int, default=[0, 1, 2, 3, 4])
  parser.add_argument('--steps', type=int, default=5000)
  parser.add_argument('--images', type=int, default=10_000)
  parser.add_argument('--recipes', nargs='+', default=['torch', *RECIPES],
                      choices=['torch', *RECIPES])
  parser.add_argument('--override', nargs='*', default=[],
                      help='KEY=VALUE config overrides for every dcgan_jax '
                      'run, e.g. ema_decay=0')
  parser.add_argument('--dir', default=os.path.join(
      tempfile.gettempdir(), 'fashion_mnist_png'),
                      help='the images as PNGs (written if absent)')
  parser.add_argument('--results', default='',
                      help='a JSON file to keep each run\'s results in')
  # The torch worker's own flags.
  parser.add_argument('--torch_worker', action='store_true',
                      help='(internal) run the PyTorch loop')
  parser.add_argument('--seed', type=int, default=0)
  parser.add_argument('--architecture', nargs=2, type=int)
  parser.add_argument('--out', default='')
  args = parser.parse_args()
  if args.torch_worker:
    torch_worker(args)
    return

  # pylint: disable=g-import-not-at-top
  from configs import fashion_mnist
  from dcgan_jax import evaluation
  from dcgan_jax import models
  from dcgan_jax import sample
  # pylint: enable=g-import-not-at-top
  if not os.path.isdir(args.dir):
    end_to_end.write_pngs(args.dir, args.images)
  config = fashion_mnist.get_config()
  config.eval.metrics = 'classifier_fd,classifier_kid'
  evaluator = evaluation.Evaluator(config)
  step_counts = {'torch': args.steps, 'default': args.steps}
  base = _step_seconds('default', args.override)
  for recipe in args.recipes:
    if recipe in EQUAL_TIME:
      seconds = _step_seconds(recipe, args.override)
      step_counts[recipe] = max(1, round(args.steps * base / seconds))
      print(f'{recipe}: {seconds * 1e3:.0f} ms/step against default\'s '
            f'{base * 1e3:.0f}: {step_counts[recipe]} steps', flush=True)

  results = {}  # (row, seed) -> {'fd', 'kid', 'seconds'}
  with tempfile.TemporaryDirectory() as work:
    for seed in args.seeds:
      for recipe in args.recipes:
        log = os.path.join(work, f'{recipe}_{seed}.log')
        workdir = os.path.join(work, f'{recipe}_{seed}')
        if recipe == 'torch':
          out = os.path.join(work, f'torch_{seed}.npz')
          seconds = end_to_end.timed_run([
              sys.executable, os.path.abspath(__file__), '--torch_worker',
              f'--seed={seed}', f'--steps={args.steps}',
              f'--images={args.images}', '--architecture',
              *map(str, models.ARCHITECTURES[28]), f'--out={out}'], log)
          with np.load(out, allow_pickle=False) as f:
            generated = {'torch': f['images']}
        else:
          seconds = end_to_end.timed_run(
              _ours_command(recipe, args.dir, workdir, seed,
                            step_counts[recipe], args.override), log)
          generated = {recipe: sample.generate_images(
              workdir, NUM_SAMPLES, seed=seed, use_ema=False)}
          with_ema = sample.generate_images(workdir, NUM_SAMPLES, seed=seed)
          if not np.array_equal(with_ema, generated[recipe]):
            generated[f'{recipe} + EMA'] = with_ema
        for row, images in generated.items():
          scores = evaluator.score_images(images)
          results[row, seed] = {'fd': scores['classifier_fd'],
                                'kid': scores['classifier_kid'],
                                'seconds': seconds,
                                'steps': step_counts[recipe]}
          print(f'seed {seed} {row}: FD {scores["classifier_fd"]:.1f}, KID '
                f'{scores["classifier_kid"]:.2f}, {seconds:.0f} s', flush=True)
        if args.results:
          with open(args.results, 'w') as f:
            json.dump({f'{r}|{s}': v for (r, s), v in results.items()}, f,
                      indent=1)

  rows = list(dict.fromkeys(row for row, _ in results))
  print(f'\n{args.images} Fashion-MNIST images, 28x28x1, batch {BATCH}; '
        f'seeds {args.seeds}; classifier FD and KID of {NUM_SAMPLES} samples '
        'against 10,000 real images, mean +- std over the seeds.\n')
  print('| run | steps | wall s (mean) | FD | KID | FD per seed |')
  print('| --- | --- | --- | --- | --- | --- |')
  for row in rows:
    runs = [results[row, s] for s in args.seeds if (row, s) in results]
    print(f'| {row} | {runs[0]["steps"]} | '
          f'{np.mean([r["seconds"] for r in runs]):.0f} | '
          f'{summary.mean_std([r["fd"] for r in runs])} | '
          f'{summary.mean_std([r["kid"] for r in runs], 2)} | '
          f'{" ".join(format(r["fd"], ".1f") for r in runs)} |')


if __name__ == '__main__':
  main()
