"""Golden values: a few steps of each model family, pinned to the bit.

Run as a script to (re)write `tests/golden/values.json` after a change that is
MEANT to move numbers (say which, and why, in the commit):

    python tests/golden_cases.py --write

`tests/test_golden.py` recomputes every case and compares per-step losses,
eval records and a SHA-256 of every parameter's bytes exactly. The values are
bitwise only for the same jax/jaxlib (XLA) build on the same CPU kind, which
the file records; the model is nanodo's `tests/train_test.py`.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import platform
import re
import subprocess
import sys
import zlib

import jax
import numpy as np

import grokjax as gj

HERE = os.path.dirname(os.path.abspath(__file__))
VALUES = os.path.join(HERE, "golden", "values.json")
SWEEP = os.path.join(os.path.dirname(HERE), "experiments", "sweep.py")
QUICKSTART = os.path.join(os.path.dirname(HERE), "experiments", "flags",
                          "quickstart.flags")

_TRANSFORMER = gj.Config(task="x+y", p=11, model="transformer", depth=1,
                         d_model=16, num_heads=2, d_mlp=32, steps=12,
                         eval_every=4, chunk_steps=5, seed=(0, 1),
                         train_fraction=(0.4, 0.7), learning_rate=(3e-3,),
                         weight_decay=(1.0,))
_MLP = gj.Config(task="x*y", p=11, model="mlp", mlp_hidden=(32,), d_model=8,
                 steps=12, eval_every=4, chunk_steps=5, seed=(0, 1),
                 train_fraction=(0.5,), batch_size=16, learning_rate=(1e-2,),
                 weight_decay=(0.1,))
_LINEAR = gj.Config(task="sparse_recovery", model="linear", linear_dim=20,
                    linear_k=3, steps=12, eval_every=4, chunk_steps=5,
                    optimizer="sgd", warmup_steps=0, seed=(0, 1),
                    train_fraction=(0.5, 0.8), learning_rate=(0.1,),
                    weight_decay=(0.0,), reg_mask="all")

CASES = {
    "transformer": _TRANSFORMER,
    "transformer_nuclear_ma": _TRANSFORMER.replace(
        regularizer="nuclear", reg_strength=(1e-3,), grad_filter="ma",
        grokfast_window=3, layer_norm=False),
    "mlp_minibatch": _MLP,
    "mlp_l1_ema_noise": _MLP.replace(
        regularizer="l1", reg_strength=(1e-3,), grad_filter="ema",
        gradient_noise=1e-3, weight_noise=1e-4, perp_grad=True),
    "mlp_mse_stablemax_prox": _MLP.replace(
        loss="stablemax", regularizer="nuclear_prox", reg_strength=(1e-2,),
        fixed_norm=True, optimizer="adam"),
    "linear": _LINEAR,
    "linear_l1_prox": _LINEAR.replace(regularizer="l1_prox",
                                      reg_strength=(1e-2,)),
    "matrix_completion_depth2": _LINEAR.replace(
        task="matrix_completion", linear_dim=6, linear_k=1, linear_depth=2,
        regularizer="nuclear", reg_strength=(1e-3,), learning_rate=(0.05,)),
}


# The ISA extensions a compiler can emit, as /proc/cpuinfo names them (x86
# "flags", Arm "Features"): XLA's CPU backend asks LLVM for the host's CPU and
# features (capped by --xla_cpu_max_isa) and picks its kernels by them.
_ISA = re.compile(r"^(sse|ssse3|avx|fma|f16c|amx|xop|asimd|sve|sme\d*$|fp$|"
                  r"fphp|bf16|i8mm|dotprod)")


def _cpu() -> tuple[str, list[str]]:
  """The CPU as LLVM's host detection sees it: vendor, family and model (which
  name its target CPU) and its vector ISA extensions."""
  try:
    with open("/proc/cpuinfo") as f:
      block = f.read().split("\n\n")[0]
  except OSError:  # not Linux: the name alone (bitwise then needs the same)
    return platform.processor() or platform.machine(), []
  info = dict(re.split(r"\s*:\s*", line, maxsplit=1)
              for line in block.splitlines() if ":" in line)
  name = " / ".join(info.get(k, "") for k in (
      "vendor_id", "cpu family", "model", "CPU implementer", "CPU part")
                    if k in info)
  flags = (info.get("flags") or info.get("Features") or "").split()
  return name, sorted(f for f in flags if _ISA.match(f))


# Every field the bitwise claim depends on; test_golden checks that the
# recorded environment has each of them.
ENVIRONMENT_FIELDS = ("jax", "jaxlib", "machine", "backend", "cpu",
                      "cpu_features", "xla_flags")


def environment() -> dict:
  """What bitwise equality depends on: the XLA build (jax, jaxlib), the
  backend, the CPU and the ISA XLA may target on it, and XLA_FLAGS (some of
  which, --xla_cpu_max_isa for one, change the generated code)."""
  import jaxlib  # pylint: disable=import-outside-toplevel
  cpu, features = _cpu()
  return {"jax": jax.__version__, "jaxlib": jaxlib.__version__,
          "machine": platform.machine(), "backend": jax.default_backend(),
          "cpu": cpu, "cpu_features": features,
          "xla_flags": " ".join(sorted(os.environ.get("XLA_FLAGS",
                                                      "").split()))}


def params_sha256(params) -> str:
  """SHA-256 over every parameter leaf's path, dtype, shape and bytes."""
  digest = hashlib.sha256()
  for path, leaf in jax.tree_util.tree_leaves_with_path(params):
    leaf = np.asarray(leaf)
    digest.update(f"{jax.tree_util.keystr(path)}|{leaf.dtype}|{leaf.shape}|"
                  .encode())
    digest.update(np.ascontiguousarray(leaf).tobytes())
  return digest.hexdigest()


def params_stats(params) -> dict:
  """Per leaf: sum, L2 norm, min, max and two projections on fixed Gaussian
  vectors (seeded by the leaf's path), in float64. Unlike the hash these take
  a tolerance (in units of the leaf's norm: see `scaled_differences`), and a
  permutation or a sign flip of the leaf moves them."""
  out = {}
  for path, leaf in jax.tree_util.tree_leaves_with_path(params):
    key = jax.tree_util.keystr(path)
    x = np.asarray(leaf, np.float64).ravel()
    rng = np.random.default_rng(zlib.crc32(key.encode()))
    proj = rng.standard_normal((2, x.size)) @ x
    out[key] = [float(x.sum()), float(np.sqrt(x @ x)), float(x.min()),
                float(x.max()),
                *map(float, proj)]
  return out


def _floats(x: np.ndarray) -> list:
  # float32 -> Python float is exact, and JSON round-trips Python floats exactly.
  return np.asarray(x, np.float64).tolist()


def fingerprint(config: gj.Config) -> dict:
  """Every per-step and eval record, and the final parameters' hash."""
  result = gj.sweep(config, workdir=None, log=None)
  out = {k: _floats(v) for k, v in sorted(result.history.items())}
  out["params_sha256"] = params_sha256(result.state.params)
  out["params_stats"] = params_stats(result.state.params)
  return out


def quickstart_summary(workdir: str) -> str:
  """summary.csv of the quickstart flagfile at a small budget (300 steps), through the CLI."""
  subprocess.run([sys.executable, SWEEP, f"--flagfile={QUICKSTART}",
                  "--steps=300", "--chunk_steps=100", f"--workdir={workdir}"],
                 check=True, capture_output=True)
  with open(os.path.join(workdir, "summary.csv")) as f:
    return f.read()


def compute() -> dict:
  import tempfile  # pylint: disable=import-outside-toplevel
  values = {"environment": environment(),
            "cases": {name: fingerprint(c) for name, c in CASES.items()}}
  with tempfile.TemporaryDirectory() as tmp:
    values["quickstart_summary_csv"] = quickstart_summary(
        os.path.join(tmp, "run"))
  return values


def scaled_differences(expected: dict, got: dict) -> dict:
  """The largest difference between two fingerprints of one case, each in
  units of its value's scale: a record (loss, accuracy, norm) in units of
  max(|expected|, 1), a parameter statistic in units of its leaf's L2 norm.
  Step indices must be equal (they follow from the config alone)."""
  worst, where = 0.0, None
  for key, x in expected.items():
    if key == "params_sha256":
      continue
    if key == "params_stats":
      for leaf, stats in x.items():
        e, g = np.asarray(stats), np.asarray(got[key][leaf])
        d = float(np.max(np.abs(e - g))) / max(e[1], 1e-30)
        if d > worst or np.isnan(d):
          worst, where = d, f"params_stats{leaf}"
      continue
    e, g = np.asarray(x, np.float64), np.asarray(got[key], np.float64)
    if e.shape != g.shape:
      return {"max": np.inf, "where": f"{key}: shape {g.shape} != {e.shape}"}
    if key.endswith("_step"):
      if not np.array_equal(e, g):
        return {"max": np.inf, "where": f"{key}: steps differ"}
      continue
    d = np.abs(e - g) / np.maximum(np.abs(e), 1.0)
    d = np.where(np.isnan(e) & np.isnan(g), 0.0, d)
    m = float(np.max(d, initial=0.0))
    if m > worst or np.isnan(m):
      worst, where = m, key
  return {"max": worst, "where": where}


def summary_differences(expected: str, got: str) -> dict:
  """Two summary.csv texts of the same sweep: the largest difference of
  t_mem / t_gen / delay in steps (inf where one reached and the other did not)
  and of the final accuracies, and whether every other column except `phase`
  (which follows from the times) is equal."""
  e_rows, g_rows = (list(csv.DictReader(io.StringIO(t))) for t in
                    (expected, got))
  steps, acc, same = 0.0, 0.0, len(e_rows) == len(g_rows)
  for e, g in zip(e_rows, g_rows):
    same &= e.keys() == g.keys()
    for col in e:
      if col in ("t_mem", "t_gen", "delay"):
        if (e[col] == "") != (g[col] == ""):
          steps = np.inf
        elif e[col]:
          steps = max(steps, abs(float(e[col]) - float(g[col])))
      elif col in ("final_train_acc", "final_val_acc"):
        acc = max(acc, abs(float(e[col]) - float(g[col])))
      elif col != "phase":
        same &= e[col] == g.get(col)
  return {"steps": steps, "acc": acc, "other_columns_equal": bool(same)}


def differences(a: dict, b: dict) -> dict:
  """Per case of two computed value sets: the largest scaled difference, and
  whether the parameters' hashes and the quickstart summaries are equal (how
  the tolerances in test_golden.py were measured)."""
  out = {name: {**scaled_differences(a["cases"][name], b["cases"][name]),
                "sha_equal": (a["cases"][name]["params_sha256"]
                              == b["cases"][name]["params_sha256"])}
         for name in a["cases"]}
  out["quickstart"] = summary_differences(a["quickstart_summary_csv"],
                                          b["quickstart_summary_csv"])
  return out


if __name__ == "__main__":
  args = sys.argv[1:]
  if args == ["--write"] or (len(args) == 1 and args[0].startswith("--dump=")):
    jax.config.update("jax_numpy_rank_promotion", "raise")
    path = VALUES if args == ["--write"] else args[0].partition("=")[2]
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    gj.io.atomic.write_text(path, json.dumps(compute()))
    print(f"wrote {path}")
  elif len(args) == 3 and args[0] == "--diff":
    with open(args[1]) as fa, open(args[2]) as fb:
      print(json.dumps(differences(json.load(fa), json.load(fb)), indent=1))
  else:
    sys.exit("usage: python tests/golden_cases.py --write | --dump=FILE | "
             "--diff A.json B.json")
