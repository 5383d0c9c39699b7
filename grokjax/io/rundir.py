"""The run directory: one object, `RunDir`, owns every path a sweep writes.

Layout of ``<workdir>/``:

- ``config.json``: every flag, the grid, package versions, devices;
- ``members.csv``: one row per member with its swept values;
- ``records/g<group>_s<start>.npz``: each chunk's per-step and eval records as
  it finishes, and ``g<group>_sfinal.npz`` the eval after the last update;
- ``history.npz``: the records of every group, assembled at the end;
- ``metrics.jsonl``: one JSON line per eval and per chunk (`tail -f` it);
- ``summary.csv``, ``plots/``: grokking times and figures;
- ``checkpoints/`` (``checkpoints_corrupt/``): orbax resume checkpoints;
- ``snapshots/g<group>/<step>/``: parameter snapshots for the progress measures;
- ``analysis/``: what `experiments/analyze.py` writes (never cleared by a run).

Every file is written atomically (temporary file + rename) so an interrupted
write never leaves a half file where a finished result was.
`RunDir(workdir).rebuild()` recovers the config, task, grid and members'
values of a stored run without the original flags.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import datetime
import fcntl
import glob
import os
import shutil
import socket
import zipfile
from typing import Any, Mapping

import numpy as np

from grokjax.config import Config, ConfigError
from grokjax.grid import Grid
from grokjax.io.atomic import WriteError
from grokjax.layout import Layout
from grokjax.members import Hypers, make_hypers
from grokjax.tasks import LinearTask, Task
from grokjax.io.formats import (
    PACKAGES, MetricsWriter, csv_float, devices, group_history, merge_groups,
    read_config, read_csv, read_history, versions, write_config, write_csv,
    write_history, write_npz)
from grokjax.io.records import ChunkRecords

# Everything a sweep writes into its run directory (what --overwrite removes).
RUN_FILES = ("config.json", "members.csv", "history.npz", "metrics.jsonl",
             "summary.csv", "plots", "checkpoints", "checkpoints_corrupt",
             "records", "snapshots", "tensorboard")


@dataclasses.dataclass(frozen=True)
class StoredRun:
  """What a run directory's config.json rebuilds: no flags needed.

  hypers: every member's values as host arrays [E]; max_n_train: the largest
  training set (the split arrays' size).
  """
  config: Config
  task: Task | LinearTask
  grid: Grid
  hypers: Hypers
  max_n_train: int

  @property
  def num_members(self) -> int:
    return len(self.hypers.seed)

  @classmethod
  def from_config(cls, config: Config) -> "StoredRun":
    task = config.build_task()
    grid = Grid.from_config(config)
    hypers = make_hypers(grid, task, config.train_size)
    return cls(config, task, grid, hypers, int(hypers.n_train.max()))

class RunDir(ChunkRecords):
  """Every path of one run directory, and what reads or writes them."""

  def __init__(self, workdir: str):
    self.path = workdir

  def __repr__(self) -> str:
    return f"RunDir({self.path!r})"

  def file(self, name: str) -> str:
    return os.path.join(self.path, name)

  # --- the run's description ---------------------------------------------------

  def has_run(self) -> bool:
    """Whether a run has started here (its config.json exists)."""
    return os.path.exists(self.file("config.json"))

  def read_config(self) -> dict[str, Any]:
    """config.json as stored (flags, grid, versions, devices, ...)."""
    return read_config(self.path)

  def config(self, where: str | None = None) -> Config:
    """The stored run's Config; ConfigError (one line, starting with `where`,
    default --workdir=<path>) if there is none or it is unreadable. The fix
    is the caller's to add: it depends on the tool."""
    where = where or f"--workdir={self.path}"
    if not self.has_run():
      raise ConfigError(f"{where}: no run there (config.json is missing)")
    try:
      return Config.from_dict(self.read_config()["config"])
    except (ValueError, KeyError, TypeError, OSError) as e:
      raise ConfigError(f"{where}: config.json is unreadable ({e})") from None

  def rebuild(self) -> StoredRun:
    """Config, task, grid and members' values of the stored run."""
    return StoredRun.from_config(self.config())

  def write_config(self, config: Config, grid: Grid,
                   extra: Mapping[str, Any]) -> None:
    write_config(self.path, config.to_dict(), grid.axes, extra)

  def write_members(self, members: list[dict]) -> None:
    write_csv(self.file("members.csv"),
              [{"member": i, **m} for i, m in enumerate(members)])

  def members(self) -> list[dict[str, str]]:
    return self._table("members.csv", "re-run the sweep with the same "
                       "command to rewrite it")

  def run_files(self) -> list[str]:
    """The RUN_FILES present here."""
    return [n for n in RUN_FILES if os.path.exists(self.file(n))]

  @contextlib.contextmanager
  def lock(self):
    """Holds ``<workdir>/lock`` while the block runs: one run per workdir.

    An exclusive `flock` on the file, which the system releases when the
    owner exits however it exits (no stale locks after a SIGKILL); the file
    names the owner's host and pid for the message a second run gets. On a
    shared filesystem the lock spans hosts where it supports flock (NFSv4
    does); a multi-host run takes it on process 0. A directory the lock
    created is removed again if the run fails before writing anything.
    """
    created = not os.path.isdir(self.path)
    try:
      os.makedirs(self.path, exist_ok=True)
      fd = os.open(self.file("lock"), os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as e:
      raise ConfigError(f"--workdir={self.path}: cannot be used as a run "
                        f"directory ({e.strerror}); give a writable folder") \
          from None
    try:
      fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
      owner = os.read(fd, 4096).decode(errors="replace").strip()
      os.close(fd)
      raise ConfigError(f"--workdir={self.path}: another run owns it "
                        f"({owner or 'owner unknown'}); wait for it to end, "
                        "or use another --workdir") from None
    try:
      os.ftruncate(fd, 0)
      os.write(fd, (f"host {socket.gethostname()} pid {os.getpid()} since "
                    f"{datetime.datetime.now().isoformat(timespec='seconds')}"
                    ).encode())
      yield self
    except BaseException:
      # A run refused before it wrote anything leaves no directory behind.
      if created and os.listdir(self.path) == ["lock"]:
        os.remove(self.file("lock"))
        os.rmdir(self.path)
      raise
    finally:
      fcntl.flock(fd, fcntl.LOCK_UN)
      os.close(fd)

  def clear(self) -> None:
    """Removes what a run writes here (RUN_FILES, snapshots included) and nothing else."""
    for name in RUN_FILES:
      path = self.file(name)
      if os.path.isdir(path):
        shutil.rmtree(path)
      elif os.path.exists(path):
        os.remove(path)

  # --- results -----------------------------------------------------------------

  def write_history(self, history: Mapping[str, np.ndarray]) -> None:
    """history.npz; never replaces one that holds more steps (ConfigError)."""
    if os.path.exists(self.file("history.npz")):
      old = self.history()
      for key in ("record_step", "eval_step"):
        if key in old and len(old[key]) > len(history.get(key, ())):
          raise ConfigError(
              f"--workdir={self.path}: history.npz holds {len(old[key])} "
              f"{key}s and this run {len(history.get(key, ()))}; it is left "
              "as it is: pass --overwrite to retrain the run")
    write_history(self.path, history)

  def history(self) -> dict[str, np.ndarray]:
    """history.npz; when it is damaged (a truncated copy, a full disk), the
    same history rebuilt from the per-chunk records (`history_so_far`); a
    ConfigError (one line) when neither can be read. Every tool reads a run's
    history through this or `history_so_far`."""
    try:
      return read_history(self.path)
    except (zipfile.BadZipFile, ValueError, EOFError, OSError, KeyError) as e:
      if self.record_groups():
        return self.history_so_far()[0]
      if isinstance(e, FileNotFoundError):
        raise ConfigError(f"--workdir={self.path}: no history.npz (the run "
                          "has not finished); finish it with the same "
                          "command") from None
      raise ConfigError(f"--workdir={self.path}: history.npz is damaged ("
                        f"{type(e).__name__}: {e}) and there are no per-chunk "
                        "records to rebuild it from; re-run the sweep with "
                        "--overwrite") from None

  def write_summary(self, summary: list[dict]) -> None:
    write_csv(self.file("summary.csv"), summary)

  def summary(self) -> list[dict[str, str]]:
    return self._table("summary.csv", "the run has not finished: finish it "
                       "with the same command")

  def _table(self, name: str, fix: str) -> list[dict[str, str]]:
    """A CSV of the run; ConfigError (one line) when missing or unreadable."""
    try:
      return read_csv(self.file(name))
    except FileNotFoundError:
      raise ConfigError(f"--workdir={self.path}: no {name}; {fix}") from None
    except (OSError, UnicodeDecodeError, csv.Error) as e:
      raise ConfigError(f"--workdir={self.path}: {name} is unreadable ({e})"
                        f"; {fix}") from None

  @property
  def checkpoints(self) -> str:
    return os.path.abspath(self.file("checkpoints"))

  def snapshot_group(self, group: int) -> str:
    """The orbax directory of one member group's parameter snapshots."""
    return os.path.abspath(os.path.join(self.path, "snapshots",
                                        f"g{group:04d}"))

  def snapshot_groups(self) -> list[str]:
    return sorted(glob.glob(os.path.join(self.path, "snapshots", "g*")))

  def layout(self, rows: dict[int, int] | None = None) -> Layout:
    """The groups the run trains (config.json's ``layout``).

    A run directory from before layouts has consecutive groups of one size:
    `rows` (group -> rows its records hold) gives it; without them it is read
    from the records. ConfigError (one line) when config.json is unreadable.
    """
    try:
      stored = self.read_config()
    except (OSError, ValueError) as e:
      raise ConfigError(f"--workdir={self.path}: config.json is unreadable "
                        f"({e})") from None
    if "layout" in stored:
      return Layout.from_json(stored["layout"])
    E = int(stored.get("num_members", 0)) or len(self.members())
    if rows is None:
      rows = {}
      for g in self.record_groups()[:1]:
        first = (self.read_records(g, np.iinfo(np.int64).max) or
                 [self.read_final(g)])[0]
        rows[g] = next(v.shape[0] for k, v in first.items()
                       if k not in ("record_step", "eval_step") and v.ndim)
    size = next(iter(rows.values()), E)
    return Layout.uniform(E, size, int(stored.get("max_n_train", 0)))

  def history_so_far(self) -> tuple[dict[str, np.ndarray], np.ndarray, bool]:
    """(history, diverged_step [E], finished), of a finished or a still running run.

    Built from the per-chunk records under `records/` (what history.npz is
    made of), so a running or preempted run can be analyzed without
    retraining; a finished run without records falls back to history.npz and
    summary.csv. A group still training has no final evaluation yet: its
    members' ``diverged_step`` is -1 (unknown) and its curves stop at the last
    chunk written; a group that has not started has NaN curves.
    """
    E = len(self.members())
    groups = self.record_groups()
    if not groups:
      if not os.path.exists(self.file("history.npz")):
        raise ConfigError(f"--workdir={self.path}: no records and no "
                          "history.npz yet; wait for the first chunk")
      diverged = np.array([int(csv_float(r["diverged_step"]))
                           if r["diverged_step"] else -1
                           for r in self.summary()])
      return self.history(), diverged, True
    parts, finals, rows = {}, {}, {}
    for g in groups:
      try:
        final = finals[g] = self.read_final(g)
      except FileNotFoundError:
        final = {}
      chunks = self.read_records(
          g, np.iinfo(np.int64).max,
          until=int(final["eval_step"][0]) if final else None)
      if not chunks and not final:
        continue
      parts[g] = group_history(chunks, final)
      rows[g] = next(v.shape[0] for v in parts[g].values() if v.ndim == 2)
    layout = self.layout(rows)
    diverged = np.full(E, -1, np.int64)
    for g, final in finals.items():
      members = list(layout.groups[g].members)
      diverged[members] = final["diverged_step"][:len(members)]
    finished = len(finals) == layout.num_groups
    return (merge_groups(list(parts.values()),
                         [layout.groups[g] for g in parts], E),
            diverged, finished)


__all__ = ["RUN_FILES", "PACKAGES", "RunDir", "StoredRun", "MetricsWriter", "WriteError",
           "csv_float",
           "read_config", "read_csv", "read_history", "versions", "devices",
           "write_config", "write_csv", "write_history", "write_npz",
           "group_history", "merge_groups"]
