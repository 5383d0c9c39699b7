"""Running a reproduction: its command's Config (checked before anything
runs), the sweep and its analysis as child processes under a time limit, and
the measured entry; `experiments/reproduce.py` is its command line."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from absl import flags

from grokjax import cli
from grokjax.config import Config, ConfigError
from grokjax.io.rundir import RunDir
from grokjax.reproductions.measure import measure
from grokjax.reproductions.spec import Reproduction

# The repository holding experiments/ (the scripts the children run).
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(
    __file__))))


def spec_config(spec: Reproduction, extra: tuple[str, ...] = (),
                root: str = ROOT) -> Config:
  """The Config the reproduction's command builds (its flagfile, its flags,
  then `extra`); nested --flagfile paths are relative to `root`, the
  repository."""
  fv = flags.FlagValues()
  cli.define_config_flags(fv)
  flagfile, cwd = os.path.abspath(spec.flagfile_path), os.getcwd()
  os.chdir(root)
  try:
    fv(["sweep.py", f"--flagfile={flagfile}", *spec.flags, *extra])
  except flags.Error as e:
    raise ConfigError(f"{spec.path}: its command does not parse ({e})") \
        from None
  finally:
    os.chdir(cwd)
  try:
    return cli.config_from_flags(fv)
  except ConfigError as e:
    raise ConfigError(f"{spec.path}: its command is invalid ({e})") from None


def check_collected(spec: Reproduction, workdir: str, pair: str,
                    root: str = ROOT) -> None:
  """A collected run must be the reproduction's command: same Config, the
  run-only fields (checkpointing, TensorBoard, memory) aside."""
  if not os.path.exists(os.path.join(workdir, "config.json")):
    raise ConfigError(f"--collect={pair}: no config.json in {workdir}")
  try:
    stored = RunDir(workdir).config(where=f"--collect={pair}")
  except ConfigError as e:
    raise ConfigError(f"{e}; collect a run directory that sweep.py wrote, "
                      "or run the reproduction again") from None
  diffs = spec_config(spec, root=root).differences(stored)
  if diffs:
    shown = "; ".join(diffs[:3]) + ("; ..." if len(diffs) > 3 else "")
    raise ConfigError(
        f"--collect={pair}: {workdir} was made with other settings than "
        f"{spec.id}'s command ({shown}; the command's vs the run's): collect "
        "it under the reproduction whose command made it, or run "
        f"reproduce.py --only={spec.id}")


def run_child(args: list[str], log, time_limit: int, root: str = ROOT) -> int:
  """A Python child process in `root` with its output in `log`; SIGTERM at
  the time limit (0: none)."""
  proc = subprocess.Popen([sys.executable, *args], cwd=root, stdout=log,
                          stderr=subprocess.STDOUT)
  try:
    return proc.wait(timeout=time_limit or None)
  except subprocess.TimeoutExpired:
    proc.send_signal(signal.SIGTERM)  # the sweep saves a checkpoint, exits 75
    return proc.wait()


def analyze(spec: Reproduction, workdir: str, log, suite: str,
            root: str = ROOT) -> int:
  """The reproduction's analysis commands on `workdir`; the first failure's exit code."""
  for command in spec.analysis_for(suite):
    args = [a.replace("{workdir}", workdir) for a in command]
    rc = run_child([os.path.join("experiments", args[0]), *args[1:]], log, 0,
                   root)
    if rc:
      return rc
  return 0


def run_one(spec: Reproduction, workdir: str, suite: str, time_limit: int = 0,
            root: str = ROOT) -> dict:
  """Sweep, analysis and measurement of one reproduction in `suite`; a
  failure is recorded, not raised. `time_limit`: seconds before the sweep
  gets SIGTERM (it saves a checkpoint; the steps made are judged, STALE)."""
  os.makedirs(workdir, exist_ok=True)
  log_path = os.path.join(workdir, "reproduce.log")
  start = time.time()
  extra = list(spec.smoke) if suite == "smoke" else []
  with open(log_path, "a") as log:
    rc = run_child([os.path.join("experiments", "sweep.py"),
                    f"--flagfile={spec.flagfile_path}", *spec.flags, *extra,
                    f"--workdir={workdir}"], log, time_limit, root)
    stopped = rc == 75
    if rc == 0:
      rc = analyze(spec, workdir, log, suite, root)
  wall = time.time() - start
  if rc == -signal.SIGTERM and time_limit:
    return {"id": spec.id, "suite": suite, "status": "FAILED",
            "error": f"--time_limit={time_limit} stopped the sweep "
                     "before it could save a checkpoint (it was still "
                     "starting or compiling); give a larger --time_limit",
            "log": log_path}
  if rc not in (0, 75):
    with open(log_path) as f:
      tail = [l for l in f.read().splitlines() if l.strip()][-1:]
    return {"id": spec.id, "suite": suite, "status": "FAILED",
            "error": tail[0] if tail else f"exit {rc}", "log": log_path}
  entry = measure(spec, workdir, suite)
  entry["wall_seconds"] = wall
  if stopped:
    entry["stopped"] = "time limit"
  return entry
