#!/usr/bin/env bash
# One machine. By default one process drives all of its GPUs (or its CPU).
#
# PROCESSES=N rehearses a run over several hosts on this machine's CPU: N
# processes over loopback (gloo collectives), DEVICES (default 2) CPU
# devices each. Process 0 prints here; process K logs to
# ${TMPDIR:-/tmp}/dcgan_jax_process_K.log. Add --dry_run to print only
# the layout.
#
# Usage: [PROCESSES=N [DEVICES=D]] launch/local.sh CONFIG WORKDIR [--config.KEY=VALUE ...]
set -euo pipefail
config=${1:?config file}; workdir=${2:?workdir}; shift 2
processes=${PROCESSES:-1}
if (( processes == 1 )); then
  exec python -m dcgan_jax.main --config="$config" --workdir="$workdir" "$@"
fi
port=$(python -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
export JAX_PLATFORMS=cpu JAX_CPU_COLLECTIVES_IMPLEMENTATION=gloo
export XLA_FLAGS="--xla_force_host_platform_device_count=${DEVICES:-2}"
run() {
  python -m dcgan_jax.main --config="$config" --workdir="$workdir" \
    --multihost --coordinator_address="127.0.0.1:$port" \
    --num_processes="$processes" --process_id="$1" "${@:2}"
}
others=()
for ((p = 1; p < processes; p++)); do
  run "$p" "$@" > "${TMPDIR:-/tmp}/dcgan_jax_process_$p.log" 2>&1 &
  others+=($!)
done
status=0
run 0 "$@" || status=$?
for pid in "${others[@]}"; do
  wait "$pid" || status=$?
done
exit "$status"
