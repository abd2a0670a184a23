"""Training-step throughput of dcgan_jax against the PyTorch reference step,
measured in the same run.

Each (implementation, shape, dtype) runs in a child process of its own, so
that its peak memory is its own (RSS on CPU, device memory on GPU) and
torch never shares a process with JAX's XLA runtime. Prints img/s (median
of --repeats timed calls after --warmup untimed ones), peak memory and the
ratio of dcgan_jax's img/s to PyTorch eager's, and each step's time
relative to the default jax step's (img/s counts G's batch per step). With --peak it also times a
large matmul in each dtype on the device and reports each step's
convolution GFLOP/s (benchmarks/layer_flops.py's count) as a fraction of
it.

  python benchmarks/step_throughput.py                     # CPU: 64x64x3 and 32x32x1, batch 64
  python benchmarks/step_throughput.py --batch 128 512 --dtypes float32 bfloat16 \
      --impls jax torch torch_compile --peak               # GPU

Implementations: jax (`steps.train_step`, jitted, states donated; run
with glibc's huge-page tunable, as the training program runs),
jax_4k_pages (the same without the tunable), jax_separate (`d_step` then
`g_step`: two G forwards), jax_no_winograd
(`train_step` with the CPU forms' Winograd variants off), jax_wgan_gp
(`train_step` with WGAN-GP, 5 critic updates per step, D without
BatchNorm), jax_unroll5 (`train_step` with G's loss through 5 unrolled D
updates), jax_d_norm_none (D without BatchNorm, the reference for the
next rows), jax_spectral (D spectrally normalised), jax_spectral_g (G too),
jax_r1 (R1 with gamma 10 at every D update, D without BatchNorm),
jax_r1_lazy16 (the same every 16th update, StyleGAN2's lazy
regularisation: each timed call is 16 steps, and a step's time their
mean), jax_diffaugment (DiffAugment's color, translation and cutout on
everything D sees), jax_ada (ADA's pipeline and its controller: each op
costs the same at any p), torch (the PyTorch
tutorial's loop, eager; benchmarks/torch_reference.py), torch_compile (the
same with torch.compile'd networks). torch is optional: `pip install -e
'.[bench]'`.
"""

import argparse
import functools
import json
import os
import resource
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))


def print_result(result: dict) -> None:
  """A worker process's answer to `worker_result`, on stdout."""
  print('RESULT ' + json.dumps(result), flush=True)


def worker_result(command: list[str], what: str,
                  env: dict[str, str] | None = None) -> dict | None:
  """Runs a worker process; its `print_result` answer, or None (printing
  the end of its stderr) if it gave none."""
  done = subprocess.run(command, capture_output=True, text=True, check=False,
                        env=env)
  for line in done.stdout.splitlines():
    if line.startswith('RESULT '):
      return json.loads(line[len('RESULT '):])
  print(f'{what} failed:\n{done.stderr[-2000:]}')
  return None


def _peak_rss_mib() -> float:
  return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _timed(step, warmup: int, repeats: int, sync) -> list[float]:
  for _ in range(warmup):
    step()
  sync()
  times = []
  for _ in range(repeats):
    start = time.perf_counter()
    step()
    sync()
    times.append(time.perf_counter() - start)
  return times


# Recipes timed against the default step: config overrides.
RECIPES = {
    'jax_wgan_gp': {'objective': 'wgan_gp', 'n_critic': 5,
                    'model': {'d_norm': 'none'}},
    'jax_unroll5': {'unroll_steps': 5},
    'jax_d_norm_none': {'model': {'d_norm': 'none'}},
    'jax_spectral': {'model': {'d_norm': 'spectral'}},
    'jax_spectral_g': {'model': {'d_norm': 'spectral', 'g_spectral': True}},
    'jax_r1': {'r1_gamma': 10.0, 'model': {'d_norm': 'none'}},
    'jax_r1_lazy16': {'r1_gamma': 10.0, 'reg_every': 16,
                      'model': {'d_norm': 'none'}},
    'jax_diffaugment': {'augment': {'policy': 'color,translation,cutout'}},
    'jax_ada': {'augment': {'ada': True}},
}


def run_jax(size, channels, batch, dtype, warmup, repeats, separate=False,
            recipe=None, winograd=True, width=64):
  """Times dcgan_jax's jitted step; returns its measurements."""
  import jax  # pylint: disable=g-import-not-at-top
  import ml_collections  # pylint: disable=g-import-not-at-top
  from dcgan_jax.cpu import convolutions  # pylint: disable=g-import-not-at-top
  from dcgan_jax.cpu import runtime  # pylint: disable=g-import-not-at-top
  from dcgan_jax.gan import steps  # pylint: disable=g-import-not-at-top
  from dcgan_jax.gan import train_states  # pylint: disable=g-import-not-at-top

  if not winograd:  # The CPU forms as they were without Winograd's.
    convolutions._winograd_pays = lambda *shape: False  # pylint: disable=protected-access

  config = ml_collections.ConfigDict({
      'data': {'image_size': size, 'channels': channels},
      'model': {'nz': 100, 'ngf': width, 'ndf': width},
      'optim': {'lr_g': 2e-4, 'lr_d': 2e-4, 'b1': 0.5, 'b2': 0.999},
      'dtype': dtype,
  })
  config.update(RECIPES.get(recipe, {}))
  recipe = train_states.Recipe.from_config(config)
  g_state, d_state = train_states.create_train_states(config, jax.random.key(0))
  num_params = tuple(sum(x.size for x in jax.tree.leaves(s.params))
                     for s in (g_state, d_state))
  lead = (recipe.n_critic,) if recipe.n_critic > 1 else ()
  images = jax.random.uniform(jax.random.key(1),
                              lead + (batch, size, size, channels), minval=-1)
  rng = jax.random.key(2)

  if separate:
    def update(g_state, d_state):
      d_state, _ = steps.d_step(g_state, d_state, images, rng)
      g_state, _ = steps.g_step(g_state, d_state, rng, batch)
      return g_state, d_state
  else:
    def update(g_state, d_state):
      g_state, d_state, _ = steps.train_step(g_state, d_state, images, rng,
                                             recipe=recipe)
      return g_state, d_state
  # As training does: compiled ahead, the compiler's memory released.
  update = runtime.compile_now(jax.jit(update, donate_argnums=(0, 1)),
                              g_state, d_state)
  states = [g_state, d_state]

  def step():  # With lazy regularisation, a whole period of steps.
    for _ in range(recipe.reg_every):
      states[:] = update(*states)

  times = [t / recipe.reg_every for t in _timed(
      step, warmup, repeats, lambda: jax.block_until_ready(states))]
  device = jax.devices()[0]
  device_memory = device.memory_stats() or {}
  return {'times': times, 'num_params': num_params,
          'device': f'{device.platform}: {device.device_kind}',
          'version': f'jax {jax.__version__}',
          'peak_device_mib': device_memory.get('peak_bytes_in_use', 0) / 2**20}


def run_torch(size, channels, batch, dtype, warmup, repeats, compiled=False,
              width=64):
  """Times the PyTorch reference step; returns its measurements."""
  import torch  # pylint: disable=g-import-not-at-top
  from benchmarks import torch_reference  # pylint: disable=g-import-not-at-top
  from dcgan_jax import models  # pylint: disable=g-import-not-at-top

  device = 'cuda' if torch.cuda.is_available() else 'cpu'
  torch.manual_seed(0)
  step_fn = torch_reference.ReferenceStep(
      models.ARCHITECTURES[size], channels, batch, device,
      compile_models=compiled, bfloat16=dtype == 'bfloat16', width=width)
  real = torch.rand(batch, channels, size, size, device=device) * 2 - 1
  sync = torch.cuda.synchronize if device == 'cuda' else (lambda: None)
  times = _timed(lambda: step_fn(real), warmup, repeats, sync)
  name = (torch.cuda.get_device_name() if device == 'cuda' else
          f'cpu, {torch.get_num_threads()} threads')
  return {'times': times, 'num_params': step_fn.num_params,
          'device': name, 'version': f'torch {torch.__version__}',
          'peak_device_mib': (torch.cuda.max_memory_allocated() / 2**20
                              if device == 'cuda' else 0)}


def run_matmul(size, channels, batch, dtype, warmup, repeats):
  """Times an 8192^2 matmul in dtype: the device's reachable peak."""
  del size, channels, batch
  import jax  # pylint: disable=g-import-not-at-top
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  n = 8192 if jax.default_backend() != 'cpu' else 2048
  a = jax.random.normal(jax.random.key(0), (n, n)).astype(dtype)
  matmul = jax.jit(jnp.dot)
  times = _timed(lambda: matmul(a, a).block_until_ready(), warmup, repeats,
                 lambda: None)
  return {'gflop_s': 2 * n**3 / sorted(times)[len(times) // 2] / 1e9,
          'times': times, 'num_params': (0, 0), 'peak_device_mib': 0,
          'device': jax.devices()[0].device_kind,
          'version': f'jax {jax.__version__}'}


WORKERS = {
    'jax': run_jax,
    'jax_separate': lambda *a: run_jax(*a, separate=True),
    'jax_no_winograd': lambda *a: run_jax(*a, winograd=False),
    'jax_4k_pages': run_jax,
    **{name: functools.partial(run_jax, recipe=name) for name in RECIPES},
    'torch': run_torch,
    'torch_compile': lambda *a: run_torch(*a, compiled=True),
    'matmul': run_matmul,
}


def _worker(args) -> None:
  size, channels = map(int, args.sizes[0].split('x'))
  result = WORKERS[args.impls[0]](size, channels, args.batch[0],
                                  args.dtypes[0], args.warmup, args.repeats)
  result['peak_rss_mib'] = _peak_rss_mib()
  print_result(result)


def _environ(impl):
  """The child's environment: jax rows run as the training program does,
  with glibc's huge-page tunable (`runtime.restart_with_huge_pages`) unless
  GLIBC_TUNABLES sets it already; jax_4k_pages without it; torch as it is."""
  from dcgan_jax.cpu import runtime  # pylint: disable=g-import-not-at-top
  environ = dict(os.environ)
  if impl == 'jax_4k_pages':
    return runtime.with_tunable(environ, f'{runtime.HUGE_PAGES_TUNABLE}=0')
  if impl.startswith('jax') or impl == 'matmul':
    return runtime.huge_pages_environ(environ) or environ
  return environ


def _child(impl, spec, batch, dtype, args):
  command = [sys.executable, os.path.abspath(__file__), '--worker',
             '--impls', impl, '--sizes', spec, '--batch', str(batch),
             '--dtypes', dtype, '--warmup', str(args.warmup),
             '--repeats', str(args.repeats)]
  return worker_result(command, f'{impl} {spec} batch {batch} {dtype}',
                       _environ(impl))


def main():
  parser = argparse.ArgumentParser(
      description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument('--sizes', nargs='+', default=['64x3', '32x1'])
  parser.add_argument('--batch', nargs='+', type=int, default=[64])
  parser.add_argument('--dtypes', nargs='+', default=['float32'])
  parser.add_argument('--impls', nargs='+', default=['jax', 'torch'],
                      choices=sorted(WORKERS))
  parser.add_argument('--warmup', type=int, default=3)
  parser.add_argument('--repeats', type=int, default=10)
  parser.add_argument('--peak', action='store_true',
                      help='also report the fraction of a matmul peak')
  parser.add_argument('--worker', action='store_true',
                      help='(internal) run one measurement in this process')
  args = parser.parse_args()
  if args.worker:
    _worker(args)
    return

  from benchmarks import layer_flops  # pylint: disable=g-import-not-at-top
  notes = set()
  peaks = {dtype: _child('matmul', '1x1', 1, dtype, args)['gflop_s']
           for dtype in args.dtypes} if args.peak else {}
  for dtype, gflop_s in peaks.items():
    notes.add(f'{dtype} matmul peak: {gflop_s:.0f} GFLOP/s')
  print('| shape | batch | dtype | implementation | img/s | ms/step (median) '
        '| peak RSS MiB | peak device MiB | vs torch eager | step time vs jax '
        '| conv GFLOP/s (of matmul peak) |')
  print('| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |')
  for spec in args.sizes:
    gflop_per_image = layer_flops.step_gflop_per_image(
        *map(int, spec.split('x')))
    for batch in args.batch:
      for dtype in args.dtypes:
        results = {impl: _child(impl, spec, batch, dtype, args)
                   for impl in args.impls}
        for result in filter(None, results.values()):
          result['median_s'] = sorted(result['times'])[
              len(result['times']) // 2]
          result['img_s'] = batch / result['median_s']
        base = results.get('torch')
        for impl, result in results.items():
          if result is None:
            continue
          ratio = f'{result["img_s"] / base["img_s"]:.2f}x' if base else '-'
          plain = results.get('jax')
          cost = (f'{result["median_s"] / plain["median_s"]:.2f}x' if plain
                  else '-')
          gflop_s = result['img_s'] * gflop_per_image
          of_peak = (f' ({100 * gflop_s / peaks[dtype]:.0f}%)' if peaks
                     else '')
          if impl in RECIPES:  # Another amount of work per image.
            gflop_s, of_peak = '-', ''
          else:
            gflop_s = f'{gflop_s:.0f}'

          print(f'| {spec} | {batch} | {dtype} | {impl} | '
                f'{result["img_s"]:.1f} | {1000 * result["median_s"]:.1f} | '
                f'{result["peak_rss_mib"]:.0f} | '
                f'{result["peak_device_mib"]:.0f} | {ratio} | {cost} | '
                f'{gflop_s}{of_peak} |', flush=True)
        notes.update(f'{impl}: {r["device"]}, {r["version"]}, (G, D) '
                     f'parameters {tuple(r["num_params"])} at {spec}'
                     for impl, r in results.items() if r)
  print()
  print('\n'.join(sorted(notes)))


if __name__ == '__main__':
  main()
