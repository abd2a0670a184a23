"""The PyTorch DCGAN reference step (the PyTorch tutorial's loop), for
benchmarks only: same architecture, init, BCE and Adam as dcgan_jax.

G: ConvTranspose2d(nz, f, base) + BN + ReLU, then 4x4 stride-2
ConvTranspose2d + BN + ReLU, the last to the image channels + Tanh; D: 4x4
stride-2 Conv2d + LeakyReLU(0.2) (BatchNorm from the second on), then a
base x base valid Conv2d to one logit. `architecture` is dcgan_jax's
(`models.ARCHITECTURES[image_size]`: base resolution, number of stride-2
layers), passed in so that this module does not import JAX.
"""

import torch
from torch import nn


def _init(module: nn.Module) -> None:
  if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
    nn.init.normal_(module.weight, 0.0, 0.02)
  elif isinstance(module, nn.BatchNorm2d):
    nn.init.normal_(module.weight, 1.0, 0.02)
    nn.init.zeros_(module.bias)


def generator(architecture: tuple[int, int], channels: int, nz: int = 100,
              ngf: int = 64) -> nn.Sequential:
  base, num_up = architecture
  features = ngf * 2 ** (num_up - 1)
  layers = [nn.ConvTranspose2d(nz, features, base, 1, 0, bias=False),
            nn.BatchNorm2d(features), nn.ReLU(True)]
  for _ in range(1, num_up):
    layers += [nn.ConvTranspose2d(features, features // 2, 4, 2, 1,
                                  bias=False),
               nn.BatchNorm2d(features // 2), nn.ReLU(True)]
    features //= 2
  layers += [nn.ConvTranspose2d(features, channels, 4, 2, 1, bias=False),
             nn.Tanh()]
  net = nn.Sequential(*layers)
  net.apply(_init)
  return net


def discriminator(architecture: tuple[int, int], channels: int,
                  ndf: int = 64) -> nn.Sequential:
  base, num_down = architecture
  layers, features_in = [], channels
  for i in range(num_down):
    features = ndf * 2**i
    layers.append(nn.Conv2d(features_in, features, 4, 2, 1, bias=False))
    if i > 0:
      layers.append(nn.BatchNorm2d(features))
    layers.append(nn.LeakyReLU(0.2, inplace=True))
    features_in = features
  layers += [nn.Conv2d(features_in, 1, base, 1, 0, bias=False),
             nn.Flatten(0)]
  net = nn.Sequential(*layers)
  net.apply(_init)
  return net


class ReferenceStep:
  """One D update on a real and a fake batch, then one G update on the same
  fake batch: the tutorial's loop, with BCE on logits. Calls return D's
  and G's losses as tensors."""

  def __init__(self, architecture: tuple[int, int], channels: int,
               batch_size: int, device: str = 'cpu',
               compile_models: bool = False, bfloat16: bool = False,
               nz: int = 100, width: int = 64):
    self.netG = generator(architecture, channels, nz, ngf=width).to(device)
    self.netD = discriminator(architecture, channels, ndf=width).to(device)
    self.num_params = (sum(p.numel() for p in self.netG.parameters()),
                       sum(p.numel() for p in self.netD.parameters()))
    if compile_models:
      self.netG = torch.compile(self.netG)
      self.netD = torch.compile(self.netD)
    self.optD = torch.optim.Adam(self.netD.parameters(), lr=2e-4,
                                 betas=(0.5, 0.999))
    self.optG = torch.optim.Adam(self.netG.parameters(), lr=2e-4,
                                 betas=(0.5, 0.999))
    self.criterion = nn.BCEWithLogitsLoss()
    self.device, self.nz, self.batch_size = device, nz, batch_size
    self.bfloat16 = bfloat16
    self.ones = torch.ones(batch_size, device=device)
    self.zeros = torch.zeros(batch_size, device=device)

  def __call__(self, real: torch.Tensor) -> tuple[torch.Tensor,
                                                  torch.Tensor]:
    with torch.autocast(self.device, torch.bfloat16, enabled=self.bfloat16):
      self.netD.zero_grad(set_to_none=True)
      err_real = self.criterion(self.netD(real).float(), self.ones)
      err_real.backward()
      noise = torch.randn(self.batch_size, self.nz, 1, 1, device=self.device)
      fake = self.netG(noise)
      err_fake = self.criterion(self.netD(fake.detach()).float(), self.zeros)
      err_fake.backward()
      self.optD.step()
      self.netG.zero_grad(set_to_none=True)
      err_g = self.criterion(self.netD(fake).float(), self.ones)
      err_g.backward()
      self.optG.step()
    return (err_real + err_fake).detach(), err_g.detach()
