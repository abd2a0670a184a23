"""Makes tests/golden/inception_golden.npz and the two small .pth files.

Needs torch, torchvision and pytorch-fid (`pip install pytorch-fid`); the
tests that read these files need none of them. Run from the repository root:

  python tests/golden/make_inception_golden.py

inception_golden.npz holds pytorch-fid's FID features of
inception_reference.inputs() under inception_reference.random_state_dict()
('features/<input>'), and the arrays saved in the .pth files ('pth/<key>').
"""

import os
import sys
from unittest import mock

import numpy as np
import torch
from pytorch_fid import inception as fid_inception

sys.path.insert(0, os.path.join(os.path.dirname(__file__), '..', '..'))
from tests.evaluation import inception_reference  # pylint: disable=g-import-not-at-top

HERE = os.path.dirname(os.path.abspath(__file__))


def fid_features(state_dict, images):
  """pytorch-fid's pool3 features of (B, H, W, C) images."""
  weights = {k: torch.from_numpy(v) for k, v in state_dict.items()}
  with mock.patch.object(fid_inception, 'load_state_dict_from_url',
                         lambda *a, **k: weights):
    model = fid_inception.InceptionV3([3]).eval()
  if images.dtype == np.uint8:
    x = images.astype(np.float32) / 255
  else:
    x = (images + 1) / 2
  x = torch.from_numpy(np.repeat(x, 3 // x.shape[-1], -1)).permute(0, 3, 1, 2)
  with torch.no_grad():
    return model(x)[0][:, :, 0, 0].numpy()


def main():
  torch.manual_seed(0)
  state_dict = inception_reference.random_state_dict()
  rng = np.random.default_rng(2)
  # The classifier head pytorch-fid's state dict carries (unused by FID).
  state_dict['fc.weight'] = rng.normal(0, 0.01, (1008, 2048)).astype(np.float32)
  state_dict['fc.bias'] = np.zeros(1008, np.float32)
  golden = {f'features/{name}': fid_features(state_dict, images)
            for name, images in inception_reference.inputs().items()}

  small = {'conv.weight': torch.randn(4, 3, 2, 2),
           'bn.running_mean': torch.randn(5, dtype=torch.float64),
           'bn.num_batches_tracked': torch.tensor(7),
           'transposed': torch.randn(3, 5).t(),  # Non-contiguous strides.
           'view': torch.arange(12.0)[2:8]}  # Storage offset.
  for key, value in small.items():
    golden[f'pth/{key}'] = value.numpy()
  torch.save(small, os.path.join(HERE, 'state_dict_zip.pth'))
  torch.save(small, os.path.join(HERE, 'state_dict_legacy.pth'),
             _use_new_zipfile_serialization=False)
  np.savez_compressed(os.path.join(HERE, 'inception_golden.npz'), **golden)
  print('versions: torch', torch.__version__, 'pytorch-fid',
        getattr(fid_inception, '__version__', 'see pip'))


if __name__ == '__main__':
  main()
