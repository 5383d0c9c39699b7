"""experiments/sweep.py end to end: a small sweep groks and writes its run directory; bad flags exit 2."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from grokjax import io as gio

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SWEEP = os.path.join(ROOT, "experiments", "sweep.py")

# A 1-layer transformer on x+y mod 31 with 70% of the pairs: memorizes by ~100
# steps, reaches 99% validation accuracy ~500 steps later (measured: 75 and 600).
GROKS = ["--task=x+y", "--p=31", "--depth=1", "--d_model=64", "--d_mlp=256",
         "--num_heads=4", "--nolayer_norm", "--steps=1000", "--eval_every=25",
         "--chunk_steps=250", "--learning_rate=3e-3", "--weight_decay=1",
         "--train_fraction=0.7", "--seed=0:3", "--phase_gap=200"]


def _sweep(*args, cwd=ROOT):
  return subprocess.run([sys.executable, SWEEP, *args], cwd=cwd,
                        capture_output=True, text=True, timeout=600)


def test_a_small_sweep_groks_and_writes_a_self_describing_run_directory(tmp_path):
  workdir = str(tmp_path / "run")
  proc = _sweep(*GROKS, f"--workdir={workdir}")
  assert proc.returncode == 0, proc.stderr
  summary = gio.read_csv(os.path.join(workdir, "summary.csv"))
  assert len(summary) == 3
  grokked = [r for r in summary if r["phase"] == "grokking" and r["t_gen"]]
  assert len(grokked) >= 2, summary
  for r in grokked:
    t_mem, t_gen = float(r["t_mem"]), float(r["t_gen"])
    assert t_mem <= 200 and t_gen >= 3 * t_mem and float(r["delay"]) > 200
    assert float(r["final_val_acc"]) >= 0.99 and r["diverged"] == "False"
  # Columns are named exactly as the flags.
  members = gio.read_csv(os.path.join(workdir, "members.csv"))
  assert list(members[0]) == ["member", "seed", "data_seed", "train_fraction",
                              "learning_rate", "weight_decay", "init_scale",
                              "reg_strength", "task_index"]
  assert [m["seed"] for m in members] == ["0", "1", "2"]
  for key in members[0]:
    assert key in summary[0]
  history = gio.read_history(workdir)
  assert history["step_train_loss"].shape == (3, 1000)
  assert history["val_acc"].shape == (3, len(history["eval_step"])) == (3, 41)
  config = gio.read_config(workdir)
  assert config["config"]["p"] == 31 and config["grid"]["seed"] == [0, 1, 2]
  assert config["versions"]["jax"] and config["devices"]["backend"] == "cpu"
  lines = open(os.path.join(workdir, "metrics.jsonl")).read().splitlines()
  evals = [json.loads(l) for l in lines if '"event"' not in l]
  assert [e["step"] for e in evals] == history["eval_step"].tolist()
  np.testing.assert_allclose([e["val_acc"] for e in evals],
                             history["val_acc"].T, rtol=1e-6)
  assert os.path.exists(os.path.join(workdir, "plots", "curves.png"))
  # The same command again resumes the finished run: nothing retrains and the
  # results are rewritten identically.
  again = _sweep(*GROKS, f"--workdir={workdir}")
  assert again.returncode == 0, again.stderr
  assert "resuming from the checkpoint at step 1000 of group 0 (finished)" in \
      again.stdout and "step    " not in again.stdout
  assert gio.read_csv(os.path.join(workdir, "summary.csv")) == summary
  np.testing.assert_array_equal(gio.read_history(workdir)["val_acc"],
                                history["val_acc"])
  # Other flags on the same workdir are refused, naming each difference.
  other = _sweep(*GROKS, "--steps=2000", "--weight_decay=0.5",
                 f"--workdir={workdir}")
  assert other.returncode == 2
  line, = other.stderr.strip().splitlines()
  assert "--steps: 2000 vs 1000" in line and "--weight_decay: 0.5 vs 1" in line
  assert gio.read_csv(os.path.join(workdir, "summary.csv")) == summary


# In the slow run (pytest -m slow, which .ci/run also runs): keeps the default run under 10 minutes.
@pytest.mark.slow
def test_overwrite_replaces_only_what_a_run_writes(tmp_path):
  workdir = tmp_path / "run"
  args = ["--p=7", "--depth=1", "--d_model=16", "--d_mlp=32", "--num_heads=2",
          "--steps=10", "--eval_every=5", f"--workdir={workdir}"]
  assert _sweep(*args, "--weight_decay=0.1,1", "--train_fraction=0.5,0.8"
                ).returncode == 0
  assert (workdir / "plots" / "grid.png").exists()  # two swept axes
  assert len(gio.read_csv(str(workdir / "summary.csv"))) == 4
  (workdir / "notes.txt").write_text("mine")
  proc = _sweep(*args, "--overwrite")
  assert proc.returncode == 0, proc.stderr
  assert not (workdir / "plots" / "grid.png").exists()  # from the old grid
  assert len(gio.read_csv(str(workdir / "summary.csv"))) == 1
  assert (workdir / "notes.txt").read_text() == "mine"


@pytest.mark.parametrize("args, flag", [
    (["--task=x/y", "--p=91"], "--p=91"),
    (["--train_fraction=0.5,1.5"], "--train_fraction=1.5"),
    (["--task=x%y"], "--task=x%y"),
    (["--seed=a:b"], "--seed=a:b"),
    (["--bogus=1"], "bogus"),
    (["--steps=ten"], "steps"),
    (["--flagfile=/nonexistent/run.flags"], "/nonexistent/run.flags"),
    (["--model=cnn"], "--model=cnn"),
    (["--task=algebra", "--algebra=complex", "--p=3", "--task_index=1"],
     "--task_index=1"),
    (["--checkpoint_every=-5"], "--checkpoint_every=-5"),
    (["--members_per_group=-1"], "--members_per_group=-1"),
    (["--memory_limit_gb=-2"], "--memory_limit_gb=-2"),
    (["--host_memory_limit_gb=-1"], "--host_memory_limit_gb=-1"),
    # The case: host memory is planned (histories of 100,000 members).
    (["--model=mlp", "--seed=0:100000", "--host_memory_limit_gb=0.5"],
     "--seed: 100000 members need"),
    (["--process_id=1"], "--process_id"),
    (["--multihost", "--num_processes=2"], "--multihost"),
    (["--multihost", "--coordinator_address=127.0.0.1:1", "--num_processes=2",
      "--process_id=2"], "--process_id=2"),
])
def test_bad_flags_exit_2_with_one_line_naming_the_flag(args, flag, tmp_path):
  proc = _sweep(*args, f"--workdir={tmp_path}/run", "--steps=10")
  assert proc.returncode == 2
  lines = proc.stderr.strip().splitlines()
  assert len(lines) == 1 and flag in lines[0], proc.stderr
  assert not os.path.exists(tmp_path / "run")  # nothing written, nothing compiled


@pytest.mark.slow  # ~20 s; the default run stays under 10 min on 2 cores
def test_the_compilation_cache_is_filled_once_and_loads_the_same_program(
    tmp_path):
  """A second run of the same program loads XLA's executable from the
  persistent cache (on by default; --compilation_cache names the folder) and
  writes the same summary.csv byte for byte; an uncreatable folder is one
  line. Measured (quickstart flagfile, 100 steps, 2 busy cores): 18.4 s from
  process start to the end of the first run, 9.6 s for the second."""
  cache = tmp_path / "cache"
  env = dict(os.environ, JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0")
  args = ["--task=x+y", "--p=11", "--steps=20", "--chunk_steps=20",
          "--eval_every=10", "--model=mlp", f"--compilation_cache={cache}"]
  runs = []
  for name in ("first", "second"):
    proc = subprocess.run([sys.executable, SWEEP, *args,
                           f"--workdir={tmp_path / name}"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    runs.append((tmp_path / name / "summary.csv").read_bytes())
    if name == "first":
      filled = sorted(os.listdir(cache))
      assert filled  # the programs the first run compiled
  assert sorted(os.listdir(cache)) == filled  # the second compiled nothing new
  assert runs[0] == runs[1]
  blocker = tmp_path / "file"
  blocker.write_text("x")
  proc = _sweep(*args[:-1], f"--compilation_cache={blocker}/cache",
                f"--workdir={tmp_path / 'third'}")
  assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1
  assert f"--compilation_cache={blocker}/cache" in proc.stderr
