#!/usr/bin/env bash
# A Cloud TPU VM (one host or a pod slice) that already exists: copies this
# checkout to every worker, installs it there with the TPU extras, and
# starts the same command on all workers; JAX finds the workers itself.
# Creates no resources.
#
# WORKDIR must be a bucket path all workers share (gs://...); so must
# --config.data.path for TFDS data or a folder.
#
# Usage: TPU_NAME=my-tpu ZONE=us-central2-b launch/tpu_vm.sh CONFIG WORKDIR [--config.KEY=VALUE ...]
set -euo pipefail
config=${1:?config file}; workdir=${2:?gs:// workdir}; shift 2
tpu=${TPU_NAME:?set TPU_NAME}; zone=${ZONE:?set ZONE}
on_all_workers() {
  gcloud compute tpus tpu-vm ssh "$tpu" --zone="$zone" --worker=all \
    --command="$1"
}
archive=$(mktemp --suffix=.tar.gz)
trap 'rm -f "$archive"' EXIT
(cd "$(dirname "$0")/.." && git ls-files -z | tar czf "$archive" --null -T -)
gcloud compute tpus tpu-vm scp "$archive" "$tpu:dcgan_jax.tar.gz" \
  --zone="$zone" --worker=all
on_all_workers "rm -rf dcgan_jax && mkdir dcgan_jax && tar xzf dcgan_jax.tar.gz -C dcgan_jax && python3 -m venv dcgan_jax/.venv && dcgan_jax/.venv/bin/pip install -q -e 'dcgan_jax[tpu]'"
args=$(printf ' %q' --multihost --config="$config" --workdir="$workdir" "$@")
on_all_workers "cd dcgan_jax && .venv/bin/python -m dcgan_jax.main$args"
