"""How much the numbers of a sweep depend on how it was run: one device, several, or one member at a time.

    python experiments/drift.py --flagfile=experiments/flags/quickstart.flags \\
        --seed=0:16 --out=runs/drift --devices=4

XLA compiles each member count and device layout on its own, so the same
member trained in an E=32 sweep on one device, in the same sweep sharded over
4 devices, or alone (E=1) is not bitwise the same run: rounding differs from
the first steps and Adam amplifies it (README, "Reproducibility"). This script
measures what that does to the science. It trains the flags' grid three ways
into `--out`:

- ``one_device``: the whole grid as one sweep on one device;
- ``sharded``: the same sweep over `--devices` CPU devices (a subprocess with
  ``--xla_force_host_platform_device_count``);
- ``single/<i>``: every member alone, a sweep of one (one process, with a
  persistent compilation cache so the E=1 program compiles once).

and compares each to ``one_device``: per member, |delta t_mem| and |delta
t_gen| (steps; a member that generalized in one run and not the other counts
apart), and whether its phase (Liu et al.'s comprehension / grokking /
memorization / confusion) changed. Writes ``drift.json`` and prints a table.
"""

import json
import os
import subprocess
import sys
import tempfile


from absl import flags
import jax
import numpy as np

from grokjax import cli
import grokjax as gj
from grokjax import io as gio
from grokjax.config import INT_AXES

cli.define_config_flags()
flags.DEFINE_string("out", None, "directory for the runs and drift.json")
flags.DEFINE_integer("devices", 4, "CPU devices of the sharded run")
FLAGS = flags.FLAGS
SWEEP = os.path.join(os.path.dirname(os.path.abspath(__file__)), "sweep.py")


def _summary(workdir: str) -> list[dict]:
  return gio.read_csv(os.path.join(workdir, "summary.csv"))


def _time(row: dict, key: str) -> float:
  value = row.get(key, "")
  return float(value) if value not in ("", "nan", None) else float("nan")


def compare(reference: list[dict], other: list[dict]) -> dict:
  """Per-member drift of `other` against `reference` (rows in member order)."""
  out = {}
  for key in ("t_mem", "t_gen"):
    a = np.array([_time(r, key) for r in reference])
    b = np.array([_time(r, key) for r in other])
    both = np.isfinite(a) & np.isfinite(b)
    delta = np.abs(a - b)[both]
    out[key] = {
        "members_compared": int(both.sum()),
        "reached_in_one_only": int((np.isfinite(a) != np.isfinite(b)).sum()),
        "identical": int((delta == 0).sum()),
        "median_abs_delta": float(np.median(delta)) if delta.size else None,
        "p90_abs_delta": (float(np.percentile(delta, 90)) if delta.size
                          else None),
        "max_abs_delta": float(delta.max()) if delta.size else None,
        "median_rel_delta": (float(np.median(delta / np.maximum(a[both], 1)))
                             if delta.size else None),
        "abs_delta": delta.tolist(),
    }
  phases = [(r["phase"], o["phase"]) for r, o in zip(reference, other)]
  out["phase_changes"] = [f"member {i}: {a} -> {b}"
                          for i, (a, b) in enumerate(phases) if a != b]
  return out


def _run_sharded(argv: list[str], workdir: str, devices: int) -> None:
  env = dict(os.environ, XLA_FLAGS=(os.environ.get("XLA_FLAGS", "") +
                                    f" --xla_force_host_platform_device_count="
                                    f"{devices}").strip())
  del argv  # absl leaves only unparsed arguments there: use the command line
  flags_args = [a for a in sys.argv[1:]
                if not a.startswith(("--out", "--devices"))]
  proc = subprocess.run([sys.executable, SWEEP, *flags_args,
                         f"--workdir={workdir}"], env=env, check=False)
  if proc.returncode:
    raise SystemExit(f"drift.py: the sharded run failed ({proc.returncode})")


def _finished(workdir: str, config: gj.Config) -> bool:
  """Whether `workdir` holds a finished run of `config` to reuse; ConfigError
  when it holds another run (a reused run must be the one asked for)."""
  if not os.path.exists(os.path.join(workdir, "summary.csv")):
    return False
  try:
    stored = gj.io.RunDir(workdir).config(where=f"--out={FLAGS.out}: {workdir}")
  except gj.ConfigError as e:
    raise gj.ConfigError(f"{e}; give a new --out") from None
  diffs = config.differences(stored)
  if diffs:
    raise gj.ConfigError(
        f"--out={FLAGS.out}: {workdir} holds a run with other settings ("
        + "; ".join(diffs[:3]) + ("; ..." if len(diffs) > 3 else "")
        + "; these flags' vs the stored run's): give a new --out, or the "
        "flags of that run")
  return True


def main(argv):
  if not FLAGS.out:
    raise gj.ConfigError("--out: give a directory for the runs")
  if FLAGS.devices < 1:
    raise gj.ConfigError(f"--devices={FLAGS.devices}: give the number of CPU "
                         "devices of the sharded run (>= 1)")
  config = cli.config_from_flags()
  grid = gj.Grid.from_config(config)
  members = grid.rows()
  try:
    os.makedirs(FLAGS.out, exist_ok=True)
  except OSError as e:
    raise gj.ConfigError(f"--out={FLAGS.out}: cannot create it ({e.strerror})"
                         "; give a folder you can write") from None
  if not os.access(FLAGS.out, os.W_OK):
    raise gj.ConfigError(f"--out={FLAGS.out}: not writable; give a folder "
                         "you can write")
  cache = tempfile.mkdtemp(prefix="grokjax-drift-cache-")
  jax.config.update("jax_compilation_cache_dir", cache)
  one = os.path.join(FLAGS.out, "one_device")
  if not _finished(one, config):
    gj.sweep(config, workdir=one, devices=jax.devices()[:1])
  sharded = os.path.join(FLAGS.out, f"sharded_{FLAGS.devices}")
  if not _finished(sharded, config):
    _run_sharded(argv, sharded, FLAGS.devices)
  singles = []
  for i, values in enumerate(members):
    workdir = os.path.join(FLAGS.out, "single", str(i))
    alone = config.replace(**{
        k: ((int(v) if k in INT_AXES else float(v)),)
        for k, v in values.items() if v is not None})
    if not _finished(workdir, alone):
      gj.sweep(alone, workdir=workdir, log=None, devices=jax.devices()[:1])
      print(f"single member {i + 1}/{len(members)} done", flush=True)
    singles.extend(_summary(workdir))
  reference = _summary(one)
  result = {"members": len(members), "devices": FLAGS.devices,
            "jax": jax.__version__, "backend": jax.default_backend(),
            f"sharded_{FLAGS.devices}_vs_one_device": compare(
                reference, _summary(sharded)),
            "single_vs_one_device": compare(reference, singles)}
  gj.io.atomic.write_text(os.path.join(FLAGS.out, "drift.json"),
                          json.dumps(result, indent=1))
  print(f"{'comparison':32} {'time':6} {'same':>5} {'median|d|':>10} "
        f"{'p90|d|':>8} {'max|d|':>8} {'one-sided':>9} {'phase changes':>13}")
  for name in (f"sharded_{FLAGS.devices}_vs_one_device",
               "single_vs_one_device"):
    for key in ("t_mem", "t_gen"):
      d = result[name][key]
      fmt = lambda v: "-" if v is None else f"{v:.0f}"
      print(f"{name:32} {key:6} {d['identical']:>5} "
            f"{fmt(d['median_abs_delta']):>10} {fmt(d['p90_abs_delta']):>8} "
            f"{fmt(d['max_abs_delta']):>8} {d['reached_in_one_only']:>9} "
            f"{len(result[name]['phase_changes']):>13}")
  print(f"wrote {os.path.join(FLAGS.out, 'drift.json')}")


if __name__ == "__main__":
  cli.run_main(main)
