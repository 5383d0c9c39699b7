#!/usr/bin/env bash
# Runs one grokjax sweep as N cooperating processes on this machine, exactly as
# a TPU pod or a SLURM job runs it (jax.distributed over 127.0.0.1): the member
# axis is sharded over every process's devices; process 0 logs and writes.
#
#   launch/local.sh NUM_PROCESSES [DEVICES_PER_PROCESS] -- SWEEP_FLAGS...
#   launch/local.sh 2 2 -- --flagfile=experiments/flags/quickstart.flags \
#       --workdir=runs/local2
#
# On CPU, DEVICES_PER_PROCESS sets --xla_force_host_platform_device_count
# (default 1). The exit status is the first non-zero one of the processes
# (75: stopped by a signal with a checkpoint saved; run it again to resume).
# PYTHON picks the interpreter (default: python on PATH, e.g. the activated .venv).
set -euo pipefail
self=$(realpath "$0")
cd "$(dirname "${self}")/.."
if [[ $# -lt 2 ]]; then
  sed -n '2,13p' "${self}" >&2; exit 2
fi
num=$1; shift
per=1
if [[ $1 != "--" ]]; then per=$1; shift; fi
[[ $1 == "--" ]] || { echo "local.sh: expected -- before the sweep flags" >&2; exit 2; }
shift
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
export XLA_FLAGS="${XLA_FLAGS:-} --xla_force_host_platform_device_count=${per}"
pids=()
trap 'kill -TERM "${pids[@]}" 2>/dev/null || true' TERM INT
for ((i = 0; i < num; i++)); do
  "${PYTHON:-python}" experiments/sweep.py "$@" --multihost \
      --coordinator_address="127.0.0.1:${port}" --num_processes="${num}" \
      --process_id="${i}" &
  pids+=($!)
done
status=0
for pid in "${pids[@]}"; do
  while true; do
    rc=0
    wait "${pid}" || rc=$?
    # A trapped signal interrupts `wait` (rc > 128) while the process saves
    # its checkpoint: wait again for its own exit status.
    kill -0 "${pid}" 2>/dev/null || break
  done
  [[ ${status} -ne 0 ]] || status=${rc}
done
exit "${status}"
