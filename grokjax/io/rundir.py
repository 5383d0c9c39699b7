"""The run directory: config.json, members.csv, history.npz, metrics.jsonl, summary.csv.

Every file is written atomically (temporary file + rename) so an interrupted
write never leaves a half file where a finished result was.
"""

from __future__ import annotations

import csv
import datetime
import io
import json
import math
import os
import platform
import shutil
import sys
from importlib import metadata
from typing import Any, Iterable, Mapping

import jax
import numpy as np

# Everything a sweep writes into its run directory.
RUN_FILES = ("config.json", "members.csv", "history.npz", "metrics.jsonl",
             "summary.csv", "plots", "checkpoints", "checkpoints_corrupt",
             "records")

PACKAGES = ("jax", "jaxlib", "flax", "optax", "chex", "numpy",
            "orbax-checkpoint", "absl-py", "matplotlib")


def clear_run(workdir: str) -> None:
  """Removes what a run writes in `workdir` (RUN_FILES) and nothing else."""
  for name in RUN_FILES:
    path = os.path.join(workdir, name)
    if os.path.isdir(path):
      shutil.rmtree(path)
    elif os.path.exists(path):
      os.remove(path)


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


def _atomic_write(path: str, data: bytes) -> None:
  tmp = f"{path}.tmp{os.getpid()}"
  with open(tmp, "wb") as f:
    f.write(data)
    f.flush()
    os.fsync(f.fileno())
  os.replace(tmp, path)


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
  _atomic_write(os.path.join(workdir, "config.json"),
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
  _atomic_write(path, buf.getvalue().encode())


def read_csv(path: str) -> list[dict[str, str]]:
  with open(path, newline="") as f:
    return list(csv.DictReader(f))


def write_npz(path: str, arrays: Mapping[str, np.ndarray],
              compressed: bool = False) -> None:
  """An .npz of `arrays`, written atomically (readers never see half a file)."""
  buf = io.BytesIO()
  (np.savez_compressed if compressed else np.savez)(buf, **arrays)
  _atomic_write(path, buf.getvalue())


def write_history(workdir: str, history: Mapping[str, np.ndarray]) -> None:
  write_npz(os.path.join(workdir, "history.npz"), history, compressed=True)


def read_history(workdir: str) -> dict[str, np.ndarray]:
  with np.load(os.path.join(workdir, "history.npz")) as f:
    return {k: f[k] for k in f.files}


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
      kept = [l for l in lines if _logged_before(json.loads(l), *keep_below)]
      _atomic_write(path, "".join(l + "\n" for l in kept).encode())
    self._f = open(path, "a")

  def write(self, record: Mapping[str, Any]) -> None:
    self._f.write(json.dumps({k: _jsonable(v) for k, v in record.items()}) + "\n")
    self._f.flush()

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
