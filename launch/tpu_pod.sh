#!/usr/bin/env bash
# A Cloud TPU pod slice: the same command on every worker; JAX finds the
# other workers itself. WORKDIR should be a bucket path all workers share.
# Usage: TPU_NAME=my-pod ZONE=us-central2-b launch/tpu_pod.sh CONFIG WORKDIR [--config.KEY=VALUE ...]
set -euo pipefail
config=${1:?config file}; workdir=${2:?workdir}; shift 2
gcloud compute tpus tpu-vm ssh "${TPU_NAME:?}" --zone="${ZONE:?}" --worker=all \
  --command="cd dcgan_jax && python -m dcgan_jax.main --multihost --config=$config --workdir=$workdir $*"
