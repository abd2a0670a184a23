"""The accelerator story in one run: dcgan_jax's training step against
PyTorch's, the fraction of the device's matmul peak each step reaches, and
how a sweep of several GANs in one program (`gan.sweep`) scales.

Needs only jax, flax, optax, ml_collections and, for the PyTorch rows,
torch: no TensorFlow, TFDS or clu, so that it runs on a bare accelerator
machine. Three child processes, one per implementation (jax, torch eager,
torch.compile), each timing all of its rows, so that the frameworks never
share a device's memory and the whole run fits in about 8 minutes on one
GPU:

- the default step (`train_step`, jitted, states donated) at 32x32x1 and
  64x64x3, batch 64, 128 and 512, float32 and bfloat16, against the
  PyTorch tutorial's loop (`benchmarks/torch_reference.py`) eager and
  with torch.compile;
- a large matmul per dtype, the device's reachable peak, and each jax
  step's convolution FLOP rate (`benchmarks/layer_flops.py`'s count) as a
  fraction of it;
- a sweep of N = 1, 2, 4, ..., 32 members at 32x32x1, batch 64, float32
  (`benchmarks/sweep_scaling.py`'s measurement): step time, images per
  second over all members and per member.

  python benchmarks/device_suite.py             # a GPU or TPU: record the
                                                # tables in BENCHMARKS.md
  python benchmarks/device_suite.py --quick     # a CPU smoke run, seconds

--quick runs one small shape with networks 8 wide, 1 and 2 members, and
the PyTorch rows only if torch is installed, without torch.compile.
"""

import argparse
import functools
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

# pylint: disable=g-import-not-at-top,wrong-import-position
from benchmarks import layer_flops
from benchmarks import step_throughput
from benchmarks import sweep_scaling
# pylint: enable=g-import-not-at-top,wrong-import-position

FULL = {'sizes': [(32, 1), (64, 3)], 'batches': [64, 128, 512],
        'dtypes': ['float32', 'bfloat16'], 'members': [1, 2, 4, 8, 16, 32],
        'sweep_batch': 64, 'width': 64, 'warmup': 3, 'repeats': 10,
        'torch': ['torch', 'torch_compile']}
QUICK = {'sizes': [(32, 1)], 'batches': [8], 'dtypes': ['float32'],
         'members': [1, 2], 'sweep_batch': 8, 'width': 8, 'warmup': 1,
         'repeats': 3, 'torch': ['torch']}


def _median(times: list[float]) -> float:
  return sorted(times)[len(times) // 2]


def _jax_worker(plan: dict) -> dict:
  import jax  # pylint: disable=g-import-not-at-top
  warmup, repeats = plan['warmup'], plan['repeats']
  result = {'peaks': {}, 'steps': [], 'sweep': []}
  for dtype in plan['dtypes']:
    result['peaks'][dtype] = step_throughput.run_matmul(
        0, 0, 0, dtype, warmup, repeats)['gflop_s']
  for size, channels in plan['sizes']:
    for batch in plan['batches']:
      for dtype in plan['dtypes']:
        run = step_throughput.run_jax(size, channels, batch, dtype, warmup,
                                      repeats, width=plan['width'])
        result['steps'].append({'size': size, 'channels': channels,
                                'batch': batch, 'dtype': dtype,
                                'median_s': _median(run['times']),
                                'peak_device_mib': run['peak_device_mib']})
  for members in plan['members']:
    run = sweep_scaling.time_sweep(32, 1, members, plan['sweep_batch'],
                                   warmup, repeats, width=plan['width'])
    result['sweep'].append({'members': members,
                            'median_s': _median(run['times'])})
  device = jax.devices()[0]
  result['device'] = f'{device.platform}: {device.device_kind}'
  result['version'] = f'jax {jax.__version__}'
  result['tensorflow_imported'] = 'tensorflow' in sys.modules
  return result


def _torch_worker(plan: dict, compiled: bool) -> dict:
  result = {'steps': []}
  for size, channels in plan['sizes']:
    for batch in plan['batches']:
      for dtype in plan['dtypes']:
        run = step_throughput.run_torch(size, channels, batch, dtype,
                                        plan['warmup'], plan['repeats'],
                                        compiled=compiled,
                                        width=plan['width'])
        result['steps'].append({'size': size, 'channels': channels,
                                'batch': batch, 'dtype': dtype,
                                'median_s': _median(run['times'])})
        result['device'], result['version'] = run['device'], run['version']
  return result


WORKERS = {'jax': _jax_worker,
           'torch': functools.partial(_torch_worker, compiled=False),
           'torch_compile': functools.partial(_torch_worker, compiled=True)}


def _child(impl: str, quick: bool) -> dict | None:
  """A worker's results, or None (printed why) if it failed or its library
  is missing."""
  command = [sys.executable, os.path.abspath(__file__), '--worker', impl]
  if quick:
    command.append('--quick')
  started = time.perf_counter()
  result = step_throughput.worker_result(command, impl)
  if result is not None:
    result['seconds'] = time.perf_counter() - started
  return result


def _step_table(results: dict, plan: dict) -> list[str]:
  jax_rows = results['jax']
  by_impl = {impl: {(r['size'], r['batch'], r['dtype']): r['median_s']
                    for r in result['steps']}
             for impl, result in results.items() if result}
  lines = ['| shape | batch | dtype | jax img/s | torch eager img/s | '
           'torch.compile img/s | jax / eager | jax / compile | '
           'jax conv GFLOP/s (of matmul peak) |',
           '| --- | --- | --- | --- | --- | --- | --- | --- | --- |']
  for row in jax_rows['steps']:
    key = (row['size'], row['batch'], row['dtype'])
    img_s = {impl: row['batch'] / times[key]
             for impl, times in by_impl.items() if key in times}
    gflop_s = img_s['jax'] * layer_flops.step_gflop_per_image(
        row['size'], row['channels'], plan['width'])
    peak = jax_rows['peaks'][row['dtype']]

    def ratio(impl):
      return f'{img_s["jax"] / img_s[impl]:.2f}x' if impl in img_s else '-'

    def rate(impl):
      return f'{img_s[impl]:.1f}' if impl in img_s else '-'

    lines.append(
        f'| {row["size"]}x{row["size"]}x{row["channels"]} | {row["batch"]} | '
        f'{row["dtype"]} | {rate("jax")} | {rate("torch")} | '
        f'{rate("torch_compile")} | {ratio("torch")} | '
        f'{ratio("torch_compile")} | {gflop_s:.0f} '
        f'({100 * gflop_s / peak:.0f}%) |')
  return lines


def _sweep_table(jax_rows: dict, plan: dict) -> list[str]:
  lines = ['| members | ms/step | img/s, all members | img/s per member | '
           'all members vs 1 member |', '| --- | --- | --- | --- | --- |']
  one = None
  for row in jax_rows['sweep']:
    img_s = row['members'] * plan['sweep_batch'] / row['median_s']
    one = one or img_s
    lines.append(f'| {row["members"]} | {1000 * row["median_s"]:.1f} | '
                 f'{img_s:.0f} | {img_s / row["members"]:.0f} | '
                 f'{img_s / one:.2f}x |')
  return lines


def main():
  parser = argparse.ArgumentParser(
      description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument('--quick', action='store_true',
                      help='a small CPU smoke run')
  parser.add_argument('--worker', choices=sorted(WORKERS),
                      help='(internal) run one implementation in this process')
  args = parser.parse_args()
  plan = QUICK if args.quick else FULL
  if args.worker:
    step_throughput.print_result(WORKERS[args.worker](plan))
    return

  results = {'jax': _child('jax', args.quick)}
  if results['jax'] is None:
    raise SystemExit('The jax worker failed; see above.')
  for impl in plan['torch']:
    results[impl] = _child(impl, args.quick)
  jax_rows = results['jax']
  print('\n'.join(_step_table(results, plan)))
  print(f'\nSweeps at 32x32x1, batch {plan["sweep_batch"]} per member, '
        'float32:\n')
  print('\n'.join(_sweep_table(jax_rows, plan)))
  print()
  for dtype, gflop_s in jax_rows['peaks'].items():
    print(f'{dtype} matmul peak: {gflop_s:.0f} GFLOP/s')
  for impl, result in results.items():
    if result:
      print(f'{impl}: {result["device"]}, {result["version"]}, '
            f'{result["seconds"]:.0f} s')
  print('TensorFlow imported by the jax worker: '
        f'{"yes" if jax_rows["tensorflow_imported"] else "no"}')


if __name__ == '__main__':
  main()
