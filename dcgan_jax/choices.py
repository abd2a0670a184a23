"""Choosing by name: the one wording of a name that is not in its registry.

Every choice a user makes by name (model, objective, optimizer, metric,
tracker, normalisation, dtype, ...) is a key of one registry, looked up
through `choose` or checked through `check`, so a wrong name always fails
the same way: the config key, the value, and the names to choose from.
Imports nothing from the package: every layer may use it.
"""

from typing import Any, Iterable, Mapping, TypeVar

Value = TypeVar('Value')


def not_known(key: str, value: Any, known: Iterable[str]) -> ValueError:
  """The error for `key=value` where value is not one of `known`."""
  return ValueError(f'{key}={value!r} is not known; choose one of '
                    f'{", ".join(map(str, known))}.')


def check(key: str, value: Any, known: Iterable[str]) -> Any:
  """value if it is one of `known`; else raises `not_known`."""
  known = tuple(known)
  if value not in known:
    raise not_known(key, value, known)
  return value


def choose(key: str, name: str, registry: Mapping[str, Value]) -> Value:
  """registry[name]; else raises `not_known` naming the registry's keys."""
  if name not in registry:
    raise not_known(key, name, registry)
  return registry[name]


def check_list(key: str, text: str, known: Iterable[str]) -> list[str]:
  """The comma-separated names of `text`, each one of `known`."""
  known = tuple(known)
  names = [name.strip() for name in text.split(',') if name.strip()]
  for name in names:
    if name not in known:
      raise ValueError(f'{key}={text!r}: {name!r} is not known; choose one '
                       f'of {", ".join(known)}.')
  return names
