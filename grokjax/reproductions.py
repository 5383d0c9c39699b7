"""Reproductions as data: what a paper reports, how to re-run it, and what counts as a match.

A reproduction is one JSON file beside its flagfile in `experiments/flags/`
(`nanda2023_fractions.json` next to `nanda2023.flags`), read by
`experiments/reproduce.py`, which runs it and writes `results.json` and
`results.md`; the README's results table is generated from those. Fields:

- ``title``: the row's name; ``paper``: what the paper reports (text);
  ``notes``: caveats that hold for every run (text); ``differences``: for a
  like-for-like row, each remaining difference from the official code (a list
  of text; the table renders it).
- ``flagfile`` (beside the JSON) and ``flags``: the sweep's command line.
- ``suite``: ``"cpu"`` (fits a 2-core CPU) or ``"gpu"``; ``cost``: the expected
  member-steps and time, written down once measured.
- ``claim``: whose claim the row judges: ``"paper"`` (a paper's) or
  ``"recipe"`` (ours: a recipe of this library, such as the quickstart). The
  headline counts paper claims only; recipes get a table of their own.
- ``smoke``: flags appended for the smoke suite (a toy size that checks the
  pipeline, not the science; bands are not judged there).
- ``analysis``: commands run after the sweep, each a list of arguments whose
  first is a script in `experiments/`; ``{workdir}`` is replaced.
  ``smoke_analysis`` replaces them in the smoke suite (a shorter window, say);
  a JSON metric whose file the smoke analysis does not write shows n/a there.
- ``metrics``: each ``{"name", "kind", "where", "band", "paper", ...}``:

  ======================  ====================================================
  kind                    value over the members matching ``where``
  ======================  ====================================================
  t_mem, t_gen, delay     median over members, one that never got there
                          counting as +inf (`analysis.median_time`); the run's
                          own thresholds
  reached                 fraction of members with a finite t_gen
  final_<metric>          median of the last evaluation (final_val_acc, ...)
  json                    ``file`` (in the run directory) at ``key`` (dotted;
                          ``*`` maps over a list), reduced by ``reduce``
                          (median / sum / min / max) when it is a list
  npz                     ``file``'s array ``key`` (per member first, as
                          `analysis/measures.npz`'s [E, ...] arrays), each
                          member's row reduced to one number by ``over``
                          (below), optionally divided by that member's
                          summary column ``relative_to`` (t_gen, say; or
                          ``first_below:X:COLUMN``: the first evaluation
                          step where the run's history COLUMN, val_loss
                          say, falls below X), then
                          ``reduce`` over the members
  ======================  ====================================================

  ``over`` (npz) reduces a member's last axis (saved steps, frequencies or
  components): ``last``, ``first``, ``max``, ``min``, ``count`` (non-zero
  entries), ``sum:K`` (of the first K), ``last_over_min`` (the last value over
  the lowest: > 1 when it rose again), ``last_over_max`` (< 1 when it fell
  from a peak), ``last_over_first``, ``step_of_max`` / ``step_of_min`` (the
  file's ``step`` where the maximum / minimum is), ``first_below:X`` /
  ``first_above:X`` (the ``step`` of the first saved step past X; +inf if
  never), ``at:COLUMN`` (the value at the first saved step at or after
  the member's summary COLUMN, NaN if that is never) and
  ``spearman:COLUMN`` (the Spearman rank correlation, over the saved steps,
  with the member's history COLUMN, an evaluation array such as
  ``val_loss``, read at the first evaluation at or after each saved step:
  +1 when the measure rises and falls with it, as Gu et al.'s "MED tracks
  the test loss"; NaN with fewer than 3 pairs). ``after: COLUMN``
  first keeps only the saved steps at or after the member's COLUMN (t_gen,
  say; none for a member that never got there, so NaN). Without ``over``
  the array is [E]. The step axis is the file's ``step`` array, or for the
  run's own ``history.npz`` its ``eval_step`` (evaluation arrays such as
  ``param_norm``) or ``record_step`` (per-step arrays), whichever matches.

  ``band`` is ``[low, high]`` (either may be null: unbounded, not both;
  finite, low <= high): a metric inside its band matches. A metric without a
  band is reported, not judged. A band must be able to fail: one that covers
  every value of its kind (`DOMAINS`: accuracies and ``reached`` [0, 1],
  times [0, +inf] with +inf for never) is refused; a bound the setup implies
  by construction is stated in ``paper``, not banded. ``band_source``
  (required with a band) says where the band comes from: ``paper: <paper,
  figure/table/section>: <its number>``, and how it was read, or ``ours:
  <why>``; it may be reworded without a re-run.

A run is judged MATCH when every banded metric is inside its band, else MISS.
results.json stores with each measured row the spec it was judged under
(`Reproduction.snapshot`: claim, paper text, metrics and bands, the resolved
flags, flagfile included). When the spec has changed since, or the run
stopped before its last step (a device's time limit), the table shows the row
as STALE (re-run it), never re-judged under the new spec (`staleness`).
"""

from __future__ import annotations

import dataclasses
import datetime
import fcntl
import glob
import gzip
import json
import math
import os
import re
from typing import Any, Mapping, Sequence

import numpy as np

from grokjax.analysis import grokking, predict
from grokjax.config import Config, ConfigError
from grokjax.io import atomic, rundir
from grokjax.layout import Layout

SUITES = ("smoke", "cpu", "gpu")
TIME_KINDS = ("t_mem", "t_gen", "delay")
REDUCERS = {"median": np.median, "sum": np.sum, "min": np.min, "max": np.max}
README_BEGIN = "<!-- results table: generated by experiments/reproduce.py --readme; edit the JSON beside each flagfile -->"
README_END = "<!-- end of the generated results table -->"


@dataclasses.dataclass(frozen=True)
class Metric:
  """One number a reproduction reports, and the band that counts as the paper's."""
  name: str
  kind: str
  where: Mapping[str, Any] = dataclasses.field(default_factory=dict)
  band: tuple[float | None, float | None] | None = None
  paper: str = ""
  file: str = ""
  key: str = ""
  reduce: str = "median"
  over: str = ""
  relative_to: str = ""
  after: str = ""
  band_source: str = ""

  def judge(self, value: float) -> bool | None:
    """In band (True), outside (False), or not judged (None: no band)."""
    if self.band is None:
      return None
    low, high = self.band
    if value is None or (isinstance(value, float) and math.isnan(value)):
      return False
    return (low is None or value >= low) and (high is None or value <= high)


@dataclasses.dataclass(frozen=True)
class Reproduction:
  """A paper's reported result, the command that re-runs it, and its metrics."""
  id: str
  path: str
  title: str
  paper: str
  flagfile: str
  suite: str
  metrics: tuple[Metric, ...]
  flags: tuple[str, ...] = ()
  smoke: tuple[str, ...] = ()
  analysis: tuple[tuple[str, ...], ...] = ()
  smoke_analysis: tuple[tuple[str, ...], ...] | None = None
  cost: str = ""
  notes: str = ""
  claim: str = "paper"
  differences: tuple[str, ...] = ()

  @property
  def flagfile_path(self) -> str:
    return os.path.join(os.path.dirname(self.path), self.flagfile)

  def analysis_for(self, suite: str) -> tuple[tuple[str, ...], ...]:
    if suite == "smoke" and self.smoke_analysis is not None:
      return self.smoke_analysis
    return self.analysis

  def resolved_flags(self) -> list[str]:
    """Every flag the command passes, the flagfile's (nested flagfiles
    included) and then the spec's: what a measured row is stored with."""
    return [*_flagfile_lines(self.flagfile_path, _repo_root(self.path)),
            *self.flags]

  def snapshot(self) -> dict[str, Any]:
    """What a verdict rests on: the claim, the paper's text, each metric's
    definition and band, and the resolved flags. A row measured under another
    snapshot is STALE (needs a re-run), never re-judged."""
    return {"claim": self.claim, "paper": self.paper,
            "metrics": [{k: (list(v) if isinstance(v, tuple) else v)
                         for k, v in dataclasses.asdict(m).items()
                         if k not in ("paper", "band_source")}
                        for m in self.metrics],
            "flags": self.resolved_flags()}

  def command(self) -> str:
    """The sweep's command line as a user types it."""
    flagfile = os.path.relpath(self.flagfile_path, _repo_root(self.path))
    return " ".join(["python experiments/sweep.py", f"--flagfile={flagfile}",
                     *self.flags])


def _flagfile_lines(path: str, root: str) -> list[str]:
  out = []
  with open(path) as f:
    for line in f:
      line = line.strip()
      if not line or line.startswith("#"):
        continue
      if line.startswith("--flagfile="):
        nested = line.partition("=")[2]
        out += _flagfile_lines(nested if os.path.isabs(nested)
                               else os.path.join(root, nested), root)
      else:
        out.append(line)
  return out


def _repo_root(path: str) -> str:
  return os.path.dirname(os.path.dirname(os.path.dirname(
      os.path.abspath(path))))


_OVER = re.compile(r"last|first|max|min|count|last_over_(min|max|first)|"
                   r"step_of_(max|min)|sum:\d+|"
                   r"first_(below|above):[-+0-9.eE]+|at:\w+|spearman:\w+")
CLAIMS = ("paper", "recipe")
# The values a kind of metric can take; a band that covers them all cannot
# fail and is refused (times: steps, +inf when never reached).
DOMAINS = {"t_mem": (0.0, math.inf), "t_gen": (0.0, math.inf),
           "delay": (-math.inf, math.inf), "reached": (0.0, 1.0),
           "final_train_acc": (0.0, 1.0), "final_val_acc": (0.0, 1.0)}
_SPEC_FIELDS = {"title", "paper", "flagfile", "suite", "metrics", "flags", "claim",
                "differences",
                "smoke", "analysis", "smoke_analysis", "cost", "notes"}
_METRIC_FIELDS = {f.name for f in dataclasses.fields(Metric)}


def _is_str_list(v: Any) -> bool:
  return isinstance(v, list) and all(isinstance(x, str) for x in v)


def _finite_number(v: Any) -> bool:
  return (isinstance(v, (int, float)) and not isinstance(v, bool)
          and math.isfinite(v))


def _check_metric(m: Any, bad) -> Metric:
  """One metric's fields by type and meaning; ConfigError naming the field."""
  if not isinstance(m, dict):
    raise bad(f"metric {m!r}: each metric is a JSON object")
  name = m.get("name")
  if not isinstance(name, str) or not name:
    raise bad(f"metric {m!r}: needs a 'name' (text)")
  where = f"metric {name!r}"
  unknown = set(m) - _METRIC_FIELDS
  if unknown:
    raise bad(f"{where}: unknown field(s) {sorted(unknown)}; fields: "
              f"{sorted(_METRIC_FIELDS)}")
  for field in ("kind", "paper", "file", "key", "reduce", "over",
                "relative_to", "after", "band_source"):
    if field in m and not isinstance(m[field], str):
      raise bad(f"{where}: {field!r} must be text, not {m[field]!r}")
  if "where" in m and not isinstance(m["where"], dict):
    raise bad(f"{where}: 'where' must be an object of column: value")
  kind = m.get("kind")
  if kind is None:
    raise bad(f"{where}: needs a 'kind'")
  if not (kind in TIME_KINDS or kind in ("reached", "json", "npz")
          or kind.startswith("final_")):
    raise bad(f"{where}: unknown kind {kind!r}")
  if kind in ("json", "npz") and not (m.get("file") and m.get("key")):
    raise bad(f"{where}: kind {kind} needs file and key")
  if (m.get("over") or m.get("relative_to") or m.get("after")) and \
      kind != "npz":
    raise bad(f"{where}: over, relative_to and after are for kind npz")
  if m.get("relative_to", "").startswith("first_below:") and not re.fullmatch(
      r"first_below:[-+0-9.eE]+:\w+", m["relative_to"]):
    raise bad(f"{where}: relative_to {m['relative_to']!r} is not "
              "first_below:X:COLUMN (a history column)")
  if m.get("over") and not _OVER.fullmatch(m["over"]):
    raise bad(f"{where}: over {m['over']!r} is not one of "
              "last, first, max, min, count, last_over_min, last_over_max, "
              "last_over_first, step_of_max, step_of_min, sum:K, "
              "first_below:X, first_above:X, at:COLUMN, spearman:COLUMN")
  if m.get("reduce", "median") not in REDUCERS:
    raise bad(f"{where}: reduce must be one of {sorted(REDUCERS)}")
  band = m.get("band")
  if band is not None:
    if (not isinstance(band, list) or len(band) != 2
        or not all(b is None or _finite_number(b) for b in band)
        or band == [None, None]):
      raise bad(f"{where}: band must be [low, high], finite numbers or "
                f"null for no bound (not both), not {band!r}")
    if None not in band and band[0] > band[1]:
      raise bad(f"{where}: band {band!r} has low > high")
    if kind in DOMAINS:
      lo, hi = DOMAINS[kind]
      if (band[0] is None or band[0] <= lo) and (band[1] is None
                                                 or band[1] >= hi):
        raise bad(f"{where}: band {band!r} covers every value a {kind} can "
                  f"take ([{lo}, {hi}]), so it cannot fail; a bound the "
                  "setup implies is stated in 'paper', not banded")
    if not (isinstance(m.get("band_source"), str) and m["band_source"].strip()):
      raise bad(f"{where}: a band needs a 'band_source': the paper, figure/"
                "table/section and its number, or 'ours: <why>'")
    band = tuple(band)
  elif "band_source" in m:
    raise bad(f"{where}: band_source without a band")
  return Metric(**{**m, "band": band, "where": dict(m.get("where", {}))})


def load(path: str) -> Reproduction:
  """One reproduction's JSON, checked field by field (types, required fields,
  finite bands with low <= high, lists of strings for flags); ConfigError (one
  line naming the file, the metric and the field) when malformed."""
  def bad(why: str) -> ConfigError:
    return ConfigError(f"{path}: {why}; see grokjax/reproductions.py for the "
                       "fields")
  try:
    with open(path) as f:
      d = json.load(f)
  except (OSError, ValueError) as e:
    raise bad(f"unreadable ({e})") from None
  if not isinstance(d, dict):
    raise bad("not a JSON object")
  unknown = set(d) - _SPEC_FIELDS
  if unknown:
    raise bad(f"unknown field(s) {sorted(unknown)}")
  for name in ("title", "paper", "flagfile", "suite", "metrics"):
    if name not in d:
      raise bad(f"no {name!r}")
  for name in ("title", "paper", "flagfile", "suite", "cost", "notes"):
    if name in d and not isinstance(d[name], str):
      raise bad(f"{name!r} must be text, not {d[name]!r}")
  if d["suite"] not in ("cpu", "gpu"):
    raise bad(f"suite {d['suite']!r} is not 'cpu' or 'gpu'")
  if d.get("claim") not in CLAIMS:
    raise bad(f"claim {d.get('claim')!r}: say whose claim the row judges, "
              "'paper' (a paper's) or 'recipe' (ours: a recipe of this "
              "library)")
  for name in ("flags", "smoke", "differences"):
    if name in d and not _is_str_list(d[name]):
      raise bad(f"{name!r} must be a list of strings (one argument each, "
                f'["--p=13"]), not {d[name]!r}')
  for name in ("analysis", "smoke_analysis"):
    if name in d and not (isinstance(d[name], list) and all(
        _is_str_list(a) and a for a in d[name])):
      raise bad(f"{name!r} must be a list of commands, each a non-empty list "
                f"of strings, not {d[name]!r}")
  if not isinstance(d["metrics"], list) or not d["metrics"]:
    raise bad(f"'metrics' must be a non-empty list, not {d['metrics']!r}")
  metrics = [_check_metric(m, bad) for m in d["metrics"]]
  spec = Reproduction(
      id=os.path.splitext(os.path.basename(path))[0], path=path,
      title=d["title"], paper=d["paper"], flagfile=d["flagfile"],
      suite=d["suite"], metrics=tuple(metrics),
      flags=tuple(d.get("flags", ())), smoke=tuple(d.get("smoke", ())),
      analysis=tuple(tuple(a) for a in d.get("analysis", ())),
      smoke_analysis=None if "smoke_analysis" not in d else tuple(
          tuple(a) for a in d["smoke_analysis"]),
      cost=d.get("cost", ""), notes=d.get("notes", ""), claim=d["claim"],
      differences=tuple(d.get("differences", ())))
  if not os.path.exists(spec.flagfile_path):
    raise bad(f"flagfile {spec.flagfile_path} does not exist")
  return spec


def load_all(folder: str) -> dict[str, Reproduction]:
  """Every reproduction JSON in `folder`, by id (the file's stem), in file order."""
  return {spec.id: spec for spec in
          (load(p) for p in sorted(glob.glob(os.path.join(folder, "*.json"))))}


# --- measuring a run directory -----------------------------------------------

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
  if metric.kind == "json":
    v = _json_value(workdir, metric)
    return v, _fmt(v)
  if metric.kind == "npz":
    v, each = _npz_value(workdir, metric, summary)
    shown = _fmt(v)
    if 1 < len(each) <= 16:
      shown += f" (each {', '.join(_fmt(float(e)) for e in each)})"
    return v, shown
  rows = [r for r in summary if _matches(r, metric.where)]
  if not rows:
    raise ConfigError(f"metric {metric.name!r}: no member matches "
                      f"{dict(metric.where)}")
  if metric.kind in TIME_KINDS:
    times = np.array([float(r[metric.kind]) for r in rows])
    v = grokking.median_time(times)
    reached = int(np.isfinite(times).sum())
    shown = "never" if math.isinf(v) else _fmt(v)
    return v, f"{shown} ({reached}/{len(rows)} reached)"
  if metric.kind == "reached":
    reached = sum(math.isfinite(float(r["t_gen"])) for r in rows)
    return reached / len(rows), f"{reached}/{len(rows)}"
  if metric.kind not in rows[0]:
    raise ConfigError(f"metric {metric.name!r}: no {metric.kind} in the "
                      f"summary (columns: {', '.join(rows[0])})")
  v = float(np.nanmedian([float(r[metric.kind]) for r in rows]))
  return v, _fmt(v)


def metric_each(metric: Metric, summary: Sequence[Mapping]
                ) -> list[float] | None:
  """The metric's value for each member it is the median of (a time never
  reached: +inf), for the summary's kinds; None for json, npz and reached."""
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


def _fmt(v: float) -> str:
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
      value, shown = metric_value(m, workdir, progress["summary"])
    except ConfigError as e:
      if m.kind not in ("json", "npz"):
        raise
      # An analysis file without the key (a category the run lacks, the
      # smoke analysis's shorter output): n/a, and a banded metric misses.
      value, shown = float("nan"), ("n/a (not written by the smoke analysis)"
                                    if suite == "smoke" else f"n/a ({e})")
    in_band = m.judge(value) if suite != "smoke" else None
    if in_band is not None:
      judged.append(in_band)
    each = (metric_each(m, progress["summary"]) if suite != "smoke"
            else None)
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

_PEER_FIELDS = {"repo": str, "commit": str, "torch": str, "device": str,
                "command": list, "metrics": dict, "seconds": (int, float)}


def their_code(spec: Reproduction, records: Sequence[Mapping[str, Any]],
               paths: Sequence[str]) -> dict[str, Any]:
  """A row's `their_code`: the peer's official code run by a driver in
  experiments/peers/ at the row's setup (one `peer.json` per seed), its
  metrics under the row's metric names, a time that never came counting as
  +inf in the median (the rule of grokjax's own column); ConfigError naming
  the file when a record is not a driver's."""
  names = {m.name: m for m in spec.metrics}
  for rec, path in zip(records, paths):
    for field, kind in _PEER_FIELDS.items():
      if not isinstance(rec.get(field), kind):
        raise ConfigError(f"{path}: no {field!r} of the right type; give a "
                          "peer.json that experiments/peers/ wrote")
    if not set(rec["metrics"]) & set(names):
      raise ConfigError(f"{path}: none of its metrics "
                        f"{sorted(rec['metrics'])} is one of {spec.id}'s "
                        f"({sorted(names)}); run the driver for this row")
  first = records[0]
  if any((r["repo"], r["commit"]) != (first["repo"], first["commit"])
         for r in records):
    raise ConfigError(f"{', '.join(paths)}: the runs are of different "
                      "repositories or commits; give one checkout's runs")
  metrics = []
  extras = sorted({k for r in records for k in r["metrics"]} - set(names))
  for name in [m.name for m in spec.metrics if any(
      m.name in r["metrics"] for r in records)] + extras:
    values = [r["metrics"].get(name) for r in records]
    arr = np.array([np.nan if v is None else float(v) for v in values])
    if name in names and names[name].kind in TIME_KINDS:
      value = grokking.median_time(arr)  # a seed that never got there: +inf
      shown = f"{_fmt(value)} ({int(np.isfinite(arr).sum())}/{len(arr)} " \
              "reached)"
      arr = np.where(np.isnan(arr), np.inf, arr)  # shown as "never"
    else:
      value = float(np.nanmedian(arr)) if np.isfinite(arr).any() else math.nan
      shown = _fmt(value)
    if len(arr) > 1:
      shown += f" (each {', '.join(_fmt(float(x)) for x in arr)})"
    metrics.append({"name": name, "value": None if not math.isfinite(value)
                    else value, "shown": shown,
                    "each": [float(x) for x in arr]})
  return {"repo": first["repo"], "commit": first["commit"],
          "seeds": len(records), "torch": first["torch"],
          "device": first["device"], "processor": first.get("processor"),
          "command": first["command"],
          "seconds": [float(r["seconds"]) for r in records],
          "metrics": metrics}


# "Agrees with their code", fixed on 2026-12-05 before the side-by-side runs
# it judges (the Grokfast baseline, MA and EMA filters, danielmamay) were
# recorded: the seed spread decides, with a floor for rows of one seed.
AGREE_TIME_FACTOR = 1.5  # times: medians within max(this, the seed spread)x
AGREE_VALUE_GAP = 0.05   # accuracies and other values: within max(this, range)


def _spread(values: Sequence[float], time: bool) -> float:
  """One side's spread over seeds: max/min of its reached times, or the
  range of its values (0 for one seed; NaN values left out)."""
  v = np.array([x for x in values if x is not None and not math.isnan(x)
                and math.isfinite(x)], float)
  if v.size < 2:
    return 1.0 if time else 0.0
  if time:
    return float(v.max() / v.min()) if v.min() > 0 else math.inf
  return float(v.max() - v.min())


def agreement(spec: "Reproduction", entry: Mapping[str, Any]
              ) -> tuple[bool, list[str]] | None:
  """Whether grokjax and the peer's own code agree on a row (None: nothing
  to compare): for each metric both sides measured, medians of times
  (+inf: never) within max(AGREE_TIME_FACTOR, either side's max/min over
  seeds) of each other, both never, or neither; other values within
  max(AGREE_VALUE_GAP, either side's range over seeds). Returns (agree, the
  metrics that differ, as 'name: ours X, theirs Y')."""
  t = entry.get("their_code")
  if not t or entry.get("suite") == "smoke":
    return None
  kinds = {m.name: m.kind for m in spec.metrics}
  ours = {m["name"]: m for m in entry.get("metrics", [])}
  differ, compared = [], 0
  for theirs in t["metrics"]:
    mine = ours.get(theirs["name"])
    if mine is None or theirs["name"] not in kinds:
      continue
    time = kinds[theirs["name"]] in TIME_KINDS
    a = math.inf if time and mine["value"] is None else mine["value"]
    b = math.inf if time and theirs["value"] is None else theirs["value"]
    if a is None or b is None:
      continue
    compared += 1
    spread = max(_spread(mine.get("each") or [a], time),
                 _spread(theirs.get("each") or [b], time))
    if time:
      same = (math.isinf(a) and math.isinf(b)) or (
          math.isfinite(a) and math.isfinite(b) and a > 0 and b > 0 and
          max(a, b) / min(a, b) <= max(AGREE_TIME_FACTOR, spread))
    else:
      same = abs(a - b) <= max(AGREE_VALUE_GAP, spread)
    if not same:
      differ.append(f"{theirs['name']}: ours {_fmt(a)}, theirs {_fmt(b)}")
  return (not differ, differ) if compared else None


def _their_cell(spec: "Reproduction", r: Mapping[str, Any] | None) -> str:
  t = (r or {}).get("their_code")
  if not t:
    return "not run"
  parts = "; ".join(f"{m['name']}: **{m['shown']}**" for m in t["metrics"])
  minutes = sum(t["seconds"]) / 60
  cell = (f"{parts} — {t['repo']}@{t['commit'][:7]}, {t['seeds']} seed"
          f"{'s' if t['seeds'] > 1 else ''}, torch {t['torch']} on the "
          f"{t['device'].upper()}, {minutes:.0f} min")
  verdict = agreement(spec, r)
  if verdict is not None:
    agree, differ = verdict
    cell += (". **Agrees with their code**" if agree else
             f". **Differs from their code** ({'; '.join(differ)})")
  return cell


# --- results.json and the table -------------------------------------------------

def merge(results: Mapping[str, Any], entries: Sequence[Mapping[str, Any]]
          ) -> dict[str, Any]:
  """results.json with `entries` recorded: each reproduction keeps its latest
  measurement, and a smoke entry never replaces a real one."""
  out = dict(results)
  for e in entries:
    old = out.get(e["id"])
    if old is not None and old["suite"] != "smoke" and (
        e["suite"] == "smoke" or old.get("measured", "") > e.get("measured",
                                                                 "")):
      continue
    out[e["id"]] = dict(e)
    if old is not None and "their_code" in old and "their_code" not in e:
      out[e["id"]]["their_code"] = old["their_code"]  # a re-run keeps it
  return dict(sorted(out.items()))


def update_results(path: str, entries: Sequence[Mapping[str, Any]],
                   specs: Mapping[str, "Reproduction"]) -> dict[str, Any]:
  """Records `entries` in the results.json at `path` (and its results.md); returns what it holds now.

  The file is read, merged and rewritten under an exclusive lock on
  ``<path>.lock``, so runs that share a results.json (a CPU suite in the
  background, a --collect meanwhile) each add their entries and none drops
  another's: each reads the file as it is when it writes, not as it was when
  it started. Both files are written atomically (temporary file + rename).
  """
  try:
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fd = os.open(path + ".lock", os.O_RDWR | os.O_CREAT, 0o644)
  except OSError as e:
    raise ConfigError(f"{path}: cannot write there ({e.strerror}); give "
                      "--results in a folder you can write") from None
  try:
    fcntl.flock(fd, fcntl.LOCK_EX)  # waits for the other writer
    results = merge(read_results(path), entries)
    md = os.path.splitext(path)[0] + ".md"
    json_text = json.dumps(results, indent=1)  # both complete before either
    md_text = results_markdown(specs, results)  # is written
    atomic.write_text(path, json_text)
    atomic.write_text(md, md_text)
  finally:
    fcntl.flock(fd, fcntl.LOCK_UN)
    os.close(fd)
  return results


# Each results.json entry's fields and their types (measure() writes them).
_ENTRY_FIELDS = {"id": str, "suite": str, "status": str, "metrics": list,
                 "steps_done": int, "steps": int, "finished": bool,
                 "measured": str, "device": str}
_ENTRY_METRIC_FIELDS = {"name": str, "shown": str}
STATUSES = ("MATCH", "MISS", "REPORTED", "RAN")


def check_results(results: Any, path: str) -> dict[str, Any]:
  """A results.json's content checked by schema: an object of reproduction id
  -> entry, each entry with measure()'s fields of the right types; ConfigError
  (one line naming the file, the entry and the field) otherwise."""
  def bad(why: str) -> ConfigError:
    return ConfigError(f"{path}: {why}; it is not a results.json written by "
                       "experiments/reproduce.py (restore it from git, or "
                       "pass another file)")
  if not isinstance(results, dict):
    raise bad(f"holds a JSON {type(results).__name__}, not an object of "
              "reproduction id -> entry")
  for sid, e in results.items():
    if not isinstance(e, dict):
      raise bad(f"entry {sid!r} is not an object")
    for field, kind in _ENTRY_FIELDS.items():
      if field not in e:
        raise bad(f"entry {sid!r} has no {field!r}")
      if not isinstance(e[field], kind) or (kind is int and isinstance(
          e[field], bool)):
        raise bad(f"entry {sid!r}: {field!r} is {e[field]!r}, not "
                  f"{kind.__name__}")
    if e["id"] != sid:
      raise bad(f"entry {sid!r} has id {e['id']!r}")
    if e["suite"] not in SUITES or e["status"] not in STATUSES:
      raise bad(f"entry {sid!r}: suite {e['suite']!r} / status "
                f"{e['status']!r} (suites {SUITES}, statuses {STATUSES})")
    for m in e["metrics"]:
      if not isinstance(m, dict) or any(
          not isinstance(m.get(f), k) for f, k in
          _ENTRY_METRIC_FIELDS.items()):
        raise bad(f"entry {sid!r}: metric {m!r} needs a name and a shown "
                  "value (text)")
      if m.get("band") is not None and not (
          isinstance(m["band"], list) and len(m["band"]) == 2):
        raise bad(f"entry {sid!r}: metric {m['name']!r}: band "
                  f"{m['band']!r} is not [low, high]")
  return results


def read_results(path: str) -> dict[str, Any]:
  """A results.json, checked by schema ({} when the file does not exist)."""
  if os.path.isdir(path):
    raise ConfigError(f"{path}: is a directory; give a results.json file")
  if not os.path.exists(path):
    return {}
  try:
    with open(path) as f:
      results = json.load(f)
  except OSError as e:
    raise ConfigError(f"{path}: unreadable ({e.strerror})") from None
  except ValueError as e:
    raise ConfigError(f"{path}: not valid JSON ({e}); restore it from git "
                      "or delete it to start a new record") from None
  return check_results(results, path)


def _cell(text: str) -> str:
  return text.replace("|", "\\|").replace("\n", " ")


def verdict(spec: Reproduction, r: Mapping[str, Any] | None) -> str:
  """NOT RUN, RAN at smoke size, STALE (see `staleness`), else the status."""
  if r is None:
    return "NOT RUN"
  if r["suite"] == "smoke":
    return "RAN at smoke size"
  return "STALE" if staleness(spec, r) else r["status"]


def table(specs: Mapping[str, Reproduction], results: Mapping[str, Any],
          claim: str | None = None) -> str:
  """The results table in Markdown: one row per reproduction (of `claim`'s
  rows when given), NOT RUN where none was measured, STALE where the spec
  changed after the run or the run stopped early."""
  lines = ["| reproduction | paper | ours (median over seeds) | verdict | "
           "their code, same setup | command | device, versions, time |",
           "|---|---|---|---|---|---|---|"]
  for sid, spec in specs.items():
    if claim is not None and spec.claim != claim:
      continue
    r = results.get(sid)
    if r is None or r["suite"] == "smoke":
      ours, shown_verdict, where = "not run yet", "NOT RUN", \
          f"{spec.suite.upper()} suite" + (f"; {spec.cost}" if spec.cost else "")
    else:
      parts = []
      for m in r["metrics"]:
        mark = {True: "", False: " ✗", None: ""}[m["in_band"]]
        band = ""
        if m["band"]:
          lo, hi = m["band"]
          band = (f" (band {_fmt(lo) if lo is not None else '-∞'}"
                  f"–{_fmt(hi) if hi is not None else '∞'})")
        parts.append(f"{m['name']}: **{m['shown']}**{band}{mark}")
      ours = "; ".join(parts)
      stale = staleness(spec, r)
      shown_verdict = (f"STALE ({stale}; measured {r['status']})" if stale
                       else r["status"])
      v = r.get("versions", {})
      secs = r.get("train_seconds")
      where = (f"{r['device']}; jax {v.get('jax', '?')}"
               + (f"; {secs / 60:.0f} min of training" if secs else "")
               + f"; {r['measured'][:10]}")
    notes = f" *Note:* {spec.notes}" if spec.notes else ""
    if spec.differences:
      notes += (" *Still different from their code:* "
                + "; ".join(spec.differences) + ".")
    lines.append(f"| {_cell(spec.title)} | {_cell(spec.paper)} | "
                 f"{_cell(ours)}{_cell(notes)} | {shown_verdict} | "
                 f"{_cell(_their_cell(spec, r))} | "
                 f"`{_cell(_short_command(spec))}` | {_cell(where)} |")
  return "\n".join(lines) + "\n"


def _short_command(spec: Reproduction) -> str:
  extra = " ".join(spec.flags)
  analysis = "; then " + ", ".join(a[0] for a in spec.analysis) \
      if spec.analysis else ""
  return f"{spec.flagfile}{' ' + extra if extra else ''}{analysis}"


def headline(specs: Mapping[str, Reproduction],
             results: Mapping[str, Any]) -> str:
  """'N of M paper claims MATCH (...)': paper rows only; recipes apart."""
  def counts(claim):
    c: dict[str, int] = {}
    for sid, spec in specs.items():
      if spec.claim == claim:
        v = verdict(spec, results.get(sid))
        c[v] = c.get(v, 0) + 1
    return c
  paper, recipe = counts("paper"), counts("recipe")
  rest = lambda c: ", ".join(f"{v} {k}" for k, v in sorted(c.items())
                             if k != "MATCH")
  return (f"**{paper.get('MATCH', 0)} of {sum(paper.values())} paper claims "
          f"MATCH** ({rest(paper)}); recipes of this library: "
          f"{recipe.get('MATCH', 0)} of {sum(recipe.values())} MATCH "
          f"({rest(recipe)}).")


def tables(specs: Mapping[str, Reproduction], results: Mapping[str, Any]
           ) -> str:
  """The headline, the paper claims' table, then the recipes' table."""
  return (f"{headline(specs, results)}\n\n#### Paper claims\n\n"
          f"{table(specs, results, 'paper')}\n#### Recipes of this library "
          "(claims of ours, not a paper's)\n\n"
          f"{table(specs, results, 'recipe')}")


def results_markdown(specs: Mapping[str, Reproduction],
                     results: Mapping[str, Any]) -> str:
  """results.md: a heading, the headline and both tables."""
  return f"# grokjax reproductions\n\n{tables(specs, results)}"


def update_readme(readme: str, specs: Mapping[str, Reproduction],
                  results: Mapping[str, Any], name: str = "README.md") -> str:
  """The README's text with the generated table between its markers (`name`
  is the file, for the error)."""
  if readme.count(README_BEGIN) != 1 or readme.count(README_END) != 1:
    raise ConfigError(f"{name}: needs the results-table markers once each; "
                      f"put {README_BEGIN!r} and {README_END!r} where the "
                      "table goes")
  if readme.find(README_END) < readme.find(README_BEGIN):
    raise ConfigError(f"{name}: the results-table end marker comes before "
                      "the begin marker; put them in order")
  head, rest = readme.split(README_BEGIN, 1)
  _, tail = rest.split(README_END, 1)
  return f"{head}{README_BEGIN}\n{tables(specs, results)}{README_END}{tail}"


__all__ = ["Metric", "Reproduction", "SUITES", "load", "load_all",
           "history_from_metrics", "run_progress", "metric_value", "measure",
           "merge", "update_results", "read_results", "check_results",
           "their_code", "table",
           "results_markdown", "update_readme", "device_name", "staleness",
           "verdict", "headline", "tables", "CLAIMS", "DOMAINS"]
