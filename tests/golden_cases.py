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

import hashlib
import json
import os
import platform
import subprocess
import sys

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


def environment() -> dict:
  """What bitwise equality depends on."""
  import jaxlib  # pylint: disable=import-outside-toplevel
  return {"jax": jax.__version__, "jaxlib": jaxlib.__version__,
          "machine": platform.machine(), "backend": jax.default_backend()}


def params_sha256(params) -> str:
  """SHA-256 over every parameter leaf's path, dtype, shape and bytes."""
  digest = hashlib.sha256()
  for path, leaf in jax.tree_util.tree_leaves_with_path(params):
    leaf = np.asarray(leaf)
    digest.update(f"{jax.tree_util.keystr(path)}|{leaf.dtype}|{leaf.shape}|"
                  .encode())
    digest.update(np.ascontiguousarray(leaf).tobytes())
  return digest.hexdigest()


def _floats(x: np.ndarray) -> list:
  # float32 -> Python float is exact, and JSON round-trips Python floats exactly.
  return np.asarray(x, np.float64).tolist()


def fingerprint(config: gj.Config) -> dict:
  """Every per-step and eval record, and the final parameters' hash."""
  result = gj.sweep(config, workdir=None, log=None)
  out = {k: _floats(v) for k, v in sorted(result.history.items())}
  out["params_sha256"] = params_sha256(result.state.params)
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


if __name__ == "__main__":
  if sys.argv[1:] != ["--write"]:
    sys.exit("usage: python tests/golden_cases.py --write")
  jax.config.update("jax_numpy_rank_promotion", "raise")
  os.makedirs(os.path.dirname(VALUES), exist_ok=True)
  with open(VALUES, "w") as f:
    json.dump(compute(), f)
  print(f"wrote {VALUES}")
