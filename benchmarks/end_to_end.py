"""A whole training run, start to exit: dcgan_jax's CLI against a PyTorch
script running the PyTorch DCGAN tutorial's loop, on the same folder of
PNGs, measured in the same run.

  python benchmarks/end_to_end.py [--dir=/tmp/fmnist_png] [--steps 2000]

The folder holds the first --images (10,000) Fashion-MNIST training images
as 28x28 grayscale PNGs in class subfolders, written from Debian's
dataset-fashion-mnist files on the first run and reused after. Both runs
train the tutorial's networks at 32x32x1, batch 64, for --steps steps (D on
a real and a fake batch, then G; Adam 2e-4, b1 0.5):

- ours: `python -m dcgan_jax.main` with configs/default.py on that folder
  (its defaults: metrics logged every 50 steps, sample grid every 500,
  checkpoint every 1,000 and at the end, then the loss plots and the
  samples' GIF);
- torch: this script's --torch_worker: torchvision's ImageFolder
  (Grayscale, Resize(32), CenterCrop(32), ToTensor, Normalize) and
  DataLoader (shuffled, 2 workers, as the tutorial), the step of
  benchmarks/torch_reference.py, losses printed every 50 steps, the fixed
  noise's samples saved every 500 and at the end, then the networks' and
  optimizers' states and a plot of the losses.

Each is timed from starting its process to its exit. Needs torch and
torchvision (`pip install -e '.[bench]'`).
"""

import argparse
import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)


def write_pngs(directory: str, count: int) -> None:
  """The first `count` Fashion-MNIST training images, DIR/LABEL/I.png."""
  from PIL import Image  # pylint: disable=g-import-not-at-top
  from dcgan_jax.data import idx_files  # pylint: disable=g-import-not-at-top
  images = idx_files.read_images(idx_files.DEBIAN_FASHION_MNIST_DIR,
                                 'train')[:count, :, :, 0]
  labels = idx_files.read_labels(idx_files.DEBIAN_FASHION_MNIST_DIR,
                                 'train')[:count]
  for label in set(labels.tolist()):
    os.makedirs(os.path.join(directory, str(label)), exist_ok=True)
  for i, (image, label) in enumerate(zip(images, labels)):
    Image.fromarray(image).save(os.path.join(directory, str(label),
                                             f'{i:05d}.png'))


def torch_worker(args) -> None:
  """The PyTorch tutorial's training loop on the folder."""
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use('Agg')
  from matplotlib import pyplot as plt  # pylint: disable=g-import-not-at-top
  import torch  # pylint: disable=g-import-not-at-top
  from torchvision import datasets  # pylint: disable=g-import-not-at-top
  from torchvision import transforms  # pylint: disable=g-import-not-at-top
  from torchvision import utils  # pylint: disable=g-import-not-at-top
  from benchmarks import torch_reference  # pylint: disable=g-import-not-at-top

  torch.manual_seed(0)
  size, channels = 32, 1
  dataset = datasets.ImageFolder(root=args.dir, transform=transforms.Compose([
      transforms.Grayscale(channels), transforms.Resize(size),
      transforms.CenterCrop(size), transforms.ToTensor(),
      transforms.Normalize((0.5,), (0.5,))]))
  loader = torch.utils.data.DataLoader(dataset, batch_size=args.batch,
                                       shuffle=True, num_workers=2,
                                       drop_last=True)
  step = torch_reference.ReferenceStep((4, 3), channels, args.batch)
  fixed_noise = torch.randn(64, 100, 1, 1)
  d_losses, g_losses = [], []
  start, done = time.perf_counter(), 0
  while done < args.steps:
    for real, _ in loader:
      err_d, err_g = step(real)
      d_losses.append(err_d.item())
      g_losses.append(err_g.item())
      done += 1
      if done % 50 == 0:
        print(f'[{done}/{args.steps}] Loss_D: {d_losses[-1]:.4f} '
              f'Loss_G: {g_losses[-1]:.4f}', flush=True)
      if done % 500 == 0 or done == args.steps:
        with torch.no_grad():
          fake = step.netG(fixed_noise)
        utils.save_image(fake, os.path.join(args.workdir, f'{done}.png'),
                         padding=2, normalize=True)
      if done == args.steps:
        break
  print(f'steps: {time.perf_counter() - start:.1f} s', flush=True)
  torch.save({'netG': step.netG.state_dict(), 'netD': step.netD.state_dict(),
              'optG': step.optG.state_dict(), 'optD': step.optD.state_dict()},
             os.path.join(args.workdir, 'checkpoint.pt'))
  plt.figure(figsize=(10, 5))
  plt.plot(g_losses, label='G')
  plt.plot(d_losses, label='D')
  plt.legend()
  plt.savefig(os.path.join(args.workdir, 'losses.png'))


def timed_run(command: list[str], log: str) -> float:
  start = time.perf_counter()
  with open(log, 'w') as out:
    subprocess.run(command, stdout=out, stderr=subprocess.STDOUT, check=True,
                   cwd=ROOT)
  return time.perf_counter() - start


def main():
  parser = argparse.ArgumentParser(
      description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument('--dir', default=os.path.join(tempfile.gettempdir(),
                                                    'fashion_mnist_png'))
  parser.add_argument('--images', type=int, default=10_000)
  parser.add_argument('--steps', type=int, default=2000)
  parser.add_argument('--batch', type=int, default=64)
  parser.add_argument('--workdir', default='')
  parser.add_argument('--torch_worker', action='store_true',
                      help='(internal) run the PyTorch script')
  args = parser.parse_args()
  if args.torch_worker:
    torch_worker(args)
    return
  if not os.path.isdir(args.dir):
    write_pngs(args.dir, args.images)
  with tempfile.TemporaryDirectory() as work:
    runs = {
        'dcgan_jax CLI': [
            sys.executable, '-m', 'dcgan_jax.main',
            '--config=configs/default.py', f'--workdir={work}/ours',
            '--config.data.name=folder', f'--config.data.path={args.dir}',
            '--config.data.image_size=32', '--config.data.channels=1',
            f'--config.batch_size={args.batch}',
            f'--config.num_train_steps={args.steps}'],
        'PyTorch tutorial loop': [
            sys.executable, os.path.abspath(__file__), '--torch_worker',
            f'--dir={args.dir}', f'--steps={args.steps}',
            f'--batch={args.batch}', f'--workdir={work}/torch'],
    }
    os.makedirs(f'{work}/torch')
    seconds = {}
    for name, command in runs.items():
      log = os.path.join(work, name.split()[0] + '.log')
      seconds[name] = timed_run(command, log)
      print(f'{name}: {seconds[name]:.1f} s (log tail: '
            f'{open(log).read().strip().splitlines()[-1][:120]})', flush=True)
  ours, theirs = seconds.values()
  print('\n| run | wall s, start to exit |\n| --- | --- |')
  for name, value in seconds.items():
    print(f'| {name} | {value:.1f} |')
  print(f'\nours / PyTorch: {ours / theirs:.2f}x the wall time '
        f'({args.steps} steps, batch {args.batch}, {args.images} PNGs).')


if __name__ == '__main__':
  main()
