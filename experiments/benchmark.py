"""Throughput of the vmapped sweep vs one-run-at-a-time training, and against the matmul peak.

    python experiments/benchmark.py                      # quickstart model, E = 1, 8, 64
    python experiments/benchmark.py --setup=nanda --members=1,8 --steps=20
    python experiments/benchmark.py --fraction_sweep     # buckets vs padding
    python experiments/benchmark.py --eval_share         # evaluation's cost
    python experiments/benchmark.py --startup            # first and second run

For each E: steady-state member-steps/s of the library's compiled chunk
(`jit(vmap(scan(step)))`, evaluation off), and for the same E members trained
one after another through a jitted single-member step in a Python loop (how
single-run codebases train). FLOPs per member-step come from XLA's cost
analysis of the compiled step; the achieved FLOP/s is compared with a dense
float32 matmul timed in the same process.

`--fraction_sweep` times whole `sweep.py` processes (start-up and compilation
included, the compilation cache off) of a sweep over training fractions:
bucketed by training-set size, the same without buckets (every member padded
to the largest fraction), and as many members at the largest fraction alone.
Executed FLOP/s count each member-step at its program's row count, useful
FLOP/s at the member's own (XLA's cost analysis of one step at each size).

`--eval_share` times the compiled chunk of one member with evaluations at
a setup's cadence and without any: evaluation's share of the loop, as the
library evaluated before --train_metrics_from_step (every row, train ones
again) and as it does now (quickstart: full batch, every 25 steps; Grokfast
like for like: batch 512, every 10 steps, as their main.py; before: train and
validation rows, now: --eval_sets=val, their own choice).

`--startup` runs the quickstart's `sweep.py` as whole processes, a short
run each (--steps and --chunk_steps of `--startup_steps`), twice with the
persistent compilation cache in a new folder (the first run fills it, the
second reads it) and once with it off: the seconds from launching the
process to the first chunk's record in metrics.jsonl (start-up, compilation
and that chunk's steps) and to the process's end.
"""

import json
import math
import os
import subprocess
import sys
import tempfile
import time

import numpy as np



from absl import app, flags
import jax

import grokjax as gj
from grokjax.io import rundir
from grokjax.train.timing import (matmul_peak, step_flops, time_loop,
                                  time_sequential, time_sweep)
from grokjax.train.timing import setup_group

SETUPS = {
    # TARGETS.md's CPU calibration / the quickstart model.
    "quickstart": gj.Config(task="x+y", p=31, depth=1, d_model=64,
                            num_heads=4, d_mlp=256, layer_norm=False,
                            train_fraction=(0.5,), learning_rate=(3e-3,)),
    # Nanda et al. 2023: x+y mod 113, 30%, 1 layer d=128, full batch.
    "nanda": gj.Config(task="x+y", p=113, op_token=False, depth=1,
                       d_model=128, num_heads=4, d_mlp=512, layer_norm=False,
                       train_fraction=(0.3,), learning_rate=(1e-3,)),
    # Power et al. 2022: x/y mod 97, 2 layers d=128, batch 512.
    "power": gj.Config(task="x/y", p=97, depth=2, d_model=128, num_heads=4,
                       d_mlp=512, batch_size=512, train_fraction=(0.5,),
                       learning_rate=(1e-3,)),
}

flags.DEFINE_enum("setup", "quickstart", list(SETUPS), "model and data")
flags.DEFINE_list("members", ["1", "8", "64"], "ensemble sizes E")
flags.DEFINE_integer("steps", 100, "steps per timed chunk")
flags.DEFINE_integer("sequential_members", 8, "members timed one after "
                     "another (the per-member rate is what matters)")
flags.DEFINE_string("out", None, "also write the results as JSON here")
flags.DEFINE_bool("fraction_sweep", False, "time a fraction sweep as whole "
                  "processes: buckets by training-set size vs padding")
flags.DEFINE_string("sweep_flagfile", "experiments/flags/quickstart.flags",
                    "--fraction_sweep: the sweep's flagfile")
flags.DEFINE_list("sweep_args", ["--p=47", "--steps=1500", "--phase_gap=0",
                                 "--snapshot_count=0", "--notensorboard"],
                  "--fraction_sweep: flags after the flagfile")
flags.DEFINE_list("fractions", ["0.1", "0.2", "0.3", "0.4", "0.5", "0.6"],
                  "--fraction_sweep: training fractions")
flags.DEFINE_integer("seeds", 2, "--fraction_sweep: seeds per fraction")
flags.DEFINE_integer("rounds", 1, "--fraction_sweep: rounds of the three "
                     "processes (the median wall counts)")
flags.DEFINE_bool("eval_share", False, "time evaluation's share of the loop "
                  "at the quickstart's and Grokfast's cadence, before and "
                  "after evaluating only what is asked")
flags.DEFINE_integer("repeats", 3, "--eval_share, --loop_case: timed "
                     "chunks per case (the fastest counts)")
flags.DEFINE_bool("startup", False, "time the quickstart's start-up: first "
                  "and second run with a new compilation cache, and without")
flags.DEFINE_integer("startup_steps", 10, "--startup: steps of each run "
                     "(one chunk)")
flags.DEFINE_string("loop_case", None, "a peer's setup and cadence (grokfast, "
                    "danielmamay): E = 1 loop and train steps/s, member-steps/s "
                    "at each other --members; JSON on stdout's last line "
                    "(experiments/speed_table.py runs it)")
FLAGS = flags.FLAGS


def _sweep_config(args: list[str]) -> gj.Config:
  from grokjax import cli
  fv = flags.FlagValues()
  cli.define_config_flags(fv)
  fv(["sweep", f"--flagfile={FLAGS.sweep_flagfile}", *args])
  return cli.config_from_flags(fv)


def _loop(config: gj.Config, eval_every: int, members: int = 1) -> float:
  return time_loop(config, eval_every, members, FLAGS.steps, FLAGS.repeats)


def _flops_at(config: gj.Config, fraction: float) -> float:
  """XLA's FLOPs of one member's full-batch step at `fraction`'s row count."""
  _, model, hypers, state, split, data = setup_group(
      config.replace(train_fraction=(fraction,)), 1, FLAGS.steps)
  return step_flops(model, config, state, hypers, split, data)


def fraction_sweep(peak: float) -> dict:
  """Whole sweep.py processes: bucketed, padded, and the largest fraction alone."""
  fractions = [float(f) for f in FLAGS.fractions]
  seeds, top = FLAGS.seeds, max(fractions)
  members = len(fractions) * seeds
  grid = [f"--train_fraction={','.join(FLAGS.fractions)}",
          f"--seed=0:{seeds}"]
  cases = {"bucketed": grid, "padded": grid + ["--nobucket_by_size"],
           f"{top:g} only": [f"--train_fraction={top:g}",
                             f"--seed=0:{members}"]}
  base = _sweep_config(FLAGS.sweep_args + grid)
  flops = {f: _flops_at(base, f) for f in set(fractions)}
  useful = seeds * sum(flops[f] for f in fractions) * base.steps
  executed = {"bucketed": useful,
              "padded": members * flops[top] * base.steps,
              f"{top:g} only": members * flops[top] * base.steps}
  sweep_py = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                          "sweep.py")
  rows = []
  print(f"| sweep ({members} members, {base.steps} steps) | wall s | "
        "executed GFLOP/s | useful GFLOP/s | useful % of matmul peak | "
        f"x wall of {top:g} only |\n|---|---|---|---|---|---|")
  times = {name: [] for name in cases}
  with tempfile.TemporaryDirectory() as tmp:
    for r in range(FLAGS.rounds):  # round-robin: drift hits every case alike
      for i, (name, extra) in enumerate(cases.items()):
        command = [sys.executable, sweep_py,
                   f"--flagfile={FLAGS.sweep_flagfile}", *FLAGS.sweep_args,
                   *extra, f"--workdir={tmp}/{r}_{i}", "--compilation_cache="]
        t = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True)
        times[name].append(time.perf_counter() - t)
  walls = {name: float(np.median(t)) for name, t in times.items()}
  for name in cases:
    wall = walls[name]
    is_top = name.endswith("only")
    row = {"sweep": name, "wall_s": wall, "walls_s": times[name],
           "executed_flops_per_s": executed[name] / wall,
           "useful_flops_per_s": (executed[name] if is_top else useful) / wall,
           "wall_ratio": wall / walls[f"{top:g} only"]}
    row["useful_fraction_of_peak"] = row["useful_flops_per_s"] / peak
    rows.append(row)
    print(f"| {name} | {wall:.1f} | {row['executed_flops_per_s'] / 1e9:.1f} | "
          f"{row['useful_flops_per_s'] / 1e9:.1f} | "
          f"{100 * row['useful_fraction_of_peak']:.0f}% | "
          f"{row['wall_ratio']:.2f} |")
  return {"fractions": fractions, "seeds": seeds,
          "sweep_args": FLAGS.sweep_args,
          "flops_per_member_step": {f"{f:g}": v for f, v in flops.items()},
          "runs": rows}


# --eval_share: (name, flagfile, flags, cadence, settings before, after).
EVAL_CASES = (
    ("quickstart", "experiments/flags/quickstart.flags", ["--seed=0"], 25,
     {"train_metrics_from_step": False}, {}),
    ("grokfast like for like", "experiments/flags/grokfast2024.flags",
     ["--exclude_y0", "--data_order=epoch", "--init=grokfast",
      "--activation=gelu_exact", "--ln_placement=input", "--attn_bias",
      "--seed=0"], 10, {}, {"eval_sets": "val"}),
)


# --loop_case: a peer's own setup and cadence, as its like-for-like row runs
# it: (row spec in experiments/flags/, flags over the spec's, cadence).
LOOP_CASES = {
    "grokfast": ("grokfast2024_baseline_like_cpu", ["--eval_sets=val"], 10),
    "danielmamay": ("danielmamay_cli", [], 100),
}


def loop_case_args(name: str) -> tuple[str, list[str], int]:
  """A LOOP_CASES entry's flagfile, its flags (the row's, no seeds; the
  case's; the cadence) and its evaluation cadence."""
  row, extra, every = LOOP_CASES[name]
  folder = os.path.join(os.path.dirname(os.path.abspath(__file__)), "flags")
  with open(os.path.join(folder, f"{row}.json")) as f:
    spec = json.load(f)
  args = [a for a in spec["flags"] if not a.startswith("--seed")]
  return (os.path.join(folder, spec["flagfile"]),
          args + extra + [f"--eval_every={every}"], every)


def loop_case(name: str) -> dict:
  """One peer setup: E = 1 loop and train steps/s at the peer's cadence,
  training member-steps/s at each further --members (a chunk of 20 steps
  without evaluations, timed once: a 2-core CPU takes minutes at E = 64),
  and the matmul peak."""
  FLAGS.sweep_flagfile, args, every = loop_case_args(name)
  config = _sweep_config(args)
  out = {"case": name, "eval_every": every, "flagfile": FLAGS.sweep_flagfile,
         "args": args, "matmul_flops_per_s": matmul_peak(),
         "loop_steps_per_s": _loop(config, every),
         "train_steps_per_s": _loop(config, 0), "members": {}}
  steps, repeats = FLAGS.steps, FLAGS.repeats
  FLAGS.steps, FLAGS.repeats = 20, 1  # E members x 20 steps, training only
  for e in (int(v) for v in FLAGS.members):
    if e > 1:
      out["members"][str(e)] = e * _loop(config, 0, e)
  FLAGS.steps, FLAGS.repeats = steps, repeats
  return out


def eval_share() -> list[dict]:
  """Evaluation's share of the loop, before and after, for each EVAL_CASES."""
  print("| setup | cadence | train steps/s | loop steps/s before | share "
        "before | loop steps/s now | share now |\n|---|---|---|---|---|---|---|")
  rows = []
  for name, flagfile, args, every, before, after in EVAL_CASES:
    FLAGS.sweep_flagfile = flagfile
    config = _sweep_config(args + [f"--eval_every={every}"])
    train = _loop(config, 0)
    old = _loop(config.replace(**before), every)
    new = _loop(config.replace(**after), every)
    row = {"setup": name, "eval_every": every, "train_steps_per_s": train,
           "loop_steps_per_s_before": old, "loop_steps_per_s_now": new,
           "eval_share_before": 1 - old / train,
           "eval_share_now": 1 - new / train, "before": before,
           "now": after}
    rows.append(row)
    print(f"| {name} | {every} | {train:.1f} | {old:.1f} | "
          f"{100 * row['eval_share_before']:.0f}% | {new:.1f} | "
          f"{100 * row['eval_share_now']:.0f}% |", flush=True)
  return rows


def _first_record_s(command: list[str], workdir: str) -> tuple[float, float]:
  """Seconds from launching `command` to the first progress event in
  `workdir`'s metrics.jsonl (polled every 10 ms), and to the process's end."""
  metrics = os.path.join(workdir, "metrics.jsonl")
  log = open(workdir + ".log", "w+")  # beside the run: its output
  t = time.perf_counter()
  proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
  first = math.nan
  while True:
    done = proc.poll() is not None
    if math.isnan(first) and os.path.exists(metrics):
      with open(metrics) as f:
        if any('"event": "progress"' in line for line in f):
          first = time.perf_counter() - t
    if done:
      break
    time.sleep(0.01)
  log.seek(0)
  output = log.read()
  log.close()
  if proc.returncode:
    raise RuntimeError(f"{' '.join(command)} failed: {output[-2000:]}")
  proc.wait()
  return first, time.perf_counter() - t


def startup() -> list[dict]:
  """First and second run of the quickstart with a new compilation cache, and with none."""
  sweep_py = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                          "sweep.py")
  n = FLAGS.startup_steps
  rows = []
  print("| run | to the first chunk's record s | process s |\n|---|---|---|")
  with tempfile.TemporaryDirectory() as tmp:
    for i, (name, cache) in enumerate((
        ("first (empty cache)", f"{tmp}/cache"),
        ("second (cache filled by the first)", f"{tmp}/cache"),
        ("cache off", ""))):
      workdir = f"{tmp}/run{i}"
      command = [sys.executable, sweep_py,
                 "--flagfile=experiments/flags/quickstart.flags",
                 f"--steps={n}", f"--chunk_steps={n}", f"--eval_every={n}",
                 f"--workdir={workdir}", f"--compilation_cache={cache}"]
      first, wall = _first_record_s(command, workdir)
      rows.append({"run": name, "first_record_s": first, "process_s": wall})
      print(f"| {name} | {first:.1f} | {wall:.1f} |", flush=True)
  return rows


def main(_):
  config = SETUPS[FLAGS.setup]
  if FLAGS.startup:
    versions = rundir.versions()
    print(f"device {jax.default_backend()}:{jax.devices()[0].device_kind}  "
          f"jax {versions['jax']}  quickstart, {FLAGS.startup_steps} steps")
    rows = startup()
    if FLAGS.out:
      gj.io.atomic.write_text(FLAGS.out, json.dumps(
          {"backend": jax.default_backend(), "versions": versions,
           "steps": FLAGS.startup_steps, "startup": rows}, indent=2))
    return
  if FLAGS.loop_case:
    if FLAGS.loop_case not in LOOP_CASES:
      raise app.UsageError(f"--loop_case={FLAGS.loop_case}: choose one of "
                           f"{', '.join(LOOP_CASES)}")
    print(json.dumps(loop_case(FLAGS.loop_case)))
    return
  if FLAGS.eval_share:
    versions = rundir.versions()
    device = jax.devices()[0].device_kind
    print(f"device {jax.default_backend()}:{device} x{jax.device_count()}  "
          f"jax {versions['jax']}  {FLAGS.steps} steps per timed chunk")
    rows = eval_share()
    if FLAGS.out:
      gj.io.atomic.write_text(FLAGS.out, json.dumps(
          {"device": device, "backend": jax.default_backend(),
           "versions": versions, "steps": FLAGS.steps, "eval_share": rows},
          indent=2))
    return
  if FLAGS.fraction_sweep:
    versions = rundir.versions()
    device = jax.devices()[0].device_kind
    print(f"device {jax.default_backend()}:{device} x{jax.device_count()}  "
          f"jax {versions['jax']}  {FLAGS.sweep_flagfile} "
          f"{' '.join(FLAGS.sweep_args)}")
    peak = matmul_peak()
    print(f"float32 matmul peak: {peak / 1e9:.1f} GFLOP/s")
    result = fraction_sweep(peak)
    if FLAGS.out:
      gj.io.atomic.write_text(FLAGS.out, json.dumps(
          {"device": device, "backend": jax.default_backend(),
           "versions": versions, "matmul_flops_per_s": peak, **result},
          indent=2))
    return
  peak = matmul_peak()
  versions = rundir.versions()
  device = jax.devices()[0].device_kind
  print(f"device {jax.default_backend()}:{device} x{jax.device_count()}  "
        f"jax {versions['jax']}  setup {FLAGS.setup}  steps/chunk {FLAGS.steps}")
  print(f"float32 matmul peak: {peak / 1e9:.1f} GFLOP/s")
  seq = time_sequential(config, FLAGS.sequential_members, FLAGS.steps)
  print(f"sequential (jitted step, members one after another): "
        f"{seq:.1f} member-steps/s")
  rows = []
  header = ("| E | member-steps/s | x sequential | GFLOP/member-step | "
            "GFLOP/s | % of matmul peak | compile s |")
  print(header + "\n|---|---|---|---|---|---|---|")
  for e in (int(v) for v in FLAGS.members):
    row = time_sweep(config, e, FLAGS.steps)
    row["speedup_vs_sequential"] = row["member_steps_per_s"] / seq
    row["fraction_of_peak"] = row["flops_per_s"] / peak
    rows.append(row)
    print(f"| {e} | {row['member_steps_per_s']:.1f} | "
          f"{row['speedup_vs_sequential']:.2f} | "
          f"{row['flops_per_member_step'] / 1e9:.4f} | "
          f"{row['flops_per_s'] / 1e9:.1f} | "
          f"{100 * row['fraction_of_peak']:.0f}% | {row['compile_s']:.1f} |",
          flush=True)
  if FLAGS.out:
    gj.io.atomic.write_text(FLAGS.out, json.dumps(
        {"setup": FLAGS.setup, "device": device,
         "backend": jax.default_backend(), "versions": versions,
         "matmul_flops_per_s": peak,
         "sequential_member_steps_per_s": seq, "sweep": rows}, indent=2))


if __name__ == "__main__":
  app.run(main)
