"""Makes tests/golden/prdc_golden.npz: precision, recall, density and
coverage of fixed features computed by the authors' `prdc` package.

Needs prdc (`pip install prdc`); the test reading the file does not. Run
from the repository root:

  python tests/golden/make_prdc_golden.py
"""

import os

import numpy as np
import prdc

HERE = os.path.dirname(os.path.abspath(__file__))


def main():
  rng = np.random.default_rng(0)
  # Two overlapping, differently shaped clouds.
  real = rng.normal(size=(400, 32)).astype(np.float32)
  fake = (rng.normal(size=(350, 32)) * 1.1 + 0.25).astype(np.float32)
  golden = {'real': real, 'fake': fake}
  for k in (3, 5):
    for name, value in prdc.compute_prdc(real, fake, k).items():
      golden[f'k{k}/{name}'] = np.float64(value)
  np.savez(os.path.join(HERE, 'prdc_golden.npz'), **golden)
  print({k: v for k, v in golden.items() if k.startswith('k')})


if __name__ == '__main__':
  main()
