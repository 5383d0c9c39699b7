"""Measuring a run directory for a reproduction: the metric language (kinds, ``over``, ``relative_to``), the verdict's inputs, and STALE."""

from __future__ import annotations

import datetime
import gzip
import json
import math
import os
import re
from typing import Any, Mapping, Sequence

import numpy as np

from grokjax.analysis import grokking, predict
from grokjax.config import Config, ConfigError
from grokjax.io import rundir
from grokjax.layout import Layout
from grokjax.reproductions.spec import REDUCERS, TIME_KINDS, Metric, Reproduction

def history_from_metrics(path: str, group_size: int | None = None
                         ) -> dict[str, np.ndarray]:
  """The evaluation history in a metrics.jsonl (plain or .gz): a run that
  stopped early has no history.npz, but every evaluation it made is here.

  A group's lines hold its members' values in the order of the layout its
  start line gives (a log from before layouts: members numbered group by
  group, `group_size` each); a later line for the same (group, step) (a
  resumed run logs again) replaces the earlier one. Steps a group has not
  reached are NaN.
  """
  records: dict[tuple[int, int], dict] = {}
  layout = None
  for r in _metrics_lines(path):
    if r.get("event") in ("start", "resume"):
      group_size = r.get("group_size", group_size)
      if "layout" in r:
        layout = Layout.from_json(r["layout"])
    if "event" in r or "val_loss" not in r:
      continue
    records[(r["group"], r["step"])] = r
  if not records:
    raise ConfigError(f"{path}: no evaluation lines")
  steps = np.array(sorted({s for _, s in records}))
  keys = [k for k in next(iter(records.values()))
          if k not in ("group", "step")]
  size = group_size or len(next(iter(records.values()))[keys[0]])
  rows = ((lambda g, n: list(layout.groups[g].members[:n])) if layout else
          (lambda g, n: list(range(g * size, g * size + n))))
  num = (layout.num_members if layout else
         size * (1 + max(g for g, _ in records)))
  history = {"eval_step": steps}
  for k in keys:
    arr = np.full((num, len(steps)), np.nan)
    for (g, s), r in records.items():
      arr[rows(g, len(r[k])), np.searchsorted(steps, s)] = r[k]
    history[k] = arr
  return history

def _run_history(run: rundir.RunDir) -> dict[str, np.ndarray]:
  """history.npz once the run has finished (it is written at the end), else
  the history its metrics.jsonl has logged so far (a stopped run, a GPU
  machine's copy)."""
  if os.path.exists(run.file("history.npz")):
    return run.history()
  return history_from_metrics(run.file("metrics.jsonl"))

def run_progress(workdir: str) -> dict[str, Any]:
  """What a run directory holds: its stored config.json, summary rows, and how far it got."""
  run = rundir.RunDir(workdir)
  stored = run.read_config()
  config = Config.from_dict(stored["config"])
  complete = os.path.exists(run.file("history.npz"))  # written at the end
  history = _run_history(run)
  members = [{k: v for k, v in m.items() if k != "member"}
             for m in run.members()]
  diverged = np.full(len(members), -1)
  summary = grokking.summarize_config(history, members, diverged, config)
  seconds, trained = run_clock(run.file("metrics.jsonl"))
  last = max(int(history["eval_step"][-1]), trained)
  return {"stored": stored, "summary": summary,
          "steps_done": last, "steps": int(config.steps),
          # a run copied without history.npz (a GPU machine's metrics.jsonl)
          # is finished if it got to its last step
          "finished": complete or last >= int(config.steps),
          "seconds": seconds}

def run_clock(path: str) -> tuple[float | None, int]:
  """Training seconds (summed over the run's starts and resumes) and the last
  step trained, from metrics.jsonl's progress lines (plain or .gz)."""
  if not any(os.path.exists(p) for p in (path, path + ".gz")):
    return None, 0
  total, last, step = 0.0, 0.0, 0
  for r in _metrics_lines(path):
    if r.get("event") in ("start", "resume"):
      total, last = total + last, 0.0
    elif r.get("event") == "progress":
      last = float(r.get("seconds", last))
      step = max(step, int(r.get("step", 0)))
  return total + last, step

def _metrics_lines(path: str):
  """The parsed lines of metrics.jsonl, or of metrics.jsonl.gz beside it
  (how a GPU machine's run comes back); a line cut short by a kill is skipped."""
  if not os.path.exists(path) and os.path.exists(path + ".gz"):
    path += ".gz"
  opener = gzip.open if path.endswith(".gz") else open
  with opener(path, "rt") as f:
    for line in f:
      try:
        yield json.loads(line)
      except ValueError:
        continue

def _matches(row: Mapping[str, str], where: Mapping[str, Any]) -> bool:
  for column, want in where.items():
    if column not in row:
      raise ConfigError(f"where: no column {column!r} in members.csv "
                        f"(columns: {', '.join(row)})")
    have = row[column]
    try:
      if not math.isclose(float(have), float(want), rel_tol=1e-9):
        return False
    except ValueError:
      if str(have) != str(want):
        return False
  return True

def _json_value(workdir: str, metric: Metric) -> float:
  path = os.path.join(workdir, metric.file)
  if not os.path.exists(path):
    raise ConfigError(f"{path}: missing (the reproduction's analysis "
                      "writes it)")
  with open(path) as f:
    values: Any = [json.load(f)]
  try:
    for part in metric.key.split("."):
      if part == "*":
        values = [v for vs in values for v in vs]
      else:
        values = [v[int(part)] if isinstance(v, list) else v[part]
                  for v in values]
  except (KeyError, IndexError, ValueError, TypeError):
    raise ConfigError(f"metric {metric.name!r}: {path} has no "
                      f"{metric.key!r}") from None
  if len(values) == 1 and not isinstance(values[0], list) and \
      "*" not in metric.key:
    return _float(values[0])
  flat = np.array([_float(v) for v in values], np.float64)
  return float(REDUCERS[metric.reduce](flat)) if flat.size else float("nan")

def _npz_value(workdir: str, metric: Metric, summary: Sequence[Mapping]
               ) -> tuple[float, np.ndarray]:
  """The npz metric over the members matching `where`, and its per-member values."""
  path = os.path.join(workdir, metric.file)
  if not os.path.exists(path):
    raise ConfigError(f"{path}: missing (the reproduction's analysis "
                      "writes it)")
  try:
    with np.load(path) as z:
      if metric.key not in z.files:
        raise ConfigError(f"metric {metric.name!r}: no array {metric.key!r} "
                          f"in {path} (arrays: {', '.join(z.files)})")
      array = np.asarray(z[metric.key], np.float64)
      members = z["members"] if "members" in z.files else np.arange(
          len(array))
      step = next((z[k] for k in ("step", "eval_step", "record_step")
                   if k in z.files and len(z[k]) == array.shape[-1]), None)
  except (OSError, ValueError) as e:
    raise ConfigError(f"{path}: unreadable ({e})") from None
  rows = [summary[int(i)] for i in members]
  keep = np.array([_matches(r, metric.where) for r in rows], bool)
  if not keep.any():
    raise ConfigError(f"metric {metric.name!r}: no member of {path} matches "
                      f"{dict(metric.where)}")
  paired = _history_pairs(workdir, metric.over) if metric.over.startswith(
      "spearman:") else None
  values = np.array([
      _over(metric.over, *_after(metric.after, array[i], step, rows[i]),
            rows[i]) if paired is None else
      paired(int(members[i]), *_after(metric.after, array[i], step, rows[i]))
      for i in np.flatnonzero(keep)], np.float64)
  if metric.relative_to.startswith("first_below:"):
    below = _history_first_below(workdir, metric.relative_to)
    values = values / np.array([below(int(members[i]))
                                for i in np.flatnonzero(keep)])
  elif metric.relative_to:
    values = values / np.array([_finite(r, metric.relative_to)
                                for r, k in zip(rows, keep) if k])
  finite = values[~np.isnan(values)]
  v = float(REDUCERS[metric.reduce](finite)) if finite.size else float("nan")
  return v, values

def _history_first_below(workdir: str, relative_to: str):
  """member -> the first evaluation step where the run's history COLUMN is
  below X (``first_below:X:COLUMN``; NaN if never): a loss's time, to set a
  measure's loss-threshold time against (Nanda et al.'s 'the restricted loss
  falls before the test loss' compares losses with losses)."""
  _, threshold, column = relative_to.split(":", 2)
  history = _run_history(rundir.RunDir(workdir))
  if column not in history or "eval_step" not in history:
    raise ConfigError(f"relative_to {relative_to!r}: the run's history has no "
                      f"{column!r}")
  x, steps = np.asarray(history[column], np.float64), history["eval_step"]

  def first(member: int) -> float:
    hit = np.flatnonzero(x[member] < float(threshold))
    return float(steps[hit[0]]) if hit.size else float("nan")
  return first

def _history_pairs(workdir: str, over: str):
  """(member, x, step) -> Spearman of x with the run's history column at those steps."""
  column = over.partition(":")[2]
  history = _run_history(rundir.RunDir(workdir))
  if column not in history or "eval_step" not in history or \
      np.ndim(history[column]) != 2 or \
      np.shape(history[column])[1] != len(history["eval_step"]):
    raise ConfigError(f"over {over}: the run's history has no evaluation "
                      f"array {column!r}")
  evals = np.asarray(history["eval_step"])
  values = np.asarray(history[column], np.float64)

  def pair(member: int, x: np.ndarray, step: np.ndarray | None) -> float:
    _need_steps(f"over {over}", x, step)
    at = np.searchsorted(evals, step, side="left")  # first eval >= the step
    ok = at < len(evals)
    return predict.spearman(x[ok], values[member][at[ok]])
  return pair

def _finite(row: Mapping[str, str], column: str) -> float:
  if column not in row:
    raise ConfigError(f"no column {column!r} in the summary "
                      f"(columns: {', '.join(row)})")
  v = float(row[column])
  return v if math.isfinite(v) else float("nan")

def _need_steps(what: str, x: np.ndarray, step: np.ndarray | None) -> None:
  if step is None or len(step) != x.shape[-1]:
    raise ConfigError(f"{what}: the file has no step axis of length "
                      f"{x.shape[-1]}")

def _after(column: str, x: np.ndarray, step: np.ndarray | None,
           row: Mapping[str, str]) -> tuple[np.ndarray, np.ndarray | None]:
  """The member's saved steps at or after its summary `column` (all without one)."""
  if not column:
    return x, step
  _need_steps(f"after {column}", x, step)
  keep = step >= _finite(row, column)  # NaN (never): no step is kept
  return x[..., keep], step[keep]

def _over(over: str, x: np.ndarray, step: np.ndarray | None,
          row: Mapping[str, str]) -> float:
  """One member's row of an npz array reduced to a number (see the module doc)."""
  if x.ndim and x.shape[-1] == 0:
    return float("nan")  # nothing saved after `after`
  if not over:
    if x.ndim:
      raise ConfigError(f"an array of shape {x.shape} per member needs over")
    return float(x)
  name, _, arg = over.partition(":")
  if name in ("first_below", "first_above", "at", "step_of_max",
              "step_of_min"):
    _need_steps(f"over {over}", x, step)
  if name == "first_below" or name == "first_above":
    hit = x < float(arg) if name == "first_below" else x > float(arg)
    return float(step[np.argmax(hit)]) if hit.any() else math.inf
  if name == "at":
    later, _ = _after(arg, x, step, row)
    return float(later[0]) if later.size else float("nan")
  if name == "step_of_max":
    return float(step[np.nanargmax(x)])
  if name == "step_of_min":
    return float(step[np.nanargmin(x)])
  if name == "sum":
    return float(np.sum(x[..., :int(arg)]))
  return float({"last": lambda: x[-1], "first": lambda: x[0],
                "max": lambda: np.nanmax(x), "min": lambda: np.nanmin(x),
                "count": lambda: np.count_nonzero(x),
                "last_over_min": lambda: x[-1] / np.nanmin(x),
                "last_over_max": lambda: x[-1] / np.nanmax(x),
                "last_over_first": lambda: x[-1] / x[0]}[name]())

def _float(v: Any) -> float:
  return float("nan") if v is None else float(v)

def metric_value(metric: Metric, workdir: str, summary: Sequence[Mapping]
                 ) -> tuple[float, str]:
  """The metric's number and how the table shows it."""
  return metric_outcome(metric, workdir, summary)[:2]

def metric_outcome(metric: Metric, workdir: str, summary: Sequence[Mapping]
                   ) -> tuple[float, str, list[float] | None]:
  """The metric's number, how the table shows it, and its value for each
  member it is the median of (None for json and reached): what a row
  stores, each file read once."""
  if metric.kind == "npz":
    v, each = _npz_value(workdir, metric, summary)
    shown = fmt(v)
    if 1 < len(each) <= 16:
      shown += f" (each {', '.join(fmt(float(e)) for e in each)})"
    return v, shown, [float(e) for e in each]
  return (*_plain_value(metric, workdir, summary),
          metric_each(metric, summary))

def _plain_value(metric: Metric, workdir: str, summary: Sequence[Mapping]
                 ) -> tuple[float, str]:
  """metric_value for the json and summary kinds."""
  if metric.kind == "json":
    v = _json_value(workdir, metric)
    return v, fmt(v)
  rows = [r for r in summary if _matches(r, metric.where)]
  if not rows:
    raise ConfigError(f"metric {metric.name!r}: no member matches "
                      f"{dict(metric.where)}")
  if metric.kind in TIME_KINDS:
    times = np.array([float(r[metric.kind]) for r in rows])
    v = grokking.median_time(times)
    reached = int(np.isfinite(times).sum())
    shown = "never" if math.isinf(v) else fmt(v)
    return v, f"{shown} ({reached}/{len(rows)} reached)"
  if metric.kind == "reached":
    reached = sum(math.isfinite(float(r["t_gen"])) for r in rows)
    return reached / len(rows), f"{reached}/{len(rows)}"
  if metric.kind not in rows[0]:
    raise ConfigError(f"metric {metric.name!r}: no {metric.kind} in the "
                      f"summary (columns: {', '.join(rows[0])})")
  v = float(np.nanmedian([float(r[metric.kind]) for r in rows]))
  return v, fmt(v)

def metric_each(metric: Metric, summary: Sequence[Mapping]
                ) -> list[float] | None:
  """The metric's value for each member it is the median of (a time never
  reached: +inf), for the summary's kinds; None for json, npz (whose file
  metric_outcome reads) and reached."""
  if metric.kind in ("json", "npz", "reached"):
    return None
  rows = [r for r in summary if _matches(r, metric.where)]
  if not rows or metric.kind not in rows[0]:
    return None
  each = [float(r[metric.kind]) if r[metric.kind] not in ("", None)
          else math.nan for r in rows]
  if metric.kind in TIME_KINDS:
    each = [math.inf if math.isnan(v) else v for v in each]
  return each

def fmt(v: float) -> str:
  if v is None or (isinstance(v, float) and math.isnan(v)):
    return "n/a"
  if math.isinf(v):
    return "never"
  if abs(v) >= 100 and abs(v) < 1e7:
    return f"{v:.0f}"  # steps: 1012.5 (a median of two) shows as 1012
  if v == int(v) and abs(v) < 1e7:
    return str(int(v))
  return f"{v:.4g}"

def measure(spec: Reproduction, workdir: str, suite: str) -> dict[str, Any]:
  """The reproduction's outcome on a run directory (results.json's entry)."""
  progress = run_progress(workdir)
  stored = progress["stored"]
  metrics, judged = [], []
  for m in spec.metrics:
    try:
      value, shown, each = metric_outcome(m, workdir, progress["summary"])
    except ConfigError as e:
      if m.kind not in ("json", "npz"):
        raise
      # An analysis file without the key (a category the run lacks, the
      # smoke analysis's shorter output): n/a, and a banded metric misses.
      value, shown, each = float("nan"), (
          "n/a (not written by the smoke analysis)" if suite == "smoke"
          else f"n/a ({e})"), None
    in_band = m.judge(value) if suite != "smoke" else None
    if in_band is not None:
      judged.append(in_band)
    if suite == "smoke":
      each = None
    metrics.append({"name": m.name, "value": None if math.isnan(value)
                    else value, "shown": shown, "each": each,
                    "paper": m.paper,
                    "band": list(m.band) if m.band else None,
                    "band_source": m.band_source or None,
                    "in_band": in_band})
  if suite == "smoke":
    status = "RAN"
  else:
    status = "MATCH" if judged and all(judged) else (
        "MISS" if judged else "REPORTED")
  devices = stored.get("devices", {})
  return {"id": spec.id, "suite": suite, "status": status,
          "metrics": metrics, "steps_done": progress["steps_done"],
          "steps": progress["steps"], "finished": progress["finished"],
          "members": len(progress["summary"]),
          "train_seconds": progress["seconds"],
          "device": device_name(devices),
          "versions": stored.get("versions", {}),
          "created": stored.get("created"),
          "measured": datetime.datetime.now(datetime.timezone.utc).isoformat(
              timespec="seconds"),
          "command": spec.command(), "spec": spec.snapshot()}

def staleness(spec: Reproduction, entry: Mapping[str, Any]) -> str | None:
  """Why a measured row cannot stand as it is (None: it can): the spec's
  claim, paper text, metrics, bands or resolved flags changed since it was
  measured, or the run stopped before its last step. Such a row shows STALE
  (re-run it) and is never re-judged under the new spec."""
  if "spec" in entry:
    now, then = spec.snapshot(), entry["spec"]
    changed = [k for k in ("claim", "paper", "metrics", "flags")
               if now.get(k) != then.get(k)]
    if changed:
      return f"{', '.join(changed)} changed since the run"
  else:  # measured before snapshots were stored: what the entry has
    then = [(m["name"], m.get("band")) for m in entry["metrics"]]
    now = [(m.name, list(m.band) if m.band else None) for m in spec.metrics]
    if then != now:
      return "metrics or bands changed since the run"
    if entry.get("command") not in (None, spec.command()):
      return "the command changed since the run"
  if not entry.get("finished", True):
    return (f"stopped at {entry['steps_done']} of {entry['steps']} steps: "
            "re-run to the end")
  return None

def device_name(devices: Mapping[str, Any]) -> str:
  """'1 NVIDIA H200' / '2-core CPU' style name from config.json's devices."""
  names = devices.get("devices", [])
  backend = devices.get("backend", "?")
  if backend == "cpu":
    return "CPU"  # config.json does not record the core count
  kinds = sorted({re.sub(r"^\w+:\d+\s*", "", n) for n in names})
  return f"{len(names)} x {', '.join(kinds)}" if names else backend

# --- the peers' own code at the same setup ----------------------------------
