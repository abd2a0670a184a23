"""G's exponential moving average against its trained weights, on real data.

Trains the Fashion-MNIST recipe (configs/fashion_mnist.py: `dcgan` at
28x28x1, batch 128, Adam 2e-4 / 0.5; Debian's dataset-fashion-mnist files)
for each seed, as `python -m dcgan_jax.main` trains it (the same states,
batches and step; EMA does not change training), and keeps several
averages of G's weights beside it. At each --eval_at step it scores, with
the offline classifier's FD and KID of 10,000 samples against 10,000 real
images (`eval.metrics=classifier_fd,classifier_kid`):

- the trained weights;
- the average at each --decays value, as the package keeps it (warm-up
  `ema.ema_decay_at`, BatchNorm statistics recomputed for the averaged
  weights by `ema.recompute_ema_batch_stats`);
- averages whose half-life is a fixed fraction (--fractions) of G's updates
  so far (StyleGAN2's ramp without its cap), statistics recomputed;
- at --ablation_decay, each fix left out: no warm-up (the average starts
  at the initial weights with the full decay) and/or the running BatchNorm
  statistics averaged alongside the weights.

Prints, per step and variant, FD and KID as mean +- std over the seeds and
the FD relative to the trained weights (mean of the per-seed ratios, with
the worst seed's).

  python benchmarks/ema_quality.py [--seeds 0 1 2] [--steps 10000] \
      [--eval_at 2000 10000] [--decays 0.999 0.9999] \
      [--fractions 0.05 0.1 0.2 0.35] [--grids DIR]
"""

import argparse
import functools
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# pylint: disable=g-import-not-at-top,wrong-import-position
from flax import jax_utils
import jax
import jax.numpy as jnp
import numpy as np

from benchmarks import summary
from configs import fashion_mnist
from dcgan_jax.data import input_pipeline
from dcgan_jax import evaluation
from dcgan_jax.gan import ema
from dcgan_jax.gan import forward
from dcgan_jax.gan import noise
from dcgan_jax.gan import steps
from dcgan_jax.gan import train_states
from dcgan_jax.output import images
from dcgan_jax.output import paths
# pylint: enable=g-import-not-at-top,wrong-import-position

TRAINED = 'trained weights'


def _half_life_fraction(fraction):
  """The decay whose half-life is `fraction` of the G updates so far."""
  return lambda n: 0.5 ** (1.0 / jnp.maximum(fraction * n, 1e-6))


def _variants(decays, fractions, ablation_decay):
  """name -> (decay after n G updates as a function of n, BatchNorm
  statistics recomputed for the averaged weights)."""
  warmed_up = lambda d: functools.partial(ema.ema_decay_at, d)
  constant = lambda d: lambda n: d
  variants = {f'EMA {d}': (warmed_up(d), True) for d in decays}
  variants.update({f'half-life {f} x updates': (_half_life_fraction(f), True)
                   for f in fractions})
  d = ablation_decay
  variants.update({
      f'EMA {d}, no warm-up': (constant(d), True),
      f'EMA {d}, averaged statistics': (warmed_up(d), False),
      f'EMA {d}, no warm-up, averaged statistics': (constant(d), False),
  })
  return variants


def _average(decay_at, averages, g_state):
  """One EMA update of (params, batch_stats) after G's update."""
  beta = decay_at(g_state.step)
  mix = lambda ema, new: beta * ema + (1.0 - beta) * new
  return jax.tree.map(mix, averages, (g_state.params, g_state.batch_stats))


def train_and_score(config, seed, num_steps, eval_at, variants, evaluator,
                    grids_dir=''):
  """{step: {variant: metrics}} of one seed."""
  config = config.copy_and_resolve_references()
  config.seed = seed
  init_rng, step_rng = noise.run_keys(seed)
  g_state, d_state = train_states.create_train_states(config, init_rng)
  batches, _ = input_pipeline.create_dataset(config)
  train_step = jax.jit(functools.partial(steps.train_step,
                                         recipe=train_states.Recipe.from_config(
                                             config)),
                       donate_argnums=(0, 1))
  start = (g_state.params, g_state.batch_stats)
  averages = {name: jax.tree.map(np.copy, start) for name in variants}

  @jax.jit
  def update_averages(averages, g_state):
    return {name: _average(variants[name][0], averages[name], g_state)
            for name in variants}

  recompute = jax.jit(ema.recompute_ema_batch_stats, static_argnums=(2, 3))
  fixed_z = noise.image_z(seed, np.arange(config.grid_images),
                          config.model.nz)
  results = {}
  started = time.perf_counter()
  for step in range(1, num_steps + 1):
    g_state, d_state, _ = train_step(g_state, d_state,
                                     next(batches)[0], step_rng)
    averages = update_averages(averages, g_state)
    if step not in eval_at:
      continue
    scored = {TRAINED: evaluator(jax_utils.replicate(g_state))}
    inference = {TRAINED: g_state}
    for name, (_, recomputed) in variants.items():
      params, batch_stats = averages[name]
      state = g_state.replace(ema_params=params, ema_batch_stats=batch_stats)
      if recomputed:
        state = recompute(state, step_rng, config.ema_stats_batches,
                          config.batch_size)
      scored[name] = evaluator(jax_utils.replicate(state))
      inference[name] = state
    results[step] = scored
    print(f'seed {seed} step {step} ({time.perf_counter() - started:.0f} s): '
          + ', '.join(f'{name} {m["classifier_fd"]:.2f}'
                      for name, m in scored.items()), flush=True)
    if grids_dir:
      for name, state in inference.items():
        grid = images.make_grid(images.to_uint8(forward.generate(state,
                                                                 fixed_z)))
        file_name = name.replace(' ', '_').replace(',', '')
        images.save_png(paths.path(grids_dir) /
                        f'seed{seed}_step{step}_{file_name}.png', grid)
  return results


def main():
  parser = argparse.ArgumentParser(
      description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument('--seeds', nargs='+', type=int, default=[0, 1, 2])
  parser.add_argument('--steps', type=int, default=10_000)
  parser.add_argument('--eval_at', nargs='+', type=int, default=[2000, 10_000])
  parser.add_argument('--decays', nargs='+', type=float,
                      default=[0.999, 0.9999])
  parser.add_argument('--fractions', nargs='+', type=float,
                      default=[0.05, 0.1, 0.2, 0.35],
                      help="averages whose half-life is this fraction of "
                      "G's updates so far")
  parser.add_argument('--ablation_decay', type=float, default=0.999)
  parser.add_argument('--grids', default='',
                      help='write each variant\'s fixed-noise grid here')
  args = parser.parse_args()

  config = fashion_mnist.get_config()
  # The averages are kept here, beside a G that keeps none.
  config.ema_decay = 0.0
  config.eval.raw_weights = False
  config.eval.metrics = 'classifier_fd,classifier_kid'
  evaluator = evaluation.Evaluator(config)
  variants = _variants(args.decays, args.fractions, args.ablation_decay)
  per_seed = [train_and_score(config, seed, args.steps, set(args.eval_at),
                              variants, evaluator, args.grids)
              for seed in args.seeds]
  print(f'\nFashion-MNIST, configs/fashion_mnist.py (batch '
        f'{config.batch_size}), seeds {args.seeds}: classifier FD and KID '
        'of 10,000 samples, mean +- std over the seeds; FD / trained '
        "weights' FD: mean over the seeds (worst seed).\n")
  print('| step | G | FD | KID | FD / trained |')
  print('| --- | --- | --- | --- | --- |')
  for step in sorted(args.eval_at):
    for name in [TRAINED, *variants]:
      fd = [r[step][name]['classifier_fd'] for r in per_seed]
      kid = [r[step][name]['classifier_kid'] for r in per_seed]
      ratio = [f / r[step][TRAINED]['classifier_fd']
               for f, r in zip(fd, per_seed)]
      print(f'| {step} | {name} | {summary.mean_std(fd, 2)} | '
            f'{summary.mean_std(kid, 2)} | '
            f'{np.mean(ratio):.2f} ({max(ratio):.2f}) |')


if __name__ == '__main__':
  main()
