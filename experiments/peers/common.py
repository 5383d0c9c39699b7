"""What every peer driver shares: the checkout's identity, running a script unedited, a clock on torch's optimizer step, and the record it writes.

A driver runs a repository's own script from a local checkout (`--peer_dir`;
the user clones it, nothing is downloaded) as `__main__`, with `sys.argv` set
to the row's setup. It changes nothing in their files: what it needs (a
placeholder for an import their code path never uses, a wrapper that copies
each of their logger's rows out as it is made) is put in place from outside,
and each such substitution is listed in the record. The record (`peer.json`)
holds the repository, its commit, torch's version, the device, the command,
the wall time, the optimizer steps counted by a global torch hook, the
curves and the row's quantities measured from them.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import runpy
import subprocess
import sys
import time
import types
from typing import Any, Sequence


class PeerError(ValueError):
  """Bad input to a driver (a checkout that is not the repository, a missing
  script): one line, exit 2."""


def checkout(peer_dir: str, repo: str, script: str) -> dict[str, str]:
  """The checkout's commit (git rev-parse HEAD) and the script's path; a
  PeerError naming --peer_dir when it is not a checkout of `repo`."""
  path = os.path.join(peer_dir, script)
  if not os.path.isfile(path):
    raise PeerError(f"--peer_dir={peer_dir}: no {script}; give a checkout of "
                    f"https://github.com/{repo}")
  try:
    commit = subprocess.run(["git", "-C", peer_dir, "rev-parse", "HEAD"],
                            check=True, capture_output=True,
                            text=True).stdout.strip()
    dirty = subprocess.run(["git", "-C", peer_dir, "status", "--porcelain",
                            "--untracked-files=no"], check=True,
                           capture_output=True, text=True).stdout.strip()
  except (OSError, subprocess.CalledProcessError):
    raise PeerError(f"--peer_dir={peer_dir}: not a git checkout; clone "
                    f"https://github.com/{repo} so the record can name its "
                    "commit") from None
  if dirty:
    raise PeerError(f"--peer_dir={peer_dir}: its tracked files are edited "
                    f"({dirty.splitlines()[0]} ...); the drivers run the "
                    "official code unedited: git checkout -- .")
  return {"repo": repo, "commit": commit, "script": script}


def parser(doc: str) -> argparse.ArgumentParser:
  """A driver's command line: `doc`'s first line, --peer_dir and --out."""
  p = argparse.ArgumentParser(description=doc.splitlines()[0])
  p.add_argument("--peer_dir", required=True, help="their checkout")
  p.add_argument("--out", required=True, help="a new folder for the run")
  return p


def new_folder(out: str) -> None:
  """Creates --out; a PeerError when it holds anything (a finished run is
  never written over)."""
  if os.path.exists(out) and os.listdir(out):
    raise PeerError(f"--out={out}: not empty; give a new folder")
  os.makedirs(out, exist_ok=True)


def placeholder_module(name: str, why: str) -> types.ModuleType:
  """A module for an import their code path does not use (so it need not be
  installed); any use of it raises, naming the module."""
  module = types.ModuleType(name)

  def _missing(attr):
    # AttributeError, so that hasattr() and inspect see a plain module
    raise AttributeError(f"{name}.{attr}: not installed, and the driver's "
                         f"placeholder stands in for it ({why})")
  module.__getattr__ = _missing  # type: ignore[attr-defined]
  return module


class StepClock:
  """Counts torch optimizer steps and their times with a global post-hook
  (no change to their code), and every `every` steps the parameters' L2 norm.

  A global forward pre-hook marks each interval between two steps in which a
  module ran without gradients (their evaluation), so the loop's rate
  (evaluations included) and the training steps' own rate (intervals without
  one) come apart: `timing`."""

  def __init__(self, every: int = 100):
    import torch  # pylint: disable=import-outside-toplevel
    self.every, self.steps, self.norms = every, 0, []
    self.start = time.perf_counter()
    self.times: list[float] = []    # perf_counter at the end of each step
    self.evaluated: list[bool] = []  # a no-grad forward since the step before
    self._eval_seen = False
    self._torch = torch
    from torch.optim import optimizer  # pylint: disable=import-outside-toplevel
    self._handle = optimizer.register_optimizer_step_post_hook(self._hook)
    self._forward = torch.nn.modules.module.register_module_forward_pre_hook(
        self._pre_forward)

  def _pre_forward(self, module, args):
    del module, args
    if not self._torch.is_grad_enabled():
      self._eval_seen = True

  def timing(self, warmup: int) -> dict[str, Any]:
    """Rates over the steps after the first `warmup` (compilation, caches):
    loop steps/s (evaluations included), train steps/s (one over the mean
    interval without an evaluation), the median interval."""
    t, ev = self.times, self.evaluated
    if len(t) < warmup + 2:
      return {}
    window = t[-1] - t[warmup]
    steps = len(t) - 1 - warmup
    train = [t[i] - t[i - 1] for i in range(warmup + 1, len(t)) if not ev[i]]
    evals = sum(ev[warmup + 1:])
    return {"warmup_steps": warmup, "timed_steps": steps, "window_s": window,
            "loop_steps_per_s": steps / window,
            "train_steps_per_s": (len(train) / sum(train)) if train else None,
            "median_step_s": sorted(train)[len(train) // 2] if train else None,
            "eval_intervals": evals}

  def _hook(self, optimizer, args, kwargs):
    del args, kwargs
    self.steps += 1
    self.times.append(time.perf_counter())
    self.evaluated.append(self._eval_seen)
    self._eval_seen = False
    if self.steps % self.every == 0:
      import torch  # pylint: disable=import-outside-toplevel
      with torch.no_grad():
        sq = sum(float(p.detach().double().square().sum())
                 for g in optimizer.param_groups for p in g["params"])
      self.norms.append([self.steps, sq ** 0.5])

  def close(self, warmup: int | None = None) -> dict[str, Any]:
    """The record's timing fields; `warmup` (default: a tenth of the steps,
    at most 100) steps are left out of `timing`."""
    self._handle.remove()
    self._forward.remove()
    seconds = time.perf_counter() - self.start
    if warmup is None:
      warmup = min(100, self.steps // 10)
    return {"optimizer_steps": self.steps, "seconds": seconds,
            "steps_per_s": self.steps / seconds if seconds else None,
            "timing": self.timing(warmup), "param_norm": self.norms}


def run_script(peer_dir: str, script: str, argv: Sequence[str], cwd: str
               ) -> dict[str, Any]:
  """Their script as `__main__` with `argv`, its folder first on sys.path and
  `cwd` as the working directory (where it writes its own files); returns its
  globals at the end."""
  peer_dir = os.path.abspath(peer_dir)
  old = (list(sys.argv), list(sys.path), os.getcwd())
  sys.argv = [os.path.join(peer_dir, script), *argv]
  sys.path.insert(0, peer_dir)
  os.chdir(cwd)
  try:
    return runpy.run_path(os.path.join(peer_dir, script), run_name="__main__")
  finally:
    sys.argv, sys.path[:] = old[0], old[1]
    os.chdir(old[2])


def first_at_or_above(steps: Sequence[int], values: Sequence[float],
                      threshold: float) -> int | None:
  """The first logged step whose value reaches `threshold` (None: never),
  as grokjax's t_gen on the same evaluation grid."""
  for s, v in zip(steps, values):
    if v >= threshold:
      return int(s)
  return None


def environment() -> dict[str, Any]:
  import torch  # pylint: disable=import-outside-toplevel
  return {"torch": torch.__version__, "threads": torch.get_num_threads(),
          "python": platform.python_version(), "machine": platform.machine(),
          "processor": platform.processor() or platform.machine(),
          "cpus": os.cpu_count(), "device": "cpu",
          "date": datetime.datetime.now(datetime.timezone.utc).isoformat(
              timespec="seconds")}


def write_record(out: str, record: dict[str, Any]) -> str:
  """peer.json in `out`, written whole (a temporary file, then a rename)."""
  path = os.path.join(out, "peer.json")
  tmp = f"{path}.tmp{os.getpid()}"
  with open(tmp, "w") as f:
    json.dump(record, f, indent=1)
  os.replace(tmp, path)
  return path


def main_with_errors(main) -> None:
  """main(), with a PeerError as one line and exit code 2."""
  try:
    main()
  except PeerError as e:
    print(f"{os.path.basename(sys.argv[0])}: error: {e}", file=sys.stderr)
    sys.exit(2)
