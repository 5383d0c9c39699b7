"""Runs that survive: SIGKILL and resume, SIGTERM preemption, corrupt checkpoints, groups.

Every comparison is bitwise: a resumed run executes the same compiled chunk on
the restored state with the same per-step keys, so on the CPU its histories and
final parameters are identical to an uninterrupted run's.
"""

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time

import jax
import numpy as np
import pytest

import grokjax as gj
from grokjax import io as gio
from grokjax.train import checkpoint as ckpt_lib
from grokjax.train import plan as plan_lib
from grokjax.train import memory

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SWEEP = os.path.join(ROOT, "experiments", "sweep.py")

# ~0.25 s a chunk of 50 steps on 2 cores: long enough to be hit mid-run.
CONFIG = gj.Config(task="x+y", p=11, depth=1, d_model=16, num_heads=2,
                   d_mlp=32, steps=2000, chunk_steps=50, eval_every=50,
                   checkpoint_every=100, seed=(0, 1), batch_size=16)
ARGS = ["--task=x+y", "--p=11", "--depth=1", "--d_model=16", "--num_heads=2",
        "--d_mlp=32", "--steps=2000", "--chunk_steps=50", "--eval_every=50",
        "--checkpoint_every=100", "--seed=0,1", "--batch_size=16"]


@pytest.fixture(scope="module")
def reference():
  """The uninterrupted run (no run directory)."""
  return gj.sweep(CONFIG, workdir=None, log=None)


def _assert_same_run(workdir, reference):
  history = gio.read_history(workdir)
  assert history.keys() == reference.history.keys()
  for key, value in reference.history.items():
    np.testing.assert_array_equal(history[key], value, err_msg=key)
  config, state = gj.train.load_final_state(workdir)
  assert config == reference.config
  jax.tree.map(np.testing.assert_array_equal, state,
               jax.device_get(reference.state))
  # metrics.jsonl holds each eval once, in order, despite the interruption.
  lines = [json.loads(l) for l in open(os.path.join(workdir, "metrics.jsonl"))]
  evals = [l["step"] for l in lines if "event" not in l]
  assert evals == history["eval_step"].tolist()


def _start(workdir):
  return subprocess.Popen([sys.executable, SWEEP, *ARGS, f"--workdir={workdir}"],
                          cwd=ROOT, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True)


def _wait_for_step(workdir, proc, step, timeout=300):
  """Blocks until metrics.jsonl logs progress at or beyond `step`."""
  path = os.path.join(workdir, "metrics.jsonl")
  deadline = time.time() + timeout
  while time.time() < deadline:
    assert proc.poll() is None, proc.communicate()
    if os.path.exists(path):
      for line in open(path).read().splitlines():
        record = json.loads(line)
        if record.get("event") == "progress" and record["step"] >= step:
          return
    time.sleep(0.02)
  raise TimeoutError(step)


def _resume(workdir):
  proc = subprocess.run([sys.executable, SWEEP, *ARGS, f"--workdir={workdir}"],
                        cwd=ROOT, capture_output=True, text=True, timeout=600)
  assert proc.returncode == 0, proc.stderr
  return proc.stdout


@pytest.mark.slow  # ~20 s; the default run stays under 10 min on 2 cores
def test_a_run_killed_with_sigkill_resumes_to_the_same_bits(tmp_path, reference):
  workdir = str(tmp_path / "run")
  proc = _start(workdir)
  _wait_for_step(workdir, proc, 500)
  proc.kill()
  proc.communicate()
  assert proc.returncode == -signal.SIGKILL
  assert not os.path.exists(os.path.join(workdir, "summary.csv"))
  out = _resume(workdir)
  resumed_at = int(out.split("resuming from the checkpoint at step ")[1].split()[0])
  # Saves are asynchronous: the kill may have caught the latest ones in flight.
  assert 100 <= resumed_at <= 500 and resumed_at % 100 == 0
  _assert_same_run(workdir, reference)


def test_sigterm_saves_a_checkpoint_and_exits_75_then_resumes(tmp_path,
                                                              reference):
  workdir = str(tmp_path / "run")
  proc = _start(workdir)
  _wait_for_step(workdir, proc, 300)
  proc.send_signal(signal.SIGTERM)
  _, err = proc.communicate(timeout=120)
  assert proc.returncode == 75, err
  line, = err.strip().splitlines()
  assert "run the same command again to resume" in line
  stopped = int(line.split("at step ")[1].split()[0])
  # The checkpoint is at the very step it stopped at, not the last periodic one.
  ckpts = ckpt_lib.RunCheckpoints(workdir, CONFIG.steps, 1)
  progress = ckpts.progress(ckpts.manager.latest_step())
  ckpts.close()
  assert progress["step"] == stopped and not progress["finished"]
  assert 300 <= stopped < 2000
  out = _resume(workdir)
  assert f"resuming from the checkpoint at step {stopped} of group 0" in out
  _assert_same_run(workdir, reference)


SHORT = CONFIG.replace(steps=200, checkpoint_every=50)


def _corrupt(directory):
  """Truncates every data file of an orbax checkpoint (a torn disk write)."""
  for root, _, files in os.walk(os.path.join(directory, "state")):
    for name in files:
      path = os.path.join(root, name)
      with open(path, "r+b") as f:
        f.truncate(os.path.getsize(path) // 3)


def test_a_corrupt_checkpoint_is_reported_and_the_previous_one_used(tmp_path):
  workdir = str(tmp_path / "run")
  reference = gj.sweep(SHORT, workdir=workdir, log=None)
  # Finished: the final checkpoint (index 201) and the latest periodic one (150).
  steps = sorted(int(d) for d in os.listdir(os.path.join(workdir, "checkpoints")))
  assert steps[-2:] == [150, 201]
  _corrupt(os.path.join(workdir, "checkpoints", "201"))
  lines = []
  resumed = gj.sweep(SHORT, workdir=workdir, log=lines.append)
  corrupt = [l for l in lines if "is corrupt" in l]
  assert len(corrupt) == 1 and "checkpoints/201" in corrupt[0], lines
  assert os.path.isdir(os.path.join(workdir, "checkpoints_corrupt", "201"))
  assert any("resuming from the checkpoint at step 150 of group 0" in l
             for l in lines)
  for key, value in reference.history.items():
    np.testing.assert_array_equal(resumed.history[key], value, err_msg=key)
  jax.tree.map(np.testing.assert_array_equal, jax.device_get(resumed.state),
               jax.device_get(reference.state))


def test_a_checkpoint_with_unreadable_progress_counts_as_corrupt(tmp_path):
  workdir = str(tmp_path / "run")
  reference = gj.sweep(SHORT, workdir=workdir, log=None)
  progress_dir = os.path.join(workdir, "checkpoints", "201", "progress")
  for name in os.listdir(progress_dir):
    with open(os.path.join(progress_dir, name), "w") as f:
      f.write("{not json")
  lines = []
  resumed = gj.sweep(SHORT, workdir=workdir, log=lines.append)
  assert any("checkpoints/201 is corrupt" in l for l in lines), lines
  assert any("resuming from the checkpoint at step 150" in l for l in lines)
  np.testing.assert_array_equal(resumed.history["val_loss"],
                                reference.history["val_loss"])


def test_when_every_checkpoint_is_corrupt_the_error_says_so(tmp_path):
  workdir = str(tmp_path / "run")
  gj.sweep(SHORT.replace(checkpoint_every=0), workdir=workdir, log=None)
  summary = open(os.path.join(workdir, "summary.csv")).read()
  _corrupt(os.path.join(workdir, "checkpoints", "201"))
  with pytest.raises(gj.ConfigError, match="every checkpoint in .* is corrupt; "
                     "pass --overwrite"):
    gj.sweep(SHORT.replace(checkpoint_every=0), workdir=workdir, log=None)
  assert open(os.path.join(workdir, "summary.csv")).read() == summary


def test_other_flags_are_refused_and_run_only_flags_are_not(tmp_path):
  workdir = str(tmp_path / "run")
  gj.sweep(SHORT, workdir=workdir, log=None)
  with pytest.raises(gj.ConfigError) as e:
    gj.sweep(SHORT.replace(d_model=32, seed=(0, 1, 2)), workdir=workdir,
             log=None)
  message = str(e.value)
  assert "\n" not in message
  assert "--d_model: 32 vs 16" in message and "--seed: 0,1,2 vs 0,1" in message
  assert "--overwrite" in message
  # Checkpoint cadence and memory settings never change a result.
  lines = []
  gj.sweep(SHORT.replace(checkpoint_every=7, memory_limit_gb=3.0),
           workdir=workdir, log=lines.append)
  assert any("resuming" in l for l in lines)
  # --overwrite starts afresh, after every check has passed.
  fresh = gj.sweep(SHORT.replace(steps=100), workdir=workdir, log=None,
                   overwrite=True)
  assert gio.read_history(workdir)["step_train_loss"].shape == (2, 100)
  assert fresh.history["step_train_loss"].shape == (2, 100)


def test_a_grouped_run_resumes_inside_its_last_group(tmp_path):
  config = SHORT.replace(seed=(0, 1, 2, 3, 4), members_per_group=2)
  workdir = str(tmp_path / "run")
  reference = gj.sweep(config, workdir=workdir, log=None)
  assert reference.groups == 3
  # Undo the last group's final checkpoint: as if killed at step 150 of group
  # 2 (members 4 and a padding copy); groups 0 and 1 come from their records.
  ckpt_dir = os.path.join(workdir, "checkpoints")
  for index in os.listdir(ckpt_dir):
    if int(index) > ckpt_lib.index_of(2, 150, config.steps, False):
      shutil.rmtree(os.path.join(ckpt_dir, index))
  for name in ("summary.csv", "history.npz"):
    os.remove(os.path.join(workdir, name))
  lines = []
  resumed = gj.sweep(config, workdir=workdir, log=lines.append)
  assert any("resuming from the checkpoint at step 150 of group 2" in l
             for l in lines), lines
  for key, value in reference.history.items():
    np.testing.assert_array_equal(resumed.history[key], value, err_msg=key)
  jax.tree.map(np.testing.assert_array_equal, resumed.state, reference.state)
  assert resumed.state.params["embed"]["embedding"].shape[0] == 5


def test_a_run_that_died_before_its_first_checkpoint_starts_over_cleanly(tmp_path):
  workdir = str(tmp_path / "run")
  reference = gj.sweep(SHORT, workdir=workdir, log=None)
  # As if killed after writing records and metrics but before any checkpoint.
  shutil.rmtree(os.path.join(workdir, "checkpoints"))
  os.remove(os.path.join(workdir, "summary.csv"))
  lines = []
  again = gj.sweep(SHORT, workdir=workdir, log=lines.append)
  assert not any("resuming" in l for l in lines)
  for key, value in reference.history.items():
    np.testing.assert_array_equal(again.history[key], value, err_msg=key)
  records = [json.loads(l) for l in open(os.path.join(workdir, "metrics.jsonl"))]
  evals = [r["step"] for r in records if "event" not in r]
  assert evals == reference.history["eval_step"].tolist()
  assert [r["event"] for r in records if "event" in r][:1] == ["start"]


def _signal_inside(monkeypatch, owner, name):
  """Sends this process SIGTERM when `owner.name` is called (then calls it)."""
  real = getattr(owner, name)

  def signal_then_call(*args, **kwargs):
    os.kill(os.getpid(), signal.SIGTERM)
    return real(*args, **kwargs)
  monkeypatch.setattr(owner, name, signal_then_call)


@pytest.mark.parametrize("owner, name, phase, config", [
    # The probes run when four times the generous figure does not fit.
    (memory, "estimate", "planning memory", SHORT.replace(
        memory_limit_gb=0.001)),
    (plan_lib, "compile_chunk", "compiling the sweep", SHORT),
])
def test_a_signal_before_training_stops_at_once_with_nothing_written(
    tmp_path, monkeypatch, owner, name, phase, config):
  _signal_inside(monkeypatch, owner, name)
  workdir = tmp_path / "run"
  with pytest.raises(gj.Preempted, match=f"^stopped by a signal while {phase}"
                     ".*, before training a step; nothing is half-written"):
    gj.sweep(config, workdir=str(workdir), log=None)
  assert not workdir.exists()  # the lock's directory is removed too
  # The handlers are restored: a later sweep in this process is unaffected.
  assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL


def test_a_signal_while_the_run_directory_opens_is_held_until_it_is_whole(
    tmp_path, monkeypatch):
  reference = gj.sweep(SHORT, log=None)
  workdir = str(tmp_path / "run")
  _signal_inside(monkeypatch, gio.RunDir, "write_members")
  with pytest.raises(gj.Preempted, match="^stopped by a signal while opening "
                     "the run directory"):
    gj.sweep(SHORT, workdir=workdir, log=None)
  monkeypatch.undo()
  # config.json and members.csv are whole; the run starts over from step 0.
  assert gio.RunDir(workdir).config() == SHORT
  assert len(gio.read_csv(os.path.join(workdir, "members.csv"))) == 2
  lines = []
  again = gj.sweep(SHORT, workdir=workdir, log=lines.append)
  assert not any("resuming" in l for l in lines)
  for key, value in reference.history.items():
    np.testing.assert_array_equal(again.history[key], value, err_msg=key)


# In the slow run (pytest -m slow, which .ci/run also runs).
@pytest.mark.slow
def test_sigterm_right_after_start_exits_75_and_the_run_completes_on_rerun(
    tmp_path, reference):
  """The CLI in whatever phase the signal lands (the lock exists: planning,
  compiling or the first chunks): one line, exit 75, then a clean resume."""
  workdir = str(tmp_path / "run")
  proc = _start(workdir)
  lock = os.path.join(workdir, "lock")
  deadline = time.time() + 300
  while not os.path.exists(lock) and time.time() < deadline:
    assert proc.poll() is None, proc.communicate()
    time.sleep(0.005)
  proc.send_signal(signal.SIGTERM)
  _, err = proc.communicate(timeout=300)
  assert proc.returncode == 75, err
  line, = err.strip().splitlines()
  assert "run the same command again to" in line
  _resume(workdir)
  _assert_same_run(workdir, reference)


def _limit_file_size(num_bytes):
  """preexec_fn: files past `num_bytes` cannot be written (EFBIG), as on a
  full disk; SIGXFSZ ignored so the write fails instead of killing."""
  import resource  # pylint: disable=import-outside-toplevel

  def limit():
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (num_bytes, num_bytes))
  return limit


# In the slow run (pytest -m slow, which .ci/run also runs): keeps the default run under 10 minutes.
@pytest.mark.slow
def test_a_full_disk_stops_in_one_line_and_the_run_resumes_with_room(tmp_path):
  config = SHORT.replace(steps=300, checkpoint_every=100)
  args = [*ARGS, "--steps=300", "--checkpoint_every=100"]
  workdir = str(tmp_path / "run")
  # 20 kB: the records (4.5 kB a chunk) fit, a checkpoint's data file
  # (18-36 kB) does not.
  env = dict(os.environ)
  env.pop("JAX_COMPILATION_CACHE_DIR", None)  # its entries would not fit
  proc = subprocess.run([sys.executable, SWEEP, *args, f"--workdir={workdir}"],
                        cwd=ROOT, capture_output=True, text=True, timeout=600,
                        preexec_fn=_limit_file_size(20_000), env=env)
  assert proc.returncode == 74, proc.stderr
  # Our line is there once. (Measured: in 1 run of 3 to 6, tensorstore's
  # pending writes also print "Event loop is closed" tracebacks from its own
  # threads, before, after or around it, which no Python hook catches.) The
  # first file past 20 kB: a checkpoint's or the TensorBoard curves'.
  found = re.findall(r"sweep\.py: cannot write (\S+).*?\(File too large\); "
                     r"what was written before is intact: .*? then run the "
                     r"same command again to resume", proc.stderr)
  assert len(found) == 1 and found[0].startswith(workdir), proc.stderr
  assert not os.path.exists(os.path.join(workdir, "summary.csv"))
  proc = subprocess.run([sys.executable, SWEEP, *args, f"--workdir={workdir}"],
                        cwd=ROOT, capture_output=True, text=True, timeout=600)
  assert proc.returncode == 0, proc.stderr
  reference = gj.sweep(config, log=None)
  history = gio.read_history(workdir)
  for key, value in reference.history.items():
    np.testing.assert_array_equal(history[key], value, err_msg=key)


def test_a_read_only_workdir_is_one_line_and_exit_2(tmp_path):
  """Without write access to the workdir's parent: chmod for a user; root
  writes anywhere, so for root the folder is made immutable (chattr +i)."""
  parent = tmp_path / "shared"
  parent.mkdir()
  if os.geteuid() == 0:
    if subprocess.run(["chattr", "+i", str(parent)],
                      capture_output=True).returncode:
      pytest.skip("root without chattr +i: no way to deny root a write")
  else:
    os.chmod(parent, 0o555)
  try:
    proc = subprocess.run([sys.executable, SWEEP, *ARGS, "--steps=10",
                           f"--workdir={parent}/run"], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
  finally:
    if os.geteuid() == 0:
      subprocess.run(["chattr", "-i", str(parent)], check=True)
  assert proc.returncode == 2, proc.stderr
  line, = proc.stderr.strip().splitlines()
  assert line.startswith(f"sweep.py: error: --workdir={parent}/run: cannot "
                         "be used as a run directory (")
  assert line.endswith("); give a writable folder")
