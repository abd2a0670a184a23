"""PNG plots of a run (a sweep's as its members' mean with a band of +- one
standard deviation), a GIF of its fixed-noise grids and a real-vs-fake
figure (a batch of training images beside the latest fixed-noise grid), in
workdir/plots. Training writes them at its end; `python -m dcgan_jax.plots`
redraws them at any time.
"""

from typing import Any

import matplotlib
matplotlib.use('Agg')
import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top,wrong-import-position
from PIL import Image  # pylint: disable=g-import-not-at-top,wrong-import-position

from dcgan_jax.evaluation import metrics  # pylint: disable=g-import-not-at-top,wrong-import-position
from dcgan_jax.output import images  # pylint: disable=g-import-not-at-top,wrong-import-position
from dcgan_jax.output import metrics_file  # pylint: disable=g-import-not-at-top,wrong-import-position
from dcgan_jax.output import paths  # pylint: disable=g-import-not-at-top,wrong-import-position

# Panels of the training scalars a run may log: D's outputs as
# probabilities (logistic objectives) or as critic scores (the others),
# and the input-gradient penalties' measures.
TRAINING_PANELS = (
    ('Losses', (('d_loss', 'D loss'), ('g_loss', 'G loss'))),
    ('D outputs', (('d_real', 'D(x)'), ('d_fake', 'D(G(z)) before D step'),
                   ('d_fake_after', 'D(G(z)) after D step'))),
    ('Critic outputs', (('critic_real', 'D(x)'),
                        ('critic_fake', 'D(G(z)) before D step'),
                        ('critic_fake_after', 'D(G(z)) after D step'))),
    ('Wasserstein estimate', (('wasserstein', 'E[D(x)] - E[D(G(z))]'),)),
    ('Gradient penalty', (('gradient_penalty', 'E[(||grad D|| - 1)^2]'),
                          ('grad_norm', 'E[||grad D||]'))),
    ('R1 / R2 penalties', (('r1_penalty', 'R1 term of D loss'),
                           ('r2_penalty', 'R2 term of D loss'))),
    ('ADA', (('ada_p', 'augmentation probability p'),
             ('ada_rt', 'r_t = E[sign(D(x))]'))),
)
# Scalars that are not training curves: progress and the epoch.
NOT_PLOTTED = ('epoch', 'steps_per_sec', 'uptime')


def _metric_names(series: dict[str, Any]) -> list[str]:
  """Evaluation metrics in the series, also those of G's raw weights."""
  return [m + suffix for m in metrics.METRICS for suffix in ('', '_raw')
          if m + suffix in series]


def _training_panels(series: dict[str, Any]
                     ) -> list[tuple[str, tuple[tuple[str, str], ...]]]:
  """The known panels with data, then one per other logged scalar."""
  panels = [(title, lines) for title, lines in TRAINING_PANELS
            if any(name in series for name, _ in lines)]
  known = {name for _, lines in TRAINING_PANELS for name, _ in lines}
  evaluated = _metric_names(series)
  # A sweep's per-member series and spreads ('NAME/...') go with NAME.
  others = sorted(name for name in series
                  if name not in known and name not in NOT_PLOTTED and
                  '/' not in name and
                  name.removesuffix('_std') not in evaluated)
  return panels + [(name, ((name, name),)) for name in others]


def _plot_with_spread(axis: Any, series: dict[str, Any], name: str,
                      label: str | None = None, **style: Any) -> None:
  """NAME's line; in a sweep the members' mean, with a band of +- their
  standard deviation."""
  steps, values = series[name]
  line, = axis.plot(steps, values, label=label, **style)
  if f'{name}/std' in series:
    spread = series[f'{name}/std'][1]
    axis.fill_between(steps, values - spread, values + spread,
                      color=line.get_color(), alpha=0.25, linewidth=0)


def real_images_path(workdir: paths.PathLike) -> paths.epath.Path:
  """Where training keeps a grid of its first batch of real images."""
  return paths.path(workdir) / 'real_images.png'


def _read_png(path: paths.epath.Path) -> Image.Image:
  with path.open('rb') as f:
    return Image.open(f).convert('RGB')


def _save(figure, path: paths.epath.Path) -> None:
  with paths.atomic_write(path) as f:
    figure.savefig(f, format='png', dpi=100)
  plt.close(figure)


def write_plots(workdir: paths.PathLike) -> list[str]:
  """Writes training.png, metrics.png (if evaluated) and samples.gif (if
  there are grids); returns the paths written."""
  series = metrics_file.read(workdir)
  out = paths.path(workdir) / 'plots'
  written = []
  panels = _training_panels(series)
  if panels:
    figure, axes = plt.subplots(1, len(panels), figsize=(6 * len(panels), 4),
                                squeeze=False)
    for axis, (title, lines) in zip(axes[0], panels):
      for name, label in lines:
        if name in series:
          _plot_with_spread(axis, series, name, label)
      axis.set_title(title)
      axis.set_xlabel('step')
      if axis.lines:
        axis.legend()
    _save(figure, out / 'training.png')
    written.append(str(out / 'training.png'))

  evaluated = _metric_names(series)
  if evaluated:
    figure, axes = plt.subplots(1, len(evaluated),
                                figsize=(5 * len(evaluated), 4),
                                squeeze=False)
    for axis, name in zip(axes[0], evaluated):
      if f'{name}/std' in series:
        _plot_with_spread(axis, series, name, marker='o')
      elif f'{name}_std' in series:
        axis.errorbar(*series[name], yerr=series[f'{name}_std'][1],
                      marker='o')
      else:
        axis.plot(*series[name], marker='o')
      axis.set_title(name)
      axis.set_xlabel('step')
    _save(figure, out / 'metrics.png')
    written.append(str(out / 'metrics.png'))

  grids = sorted((paths.path(workdir) / 'samples').glob('*.png'))
  if grids and real_images_path(workdir).exists():
    figure, axes = plt.subplots(1, 2, figsize=(15, 7.5))
    for axis, path, title in (
        (axes[0], real_images_path(workdir), 'Real images'),
        (axes[1], grids[-1], f'Fake images (step {int(grids[-1].stem)})')):
      axis.imshow(_read_png(path))
      axis.set_title(title)
      axis.axis('off')
    _save(figure, out / 'real_vs_fake.png')
    written.append(str(out / 'real_vs_fake.png'))
  if grids:
    images.save_gif(out / 'samples.gif', [_read_png(grid) for grid in grids])
    written.append(str(out / 'samples.gif'))
  return written

