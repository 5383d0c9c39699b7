#!/usr/bin/env bash
# A grokjax sweep on a Cloud TPU VM pod slice: create it, install grokjax on
# every worker, run the same command on all of them (--worker=all), copy the
# run directory back. jax.distributed detects the TPU pod by itself.
#
#   launch/tpu_pod.sh NAME ZONE ACCELERATOR -- SWEEP_FLAGS...
#   launch/tpu_pod.sh grok-v4 us-central2-b v4-32 -- \
#       --flagfile=experiments/flags/nanda2023.flags --workdir=/mnt/shared/nanda
#
# --workdir must be a directory every worker sees (a Filestore/NFS mount or a
# gcsfuse-mounted bucket): each worker writes its checkpoint shard there and
# process 0 writes the logs and summary. On a single-host slice (v4-8, v5e-8)
# a relative --workdir is fine and is copied back from worker 0 at the end.
# A preempted run (spot/preemptible VMs) resumes with the same command.
# Environment: TPU_VERSION (default tpu-ubuntu2204-base), KEEP=1 keeps the VM.
set -euo pipefail
self=$(realpath "$0")
cd "$(dirname "${self}")/.."
if [[ $# -lt 4 || $4 != "--" ]]; then
  sed -n '2,16p' "${self}" >&2; exit 2
fi
name=$1 zone=$2 accel=$3; shift 4
version=${TPU_VERSION:-tpu-ubuntu2204-base}
ssh() { gcloud compute tpus tpu-vm ssh "${name}" --zone="${zone}" --worker=all --command="$1"; }

if ! gcloud compute tpus tpu-vm describe "${name}" --zone="${zone}" >/dev/null 2>&1; then
  gcloud compute tpus tpu-vm create "${name}" --zone="${zone}" \
      --accelerator-type="${accel}" --version="${version}"
fi
# The working tree (tracked files) to every worker, then the README's install.
git archive --format=tar.gz -o /tmp/grokjax.tar.gz HEAD
gcloud compute tpus tpu-vm scp /tmp/grokjax.tar.gz "${name}":~/grokjax.tar.gz \
    --zone="${zone}" --worker=all
ssh 'mkdir -p grokjax && tar -xzf grokjax.tar.gz -C grokjax && cd grokjax &&
     python3 -m venv .venv && . .venv/bin/activate && pip install -q -e . &&
     pip install -q -U "jax[tpu]"'
# The same program on every worker; quoting keeps the flags intact.
flags=$(printf ' %q' "$@")
status=0
ssh "cd grokjax && . .venv/bin/activate && python experiments/sweep.py --multihost${flags}" || status=$?
# Copy a relative run directory back from worker 0 (a shared mount needs no copy).
workdir=$(printf '%s\n' "$@" | sed -n 's/^--workdir=//p' | tail -1)
if [[ -n ${workdir} && ${workdir} != /* ]]; then
  mkdir -p "$(dirname "${workdir}")"
  gcloud compute tpus tpu-vm scp --recurse "${name}:~/grokjax/${workdir}" \
      "$(dirname "${workdir}")/" --zone="${zone}" --worker=0
fi
if [[ -z ${KEEP:-} ]]; then
  gcloud compute tpus tpu-vm delete "${name}" --zone="${zone}" --quiet
fi
exit ${status}
