"""benchmarks/device_suite.py's CPU smoke run: every table, no TensorFlow."""

import os
import re
import subprocess
import sys

import pytest

from tests.conftest import REPO


@pytest.mark.slow
def test_quick_run_prints_every_table_without_tensorflow():
  result = subprocess.run(
      [sys.executable, os.path.join('benchmarks', 'device_suite.py'),
       '--quick'], cwd=REPO, capture_output=True, text=True, timeout=600,
      env=dict(os.environ, JAX_PLATFORMS='cpu'))
  assert result.returncode == 0, result.stderr[-3000:]
  out = result.stdout
  step_row = re.search(r'^\| 32x32x1 \| 8 \| float32 \| ([\d.]+) \|', out,
                       re.M)
  assert step_row and float(step_row.group(1)) > 0, out
  assert re.search(r'^\| 1 \| [\d.]+ \| \d+ \| \d+ \| 1\.00x \|$', out, re.M)
  assert re.search(r'^\| 2 \| [\d.]+ \| \d+ \| \d+ \| [\d.]+x \|$', out, re.M)
  assert re.search(r'^float32 matmul peak: \d+ GFLOP/s$', out, re.M)
  assert 'TensorFlow imported by the jax worker: no' in out
