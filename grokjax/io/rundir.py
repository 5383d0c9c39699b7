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
import hashlib
import io
import json
import math
import os
import platform
import shutil
import socket
import sys
import zipfile
from importlib import metadata
from typing import Any, Iterable, Mapping

import jax
import numpy as np

from grokjax.config import Config, ConfigError, Grid
from grokjax.io import atomic
from grokjax.io.atomic import WriteError
from grokjax.layout import Group, Layout
from grokjax.members import Hypers, make_hypers
from grokjax.tasks import LinearTask, Task

# Everything a sweep writes into its run directory (what --overwrite removes).
RUN_FILES = ("config.json", "members.csv", "history.npz", "metrics.jsonl",
             "summary.csv", "plots", "checkpoints", "checkpoints_corrupt",
             "records", "snapshots", "tensorboard")

PACKAGES = ("jax", "jaxlib", "flax", "optax", "chex", "numpy",
            "orbax-checkpoint", "absl-py", "matplotlib")


def versions() -> dict[str, str]:
  """Python and package versions (random streams change between JAX versions)."""
  out = {"python": sys.version.split()[0], "platform": platform.platform()}
  for name in PACKAGES:
    try:
      out[name] = metadata.version(name)
    except metadata.PackageNotFoundError:
      out[name] = "not installed"
  return out


def devices() -> dict[str, Any]:
  return {"backend": jax.default_backend(),
          "process_count": jax.process_count(),
          "devices": [f"{d.platform}:{d.id} {d.device_kind}"
                      for d in jax.devices()]}


def _jsonable(v: Any) -> Any:
  if isinstance(v, (np.floating, float)):
    return None if not math.isfinite(float(v)) else float(v)
  if isinstance(v, np.integer):
    return int(v)
  if isinstance(v, np.bool_):
    return bool(v)
  if isinstance(v, (list, tuple, np.ndarray)):
    return [_jsonable(x) for x in v]
  return v


def write_config(workdir: str, config_dict: Mapping[str, Any],
                 grid_axes: Mapping[str, tuple], extra: Mapping[str, Any]) -> None:
  payload = {"config": _jsonable(dict(config_dict)),
             "grid": {k: list(v) for k, v in grid_axes.items()},
             "versions": versions(), "devices": devices(),
             "created": datetime.datetime.now(datetime.timezone.utc).isoformat(),
             **extra}
  atomic.write_bytes(os.path.join(workdir, "config.json"),
                json.dumps(payload, indent=2).encode())


def read_config(workdir: str) -> dict[str, Any]:
  with open(os.path.join(workdir, "config.json")) as f:
    return json.load(f)


def _csv_cell(v: Any) -> Any:
  if isinstance(v, (float, np.floating)):
    if not math.isfinite(float(v)):
      return ""
    return int(v) if float(v).is_integer() and abs(v) < 2**53 else repr(float(v))
  return v


def csv_float(cell: str) -> float:
  """A number written by `write_csv`; the empty cell (NaN, "never") is NaN."""
  return float(cell) if cell != "" else math.nan


def write_csv(path: str, rows: Iterable[Mapping[str, Any]]) -> None:
  rows = list(rows)
  buf = io.StringIO()
  writer = csv.DictWriter(buf, fieldnames=list(rows[0]), lineterminator="\n")
  writer.writeheader()
  for row in rows:
    writer.writerow({k: _csv_cell(v) for k, v in row.items()})
  atomic.write_bytes(path, buf.getvalue().encode())


def read_csv(path: str) -> list[dict[str, str]]:
  with open(path, newline="") as f:
    return list(csv.DictReader(f))


def write_npz(path: str, arrays: Mapping[str, np.ndarray],
              compressed: bool = False) -> bytes:
  """An .npz of `arrays`, written atomically (readers never see half a file); returns its bytes."""
  buf = io.BytesIO()
  (np.savez_compressed if compressed else np.savez)(buf, **arrays)
  atomic.write_bytes(path, buf.getvalue())
  return buf.getvalue()


def write_history(workdir: str, history: Mapping[str, np.ndarray]) -> None:
  write_npz(os.path.join(workdir, "history.npz"), history, compressed=True)


def read_history(workdir: str) -> dict[str, np.ndarray]:
  with np.load(os.path.join(workdir, "history.npz")) as f:
    return {k: f[k] for k in f.files}


def _parses(line: str) -> bool:
  try:
    json.loads(line)
    return True
  except ValueError:
    return False


class MetricsWriter:
  """Appends one JSON object per line to metrics.jsonl (`tail -f` friendly).

  A resumed run passes `keep_below=(group, step, finished)`, its checkpoint:
  lines logged after that checkpoint (which the resumed run logs again) are
  dropped first, so each eval appears once.
  """

  def __init__(self, workdir: str, keep_below: tuple | None = None):
    path = os.path.join(workdir, "metrics.jsonl")
    if keep_below is not None and os.path.exists(path):
      with open(path) as f:
        lines = [l for l in f.read().splitlines() if l.strip()]
      kept = [l for l in lines if _parses(l) and
              _logged_before(json.loads(l), *keep_below)]  # no torn line
      atomic.write_bytes(path, "".join(l + "\n" for l in kept).encode())
    try:
      self._f = open(path, "a")
    except OSError as e:
      raise WriteError(f"cannot write {path} ({e.strerror})") from e

  def write(self, record: Mapping[str, Any]) -> None:
    try:
      self._f.write(json.dumps({k: _jsonable(v) for k, v in record.items()})
                    + "\n")
      self._f.flush()
    except OSError as e:
      raise WriteError(f"cannot write {self._f.name} ({e.strerror})") from e

  def close(self) -> None:
    self._f.close()


def _logged_before(record: Mapping[str, Any], group: int, step: int,
                   finished: bool) -> bool:
  """Whether a metrics line belongs to the progress a checkpoint has saved."""
  if "group" not in record:  # start/resume events
    return True
  g, s = record["group"], record.get("step", 0)
  if g != group:
    return g < group
  if finished:
    return True
  # Evals at s < step were in saved chunks; progress lines at s <= step.
  return s <= step if "event" in record else s < step


def _aligned(parts: list[dict[str, np.ndarray]], groups: list[Group],
             keys: list[str], step_key: str, num_members: int
             ) -> dict[str, np.ndarray]:
  """Every member's rows of `keys` on the union of the parts' `step_key`
  steps (parts[i] holds the rows of groups[i]); NaN where a part has none."""
  steps = np.unique(np.concatenate([p[step_key] for p in parts]))
  out = {step_key: steps.astype(np.int64)}
  for key in keys:
    merged = np.full((num_members, len(steps)), np.nan, np.float32)
    for p, group in zip(parts, groups):
      rows = list(group.members)
      merged[np.ix_(rows, np.searchsorted(steps, p[step_key]))] = \
          p[key][:len(rows)]
    out[key] = merged
  return out


def merge_groups(parts: list[dict[str, np.ndarray]], groups: list[Group],
                 num_members: int) -> dict[str, np.ndarray]:
  """The groups' histories (parts[i]: the rows of groups[i]) as one history
  in member order; NaN where a group stopped early or has not trained yet."""
  step_keys = [k for k in parts[0] if k.startswith("step_")]
  eval_keys = [k for k in parts[0] if k not in step_keys + ["eval_step",
                                                           "record_step"]]
  return {**_aligned(parts, groups, step_keys, "record_step", num_members),
          **_aligned(parts, groups, eval_keys, "eval_step", num_members)}


def group_history(chunks: list[dict], final: dict) -> dict[str, np.ndarray]:
  """One group's history: its chunks' records, then the eval after the last update."""
  out = {}
  keys = chunks[0] if chunks else [k for k in final if k != "diverged_step"]
  for key in keys:
    parts = [c[key] for c in chunks]
    if key in final:
      parts.append(final[key])
    out[key] = np.concatenate(parts, axis=-1)
  return out


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


class RunDir:
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

  # --- per-chunk records -------------------------------------------------------

  @property
  def records(self) -> str:
    return self.file("records")

  def record_path(self, group: int, start: int | str) -> str:
    name = f"{start:09d}" if isinstance(start, int) else start
    return os.path.join(self.records, f"g{group:04d}_s{name}.npz")

  def manifest_path(self, group: int) -> str:
    return os.path.join(self.records, f"g{group:04d}.manifest.jsonl")

  def write_records(self, group: int, start: int | str,
                    arrays: Mapping[str, np.ndarray],
                    end: int | None = None) -> None:
    """One chunk's records of steps [start, end) (or a group's `final` eval), written atomically.

    Then one line in the group's manifest (`records/g<group>.manifest.jsonl`:
    file, steps, SHA-256), so a lost or damaged file is noticed, never read
    as a shorter history.
    """
    os.makedirs(self.records, exist_ok=True)
    path = self.record_path(group, start)
    data = write_npz(path, arrays)
    entry = {"file": os.path.basename(path), "start": start, "end": end,
             "sha256": hashlib.sha256(data).hexdigest()}
    manifest = self.manifest_path(group)
    size = os.path.getsize(manifest) if os.path.exists(manifest) else 0
    try:
      with open(manifest, "a") as f:
        f.write(json.dumps(entry) + "\n")
        f.flush()
        os.fsync(f.fileno())
    except OSError as e:  # no torn line: back to the last whole entry
      with contextlib.suppress(OSError):
        os.truncate(manifest, size)
      raise WriteError(f"cannot write {manifest} ({e.strerror})") from e

  def _manifest(self, group: int) -> dict[str, dict] | None:
    """file -> its latest manifest entry; None for a run written before manifests."""
    path = self.manifest_path(group)
    if not os.path.exists(path):
      return None
    entries = {}
    with open(path) as f:
      for line in f:
        try:
          entry = json.loads(line)
        except ValueError:  # a line cut short by a crash: its chunk is redone
          continue
        entries[entry["file"]] = entry
    return entries

  def _damaged(self, name: str, why: str, entry: dict | None,
               group: int) -> ConfigError:
    steps = (f" (steps {entry['start']}-{entry['end'] - 1} of group {group})"
             if entry and isinstance(entry.get("end"), int) else "")
    return ConfigError(
        f"--workdir={self.path}: records/{name} is {why}{steps}; the "
        "history cannot be assembled without it: restore the file, or pass "
        "--overwrite to retrain the run")

  def _load_record(self, path: str, entry: dict | None,
                   group: int) -> dict[str, np.ndarray]:
    name = os.path.basename(path)
    try:
      with open(path, "rb") as f:
        data = f.read()
    except FileNotFoundError:
      raise self._damaged(name, "missing", entry, group) from None
    if entry is not None and hashlib.sha256(data).hexdigest() != entry[
        "sha256"]:
      raise self._damaged(name, "corrupt (its checksum differs from the "
                          "manifest's)", entry, group)
    try:
      with np.load(io.BytesIO(data)) as f:
        return {k: f[k] for k in f.files}
    except (ValueError, OSError, zipfile.BadZipFile, EOFError) as e:
      raise self._damaged(name, f"unreadable ({type(e).__name__})", entry,
                          group) from None

  def record_groups(self) -> list[int]:
    """The groups that have written records so far, in order."""
    pattern = os.path.join(self.records, "g*_s*.npz")
    return sorted({int(os.path.basename(path)[1:5])
                   for path in glob.glob(pattern)})

  def read_records(self, group: int, below: int,
                   until: int | None = None) -> list[dict[str, np.ndarray]]:
    """The chunk records of a group whose chunk starts below `below`, in order.

    With a manifest, the chunks must follow each other from step 0 (and end
    at `until` when given: the checkpoint's or the final step), every file
    present and unchanged; otherwise ConfigError names the file.
    """
    manifest = self._manifest(group)
    if manifest is None:  # a run directory from before manifests
      paths = [p for p in sorted(glob.glob(self.record_path(group, "*")))
               if (t := os.path.basename(p)[len(f"g{group:04d}_s"):-4]
                   ).isdigit() and int(t) < below]
      return [self._load_record(p, None, group) for p in paths]
    chunks = sorted((e for e in manifest.values()
                     if isinstance(e["start"], int) and e["start"] < below),
                    key=lambda e: e["start"])
    step = 0
    for entry in chunks:
      if entry["start"] != step:
        missing = {"start": step, "end": entry["start"]}
        raise self._damaged(os.path.basename(self.record_path(group, step)),
                            "missing from the manifest", missing, group)
      step = entry["end"]
    if until is not None and step != until:
      raise self._damaged(os.path.basename(self.record_path(group, step)),
                          "missing", {"start": step, "end": until}, group)
    return [self._load_record(os.path.join(self.records, e["file"]), e, group)
            for e in chunks]

  def read_final(self, group: int) -> dict[str, np.ndarray]:
    """The eval after a group's last update (FileNotFoundError while it trains)."""
    path = self.record_path(group, "final")
    manifest = self._manifest(group) or {}
    entry = manifest.get(os.path.basename(path))
    if entry is None and not os.path.exists(path):
      raise FileNotFoundError(path)
    return self._load_record(path, entry, group)


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


__all__ = ["RUN_FILES", "RunDir", "StoredRun", "MetricsWriter", "WriteError",
           "csv_float",
           "read_config", "read_csv", "read_history", "versions", "devices",
           "write_config", "write_csv", "write_history", "write_npz",
           "group_history", "merge_groups"]
