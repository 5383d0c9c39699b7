"""grokjax beside the peers' own code, at each peer's setup and cadence, in the same rounds on one machine.

    python experiments/speed_table.py --peers_dir=../peers \\
        --peer_python=../peers/venv/bin/python --rounds=3 --out=docs/speed_table.md

Each round runs, one after another: each peer's own script through its
driver in experiments/peers/ (unedited; a global hook on torch's optimizer
step times every step and marks the intervals that hold an evaluation, a
forward pass without gradients), then grokjax's compiled chunk at the same
setup and cadence (`benchmark.py --loop_case`: E = 1 loop and train
steps/s, and training member-steps/s at E = 8 and 64), then a whole `sweep.py`
process of the row for the same number of steps (its wall, compilation
included, the compilation cache off). Rounds alternate the programs, so a
drift of the machine hits all alike; the table shows medians over rounds.

The setups are the like-for-like rows (`LOOP_CASES` in benchmark.py):
Grokfast's main.py (x*y mod 97 without y = 0, batch 512 by epoch, its
validation half evaluated every epoch of 10 steps; grokjax with
--eval_sets=val, as their code) and danielmamay/grokking's cli.py (x/y mod
97, batch 512 by epoch, the full train and validation sets evaluated every
100 steps). Writes `--out` (Markdown) and the same numbers as JSON beside it.
"""

import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time

from absl import app, flags

HERE = os.path.dirname(os.path.abspath(__file__))

flags.DEFINE_string("peers_dir", None, "folder holding the checkouts: "
                    "grokfast/ (ironjr/grokfast), danielmamay-grokking/ "
                    "(danielmamay/grokking)")
flags.DEFINE_string("peer_python", None, "the Python with torch that runs "
                    "the peers' code (pip install -e '.[peers]')")
flags.DEFINE_integer("rounds", 3, "rounds of every program")
flags.DEFINE_list("cases", ["grokfast", "danielmamay"], "the peers")
flags.DEFINE_integer("steps", 1000, "optimizer steps of each peer run and "
                     "each grokjax sweep process")
flags.DEFINE_string("out", "docs/speed_table.md", "the table (Markdown); JSON "
                    "beside it")
FLAGS = flags.FLAGS

# case -> (driver, its checkout folder, its flags for --steps steps)
DRIVERS = {
    "grokfast": ("grokfast2024.py", "grokfast", lambda n: [f"--budget={n}"]),
    "danielmamay": ("danielmamay.py", "danielmamay-grokking",
                    lambda n: [f"--steps={n}"]),
}


def _run(command: list[str]) -> tuple[float, str]:
  t = time.perf_counter()
  proc = subprocess.run(command, capture_output=True, text=True, check=False)
  wall = time.perf_counter() - t
  if proc.returncode:
    sys.exit(f"speed_table: {' '.join(command[:3])} ... failed "
             f"(exit {proc.returncode}):\n{proc.stderr[-2000:]}")
  return wall, proc.stdout


def peer_round(case: str, tmp: str) -> dict:
  driver, folder, steps = DRIVERS[case]
  out = os.path.join(tmp, f"peer_{case}_{time.time_ns()}")
  wall, _ = _run([FLAGS.peer_python, os.path.join(HERE, "peers", driver),
                  f"--peer_dir={os.path.join(FLAGS.peers_dir, folder)}",
                  f"--out={out}", *steps(FLAGS.steps)])
  with open(os.path.join(out, "peer.json")) as f:
    record = json.load(f)
  return {"wall_s": wall, **record["timing"], "torch": record["torch"],
          "repo": record["repo"], "commit": record["commit"]}


def ours_round(case: str, tmp: str) -> dict:
  _, text = _run([sys.executable, os.path.join(HERE, "benchmark.py"),
                  f"--loop_case={case}", "--members=1,8,64", "--steps=200",
                  "--repeats=3"])
  loop = json.loads(text.strip().splitlines()[-1])
  wall, _ = _run([sys.executable, os.path.join(HERE, "sweep.py"),
                  f"--flagfile={loop['flagfile']}", *loop["args"], "--seed=0",
                  f"--steps={FLAGS.steps}", "--nostop_when_generalized",
                  "--snapshot_count=0", "--notensorboard",
                  "--compilation_cache=",
                  f"--workdir={os.path.join(tmp, f'ours_{case}_{time.time_ns()}')}"])
  return {"wall_s": wall, **loop}


def _median(rows: list[dict], key: str):
  values = [r[key] for r in rows if r.get(key) is not None]
  return statistics.median(values) if values else None


def main(argv):
  del argv
  if not FLAGS.peers_dir or not FLAGS.peer_python:
    sys.exit("speed_table: give --peers_dir and --peer_python")
  import jax  # pylint: disable=import-outside-toplevel
  from grokjax.io import rundir  # pylint: disable=import-outside-toplevel
  peers = {c: [] for c in FLAGS.cases}
  ours = {c: [] for c in FLAGS.cases}
  with tempfile.TemporaryDirectory() as tmp:
    for r in range(FLAGS.rounds):
      for case in FLAGS.cases:
        peers[case].append(peer_round(case, tmp))
        ours[case].append(ours_round(case, tmp))
        print(f"round {r + 1}/{FLAGS.rounds} {case}: theirs "
              f"{peers[case][-1]['loop_steps_per_s']:.1f} loop steps/s, ours "
              f"{ours[case][-1]['loop_steps_per_s']:.1f}", flush=True)
  versions = rundir.versions()
  cpu = platform.processor() or platform.machine()
  try:
    with open("/proc/cpuinfo") as f:
      cpu = next(l.split(":", 1)[1].strip() for l in f
                 if l.startswith("model name"))
  except (OSError, StopIteration):
    pass
  date = datetime.date.today().isoformat()
  peaks = [r["matmul_flops_per_s"] for c in FLAGS.cases for r in ours[c]]
  first = {c: peers[c][0] for c in FLAGS.cases}
  lines = [
      f"Measured {date} on {cpu} ({os.cpu_count()} cores, "
      f"{jax.default_backend()}), float32 matmul peak "
      f"{statistics.median(peaks) / 1e9:.0f} GFLOP/s (JAX, 2048²); jax "
      f"{versions['jax']}, torch {first[FLAGS.cases[0]]['torch']}; "
      f"{FLAGS.rounds} rounds, medians; {FLAGS.steps} steps per process.",
      "",
      "| setup (their code) | cadence | their loop steps/s | their train "
      "steps/s | grokjax loop steps/s (E=1) | grokjax train steps/s | loop "
      "ratio | their process s | grokjax process s | grokjax E=8 training "
      "member-steps/s | E=64 |",
      "|---|---|---|---|---|---|---|---|---|---|---|"]
  table = {}
  for case in FLAGS.cases:
    p, o = peers[case], ours[case]
    row = {k: _median(p, k) for k in ("loop_steps_per_s", "train_steps_per_s",
                                      "wall_s")}
    mine = {k: _median(o, k) for k in ("loop_steps_per_s",
                                       "train_steps_per_s", "wall_s")}
    members = {e: statistics.median(r["members"][e] for r in o)
               for e in o[0]["members"]}
    ratio = mine["loop_steps_per_s"] / row["loop_steps_per_s"]
    table[case] = {"theirs": row, "ours": mine, "members": members,
                   "loop_ratio": ratio, "rounds": {"theirs": p, "ours": o}}
    lines.append(
        f"| {case} ({first[case]['repo']}@{first[case]['commit'][:7]}) | "
        f"{o[0]['eval_every']} | {row['loop_steps_per_s']:.1f} | "
        f"{row['train_steps_per_s']:.1f} | {mine['loop_steps_per_s']:.1f} | "
        f"{mine['train_steps_per_s']:.1f} | **{ratio:.2f}×** | "
        f"{row['wall_s']:.0f} | {mine['wall_s']:.0f} | "
        f"{members.get('8', float('nan')):.0f} | "
        f"{members.get('64', float('nan')):.0f} |")
  text = "\n".join(lines) + "\n"
  print(text)
  os.makedirs(os.path.dirname(os.path.abspath(FLAGS.out)), exist_ok=True)
  with open(FLAGS.out, "w") as f:
    f.write(text)
  with open(os.path.splitext(FLAGS.out)[0] + ".json", "w") as f:
    json.dump({"date": date, "cpu": cpu, "cores": os.cpu_count(),
               "versions": versions, "matmul_flops_per_s": peaks,
               "steps": FLAGS.steps, "cases": table}, f, indent=1)


if __name__ == "__main__":
  app.run(main)
