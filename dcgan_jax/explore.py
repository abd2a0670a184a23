"""Latent-space walks and vector arithmetic with a trained G (DCGAN paper,
sections 6.1 and 6.3).

  python -m dcgan_jax.explore --workdir=RUN --out=candidates.png --candidates=64
  python -m dcgan_jax.explore --workdir=RUN --out=walk.png [--pairs=8]
      [--steps=10] [--interpolation=slerp|linear] [--gif]
  python -m dcgan_jax.explore --workdir=RUN --out=arithmetic.png \
      --arithmetic=3,17,40:5,9,12:21,30,33

Image i of --candidates comes from z number i of --seed; --arithmetic
takes three such numbers for each of A, B and C, and draws mean z(A) -
mean z(B) + mean z(C) (first) and that z plus uniform noise in
[-0.25, 0.25] (the rest), as the paper does. A walk's row r goes from z
number 2r to z number 2r + 1; --gif also writes the walk as a GIF, one
frame per step (OUT with .gif).
"""

from absl import app
from absl import flags
import jax
import jax.numpy as jnp
import numpy as np

from dcgan_jax import choices
from dcgan_jax.gan import noise
from dcgan_jax.gan import train_states
from dcgan_jax.output import images
from dcgan_jax.run import checkpoint
from dcgan_jax.run import cli
from dcgan_jax import sample

INTERPOLATIONS = ('slerp', 'linear')


def interpolate(z0: jax.Array, z1: jax.Array, num_steps: int,
                method: str = 'slerp') -> jax.Array:
  """(num_steps, nz) from z0 to z1 (both included): spherical (slerp on z
  itself, as White 2016 does for GANs: for z of equal norms a great
  circle, so z keeps the typical norm of Gaussian z that a line's middle
  loses) or linear."""
  choices.check('--interpolation', method, INTERPOLATIONS)
  if num_steps < 2:
    raise ValueError(f'--steps={num_steps} must be at least 2.')
  t = jnp.linspace(0.0, 1.0, num_steps)[:, None]
  if method == 'linear':
    path = (1 - t) * z0 + t * z1
  else:
    cos = jnp.dot(z0, z1) / (jnp.linalg.norm(z0) * jnp.linalg.norm(z1))
    omega = jnp.arccos(jnp.clip(cos, -1.0, 1.0))
    # Nearly parallel z: the line, where sin(omega) would divide by ~0.
    sin = jnp.where(omega > 1e-6, jnp.sin(omega), 1.0)
    path = jnp.where(omega > 1e-6,
                     (jnp.sin((1 - t) * omega) * z0
                      + jnp.sin(t * omega) * z1) / sin,
                     (1 - t) * z0 + t * z1)
  return path.at[0].set(z0).at[-1].set(z1)


def walks(g_state: train_states.GeneratorState, z: jax.Array, num_steps: int,
          method: str = 'slerp', use_ema: bool = True) -> np.ndarray:
  """uint8 images (pairs, num_steps, H, W, C): row r walks from z[2r] to
  z[2r + 1]."""
  path = jax.vmap(lambda a, b: interpolate(a, b, num_steps, method))(
      z[0::2], z[1::2])
  generated = np.asarray(sample.generate_uint8(
      g_state, path.reshape(-1, z.shape[-1]), use_ema))
  return generated.reshape(*path.shape[:2], *generated.shape[1:])


def arithmetic(g_state: train_states.GeneratorState, z_a: jax.Array,
               z_b: jax.Array, z_c: jax.Array, num_results: int = 8, noise: float = 0.25,
               seed: int = 0, use_ema: bool = True) -> np.ndarray:
  """uint8 images (4, max(4, num_results), H, W, C), zero-padded: rows A,
  B and C hold G of each z and of their mean; the last row G(mean z_a -
  mean z_b + mean z_c), then that z plus uniform noise in [-noise,
  noise]."""
  means = [z.mean(axis=0) for z in (z_a, z_b, z_c)]
  result = means[0] - means[1] + means[2]
  jitter = jax.random.uniform(jax.random.key(seed),
                              (num_results - 1, result.shape[0]),
                              minval=-noise, maxval=noise)
  rows = [jnp.concatenate([z, mean[None]]) for z, mean in zip(
      (z_a, z_b, z_c), means)]
  rows.append(jnp.concatenate([result[None], result + jitter]))
  width = max(len(r) for r in rows)
  out = None
  for i, row in enumerate(rows):
    generated = np.asarray(sample.generate_uint8(g_state, row, use_ema))
    if out is None:
      out = np.zeros((len(rows), width, *generated.shape[1:]), np.uint8)
    out[i, :len(generated)] = generated
  return out


def candidates(g_state: train_states.GeneratorState, seed: int, num: int,
               use_ema: bool = True) -> np.ndarray:
  """uint8 images of z numbers 0 .. num - 1 of a seed (`noise.image_z`):
  the images `sample --seed=seed --num=num` writes from the same
  checkpoint."""
  return np.asarray(sample.generate_uint8(
      g_state, noise.image_z(seed, np.arange(num), g_state.nz), use_ema))


def _indices(text: str) -> list[list[int]]:
  """'3,17,40:5,9,12:21,30,33' -> [[3, 17, 40], [5, 9, 12], [21, 30, 33]]."""
  try:
    groups = [[int(i) for i in group.split(',')] for group in text.split(':')]
  except ValueError:
    groups = []
  if len(groups) != 3 or any(not g or min(g) < 0 for g in groups):
    raise ValueError(f'--arithmetic={text!r}: need three groups of candidate '
                     'numbers, A:B:C, e.g. 3,17,40:5,9,12:21,30,33.')
  return groups


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'Unexpected arguments: {argv[1:]}')
  FLAGS = flags.FLAGS
  checkpoint.quiet_orbax_info_logs()
  groups = _indices(FLAGS.arithmetic) if FLAGS.arithmetic else None
  _, config, g_state = checkpoint.load_generator(FLAGS.workdir, FLAGS.step)
  nz = config.model.nz
  if FLAGS.candidates:
    images.save_png(FLAGS.out, images.make_grid(candidates(
        g_state, FLAGS.seed, FLAGS.candidates, FLAGS.ema)))
  elif groups:
    out = arithmetic(g_state, *(noise.image_z(FLAGS.seed, g, nz)
                                for g in groups),
                     num_results=FLAGS.arithmetic_results, seed=FLAGS.seed,
                     use_ema=FLAGS.ema)
    images.save_png(FLAGS.out, images.make_grid(
        out.reshape(-1, *out.shape[2:]), ncols=out.shape[1]))
  else:
    out = walks(g_state, noise.image_z(FLAGS.seed, range(2 * FLAGS.pairs), nz),
                FLAGS.steps, FLAGS.interpolation, FLAGS.ema)
    images.save_png(FLAGS.out, images.make_grid(
        out.reshape(-1, *out.shape[2:]), ncols=FLAGS.steps))
    if FLAGS.gif:
      ncols = int(np.ceil(np.sqrt(FLAGS.pairs)))
      frames = [images.make_grid(out[:, t], ncols=ncols)
                for t in range(FLAGS.steps)]
      # There and back, so the loop does not jump.
      images.save_gif(FLAGS.out.rsplit('.', 1)[0] + '.gif',
                      frames + frames[-2:0:-1], duration_ms=150)


if __name__ == '__main__':
  flags.DEFINE_string('workdir', None, "A training run's workdir.")
  flags.DEFINE_string('out', None, 'Output PNG.')
  flags.DEFINE_integer('step', None, 'Checkpoint step (default: the latest).')
  flags.DEFINE_integer('seed', 0, 'Seed of the numbered z.')
  flags.DEFINE_integer('candidates', 0, 'Write a grid of this many numbered '
                       'images to pick --arithmetic groups from.')
  flags.DEFINE_integer('pairs', 8, 'Walks (rows).')
  flags.DEFINE_integer('steps', 10, 'Images per walk, ends included.')
  flags.DEFINE_enum('interpolation', 'slerp', INTERPOLATIONS,
                    'Spherical or linear interpolation.')
  flags.DEFINE_bool('gif', False, 'Also write the walk as a GIF.')
  flags.DEFINE_string('arithmetic', None, 'A:B:C, three candidate numbers '
                      'each: draw mean A - mean B + mean C.')
  flags.DEFINE_integer('arithmetic_results', 8,
                       'Images of the result: its z, then with noise.')
  flags.DEFINE_bool('ema', True, "Use G's EMA weights where the run kept "
                    'them.')
  flags.mark_flags_as_required(['workdir', 'out'])
  cli.run(main)
