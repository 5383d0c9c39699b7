"""The files of a run directory, one format each: config.json (with the
package versions and devices), CSV tables, npz arrays and the history,
metrics.jsonl (`MetricsWriter`), and histories merged over member groups.
`RunDir` (grokjax.io.rundir) owns where they live."""

from __future__ import annotations

import csv
import datetime
import io
import json
import math
import os
import platform
import sys
from importlib import metadata
from typing import Any, Iterable, Mapping

import jax
import numpy as np

from grokjax.io import atomic
from grokjax.io.atomic import WriteError
from grokjax.layout import Group

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
