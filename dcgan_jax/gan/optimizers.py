"""Optimizers by name: `config.optim.name` in `OPTIMIZERS`.

G and D each get their own optimizer of the chosen kind, with learning
rates `optim.lr_g` and `optim.lr_d`:
- `adam` (default): `optim.b1`, `optim.b2`, `optim.eps` (the DCGAN recipe:
  Adam(2e-4, b1=0.5)).
- `rmsprop`: `optim.rho` (the squared gradients' decay) and `optim.eps`,
  added to the root as Keras and PyTorch add it (Keras's RMSprop defaults:
  learning rate 1e-3, rho 0.9, eps 1e-7).
"""

import dataclasses
from typing import Any, Callable

import optax

from dcgan_jax import choices

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
  del differentiable  # Never: see OPTIMIZERS.
  return optax.rmsprop(learning_rate, decay=optim.rho, eps=optim.eps,
                       eps_in_sqrt=False)


@dataclasses.dataclass(frozen=True)
class Optimizer:
  """A registered optimizer.

  Attributes:
    build: (optim config, learning rate, differentiable) -> the optimizer.
    differentiable: its update can be differentiated through, as unrolled
      D updates (config.unroll_steps > 0) need; if not, `why_not` says why.
  """
  build: Callable[[Any, float, bool], optax.GradientTransformation]
  differentiable: bool = True
  why_not: str = ''


OPTIMIZERS = {
    'adam': Optimizer(_adam),
    'rmsprop': Optimizer(_rmsprop, differentiable=False, why_not=(
        "its square root of the squared gradients' average has no "
        'derivative at 0')),
}


def check(config: Any, differentiable: bool = False) -> Optimizer:
  """config.optim.name's optimizer, checked.

  Raises:
    ValueError: naming the key, for an unknown optimizer or one that cannot
      be differentiated when it must be.
  """
  name = config.optim.get('name', OPTIM_DEFAULTS['name'])
  optimizer = choices.choose('config.optim.name', name, OPTIMIZERS)
  if differentiable and not optimizer.differentiable:
    raise ValueError(
        f'config.optim.name={name!r} cannot be differentiated through, as '
        f'config.unroll_steps > 0 needs: {optimizer.why_not}. Use '
        "optim.name='adam'.")
  return optimizer


def create_optimizer(config: Any, learning_rate: float,
                     differentiable: bool = False, injected: bool = False
                     ) -> optax.GradientTransformation:
  """config.optim.name's optimizer at this learning rate.

  Args:
    config: uses the `optim` keys (absent ones: OPTIM_DEFAULTS).
    learning_rate: optim.lr_g or optim.lr_d.
    differentiable: the update will be differentiated (unrolled D updates).
    injected: the learning rate is held in the optimizer's state
      (`optax.inject_hyperparams`), where a sweep gives each member its own.

  Raises:
    ValueError: as `check`.
  """
  optimizer = check(config, differentiable)
  optim = type(config.optim)({**OPTIM_DEFAULTS, **config.optim})
  if injected:
    return optax.inject_hyperparams(
        lambda learning_rate: optimizer.build(optim, learning_rate,
                                              differentiable)
    )(learning_rate=learning_rate)
  return optimizer.build(optim, learning_rate, differentiable)
