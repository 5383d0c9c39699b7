#!/usr/bin/env bash
# The GPU suite: the README's GPU figures come from this script.
#
#   OUT=/tmp/gpu bash experiments/gpu_suite.sh [SWEEP_SECONDS] [IDS]
#
# 1. experiments/benchmark.py at E = $BENCH_MEMBERS (default 1,8,64,256,1024;
#    quickstart model; "none" skips it): member-steps/s, x sequential, % of
#    the float32 matmul peak -> $OUT/benchmark_quickstart.json.
# 1b. experiments/benchmark.py --fraction_sweep on nanda2023.flags (96
#    members at fractions 0.1-0.6, $FRACTION_STEPS steps, default 2000; "none"
#    skips it): whole processes bucketed by training-set size, padded, and
#    0.6 alone; executed and useful FLOP/s, useful % of the matmul peak
#    -> $OUT/benchmark_fractions.json.
# 2. experiments/reproduce.py --suite=gpu --only=IDS (default
#    nanda2023_fractions: 96 members x 40k steps, ~16 min on one H200), each
#    sweep stopped after SWEEP_SECONDS (default 330) by SIGTERM: it saves a
#    checkpoint and is judged on the steps it made -> $OUT/results.json.
#    Each run's config.json, members.csv and metrics.jsonl come back in
#    $OUT/runs.tar.gz (checkpoints, records and TensorBoard files stay: with
#    them one archive passed the device tool's 16 MiB per file).
# Everything it prints is also in $OUT/suite.log. Back here:
#   python experiments/reproduce.py --table_only --merge=<OUT>/results.json --readme=README.md,docs/results.md
# records the rows; a run unpacked from runs.tar.gz can be re-measured with
#   python experiments/reproduce.py --suite=gpu --collect=ID=FOLDER
# The expected cost of each GPU reproduction is its JSON's "cost".
set -uo pipefail
OUT=${OUT:?set OUT to a folder for the results}
SWEEP_SECONDS=${1:-330}
IDS=${2:-nanda2023_fractions}
BENCH_MEMBERS=${BENCH_MEMBERS:-1,8,64,256,1024}
FRACTION_STEPS=${FRACTION_STEPS:-2000}
PY=${PYTHON:-python3}  # the device image's python3 holds JAX
export PYTHONUNBUFFERED=1
# The scripts import grokjax: installed (pip install -e .) or from this tree.
cd "$(dirname "$0")/.." && export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
mkdir -p "$OUT"
exec > >(tee -a "$OUT/suite.log") 2>&1
date -u
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv || true
"$PY" -c 'import sys, jax; print(sys.version.split()[0], "jax", jax.__version__, jax.devices())'
"$PY" -m pip list 2>/dev/null | grep -iE "^(jax|jaxlib|flax|optax|chex|orbax-checkpoint|tensorboard|numpy) " || true
if [ "$BENCH_MEMBERS" != none ]; then
  timeout -k 30 200 "$PY" experiments/benchmark.py --members="$BENCH_MEMBERS" \
    --out="$OUT/benchmark_quickstart.json"
  echo "benchmark exit $?"
fi
if [ "$FRACTION_STEPS" != none ]; then
  timeout -k 30 300 "$PY" experiments/benchmark.py --fraction_sweep \
    --sweep_flagfile=experiments/flags/nanda2023.flags --seeds=16 \
    --sweep_args="--steps=$FRACTION_STEPS,--snapshot_count=0,--notensorboard" \
    --out="$OUT/benchmark_fractions.json"
  echo "fraction benchmark exit $?"
fi
runs=/tmp/grokjax_gpu_runs
"$PY" experiments/reproduce.py --suite=gpu --only="$IDS" \
  --time_limit="$SWEEP_SECONDS" --runs="$runs" --results="$OUT/results.json"
echo "reproduce exit $?"
(cd "$runs" && tar -czf "$OUT/runs.tar.gz" */config.json */members.csv \
  */metrics.jsonl)
ls -la "$OUT"
