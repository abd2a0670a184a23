"""What the commands share: a mistake in --config (a missing file, a key the
config does not have, a value of the wrong type or out of range) ends the
command with one sentence naming it, not a Python traceback.

  if __name__ == '__main__':
    ...define flags...
    cli.run(main)
"""

import importlib.util
import os
import sys
from typing import Any, Callable, NoReturn

from absl import app
from absl import flags

from dcgan_jax.run import config_schema

_CONFIG = '--config='
_OVERRIDE = '--config.'


def _fail(message: str) -> NoReturn:
  raise SystemExit(f'Error: {message}')


def _load_config_file(path: str) -> Any:
  spec = importlib.util.spec_from_file_location('_config', path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module.get_config()


def _describe(argv: list[str], error: Exception) -> str:
  """One sentence for an error in parsing the flags or loading --config."""
  paths = [arg[len(_CONFIG):] for arg in argv if arg.startswith(_CONFIG)]
  if not paths:
    return str(error)
  path = paths[-1]
  if not os.path.isfile(path):
    return f'--config={path}: no such file.'
  try:
    known = config_schema.flat_config(_load_config_file(path))
  except Exception as load_error:  # pylint: disable=broad-except
    return f'--config={path} could not be loaded: {load_error!r}'
  for arg in argv:
    if arg.startswith(_OVERRIDE):
      key = arg[len(_OVERRIDE):].split('=', 1)[0]
      if key not in known and not any(k.startswith(key + '.') for k in known):
        return config_schema.unknown_key_error(key, known)
  return str(error).splitlines()[0]


def parse_flags(argv: list[str],
                flag_values: flags.FlagValues = flags.FLAGS) -> list[str]:
  """absl's flag parsing, with --config loaded here, so that its errors end
  the command with one sentence."""
  try:
    rest = flag_values(argv)
    if 'config' in flag_values:
      config = flag_values.config
      if config is not None:
        config.to_dict()  # A config that failed to load raises here.
    return rest
  except Exception as e:  # pylint: disable=broad-except
    _fail(_describe(argv, e))


def _exit_on_config_errors(main: Callable[[list[str]], Any]
                           ) -> Callable[[list[str]], Any]:
  def run_main(argv: list[str]) -> Any:
    try:
      return main(argv)
    except config_schema.ConfigError as e:
      sys.stdout.flush()
      _fail(str(e))
  return run_main


def run(main: Callable[[list[str]], Any]) -> None:
  """app.run(main) with `parse_flags`; a ConfigError from main ends the
  command with its message."""
  app.run(_exit_on_config_errors(main), flags_parser=parse_flags)
