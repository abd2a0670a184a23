#!/usr/bin/env bash
# One host, all of its GPUs: pmap spreads the global batch over them.
# Usage: launch/local.sh CONFIG WORKDIR [--config.KEY=VALUE ...]
set -euo pipefail
config=${1:?config file}; workdir=${2:?workdir}; shift 2
exec python -m dcgan_jax.main --config="$config" --workdir="$workdir" "$@"
