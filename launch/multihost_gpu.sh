#!/usr/bin/env bash
# Several GPU hosts: run this on every host with the same COORDINATOR
# (host:port of process 0), NUM_PROCESSES and a distinct PROCESS_ID.
# Under SLURM or Open MPI the flags can be left out: JAX detects the cluster.
# Usage: COORDINATOR=10.0.0.1:1234 NUM_PROCESSES=2 PROCESS_ID=0 \
#          launch/multihost_gpu.sh CONFIG WORKDIR [--config.KEY=VALUE ...]
set -euo pipefail
config=${1:?config file}; workdir=${2:?workdir (shared by all hosts)}; shift 2
exec python -m dcgan_jax.main --config="$config" --workdir="$workdir" \
  --multihost --coordinator_address="${COORDINATOR:?}" \
  --num_processes="${NUM_PROCESSES:?}" --process_id="${PROCESS_ID:?}" "$@"
