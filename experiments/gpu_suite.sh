#!/usr/bin/env bash
# The GPU suite: the README's GPU figures come from this script.
#
#   OUT=/tmp/gpu bash experiments/gpu_suite.sh [SWEEP_SECONDS]
#
# 1. experiments/benchmark.py at E = 1, 8, 64, 256, 1024 (quickstart model):
#    member-steps/s, x sequential, % of the float32 matmul peak.
# 2. experiments/flags/nanda2023.flags (96 members, 40k steps) for at most
#    SWEEP_SECONDS (default 330): `timeout` sends SIGTERM, the sweep saves a
#    checkpoint and exits 75, and the same command resumes it later. The run
#    directory's config.json, members.csv and metrics.jsonl (every member's
#    evaluations so far, gzipped) come back in $OUT/nanda2023.tar.gz; the
#    checkpoints, records and TensorBoard files stay behind (with them the
#    archive passed the device tool's 16 MiB limit per file).
# Everything it prints is also in $OUT/suite.log. Back here, unpack the
# archive into a folder and judge it with
#   python experiments/reproduce.py --suite=gpu --collect=nanda2023_fractions=FOLDER --readme=README.md
set -uo pipefail
OUT=${OUT:?set OUT to a folder for the results}
SWEEP_SECONDS=${1:-330}
export PYTHONUNBUFFERED=1
mkdir -p "$OUT"
exec > >(tee -a "$OUT/suite.log") 2>&1
date -u
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv || true
python3 -c 'import sys, jax; print(sys.version.split()[0], "jax", jax.__version__, jax.devices())'
python3 -m pip list 2>/dev/null | grep -iE "^(jax|jaxlib|flax|optax|chex|orbax-checkpoint|tensorboard|numpy) " || true
timeout -k 30 200 python3 experiments/benchmark.py --members=1,8,64,256,1024 \
  --out="$OUT/benchmark_quickstart.json"
echo "benchmark exit $?"
work=/tmp/grokjax_gpu_nanda2023
rm -rf "$work"
SECONDS=0
timeout -k 60 "$SWEEP_SECONDS" python3 experiments/sweep.py \
  --flagfile=experiments/flags/nanda2023.flags --workdir="$work"
echo "sweep exit $? after ${SECONDS}s"
tar -czf "$OUT/nanda2023.tar.gz" -C "$work" config.json members.csv \
  metrics.jsonl
ls -la "$OUT"
