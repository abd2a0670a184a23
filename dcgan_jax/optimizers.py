"""Optimizers by name: `config.optim.name` in `OPTIMIZERS`.

G and D each get their own optimizer of the chosen kind, with learning
rates `optim.lr_g` and `optim.lr_d`:
- `adam` (default): `optim.b1`, `optim.b2`, `optim.eps` (the DCGAN recipe:
  Adam(2e-4, b1=0.5)).
- `rmsprop`: `optim.rho` (the squared gradients' decay) and `optim.eps`,
  added to the root as Keras and PyTorch add it (Keras's RMSprop defaults:
  learning rate 1e-3, rho 0.9, eps 1e-7).
"""

from typing import Any, Callable

import optax

# Keys added after runs were saved without them, and the values those runs
# had.
OPTIM_DEFAULTS = {'name': 'adam', 'eps': 1e-8, 'rho': 0.9}


def _adam(optim: Any, learning_rate: float,
          differentiable: bool) -> optax.GradientTransformation:
  return optax.adam(learning_rate, b1=optim.b1, b2=optim.b2, eps=optim.eps,
                    # A square root at 0 (a gradient entry that has only
                    # been 0) has no derivative.
                    eps_root=1e-16 if differentiable else 0.0)


def _rmsprop(optim: Any, learning_rate: float,
             differentiable: bool) -> optax.GradientTransformation:
  if differentiable:
    raise ValueError(
        "config.optim.name='rmsprop' cannot be differentiated through, as "
        'config.unroll_steps > 0 needs: its square root of the squared '
        "gradients' average has no derivative at 0. Use optim.name='adam'.")
  return optax.rmsprop(learning_rate, decay=optim.rho, eps=optim.eps,
                       eps_in_sqrt=False)


OPTIMIZERS: dict[str, Callable[[Any, float, bool],
                               optax.GradientTransformation]] = {
                                   'adam': _adam, 'rmsprop': _rmsprop}


def create_optimizer(config: Any, learning_rate: float,
                     differentiable: bool = False
                     ) -> optax.GradientTransformation:
  """config.optim.name's optimizer at this learning rate.

  Args:
    config: uses the `optim` keys (absent ones: OPTIM_DEFAULTS).
    learning_rate: optim.lr_g or optim.lr_d.
    differentiable: the update will be differentiated (unrolled D updates).

  Raises:
    ValueError: naming the key, for an unknown optimizer or one that cannot
      be differentiated when it must be.
  """
  optim = type(config.optim)({**OPTIM_DEFAULTS, **config.optim})
  if optim.name not in OPTIMIZERS:
    raise ValueError(f'config.optim.name={optim.name!r} is not known; choose '
                     f'one of {", ".join(OPTIMIZERS)}.')
  return OPTIMIZERS[optim.name](optim, learning_rate, differentiable)
