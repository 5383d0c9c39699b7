"""Per-chunk records of a run directory: `records/g<group>_s<start>.npz`,
written atomically as each chunk finishes, and each group's manifest
(`g<group>.manifest.jsonl`: file, steps, SHA-256), so that a lost or
damaged file is named, never read as a shorter history. `ChunkRecords` is
the part of `RunDir` that reads and writes them."""

from __future__ import annotations

import contextlib
import glob
import hashlib
import io
import json
import os
import zipfile
from typing import Mapping

import numpy as np

from grokjax.config import ConfigError
from grokjax.io.atomic import WriteError
from grokjax.io.formats import write_npz


class ChunkRecords:
  """The records of the run directory at `self.path` (a `RunDir`)."""


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
