"""results.json (merged, checked, locked) and the tables generated from it: results.md and the README's block."""

from __future__ import annotations

import fcntl
import json
import os
from typing import Any, Mapping, Sequence

from grokjax.config import ConfigError
from grokjax.io import atomic
from grokjax.reproductions.measure import fmt, staleness
from grokjax.reproductions.spec import (
    HEADLINE_BEGIN, HEADLINE_END, README_BEGIN, README_END, SUITES,
    Reproduction)
from grokjax.reproductions.their_code import their_cell

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
          band = (f" (band {fmt(lo) if lo is not None else '-∞'}"
                  f"–{fmt(hi) if hi is not None else '∞'})")
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
                 f"{_cell(their_cell(spec, r))} | "
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

def _markers(text: str, begin: str, end: str, name: str) -> bool:
  """Whether `text` holds the pair begin..end (once each, in order)."""
  if begin not in text and end not in text:
    return False
  if text.count(begin) != 1 or text.count(end) != 1:
    raise ConfigError(f"{name}: needs the results-table markers once each; "
                      f"put {begin!r} and {end!r} where the generated text "
                      "goes")
  if text.find(end) < text.find(begin):
    raise ConfigError(f"{name}: the results-table end marker comes before "
                      "the begin marker; put them in order")
  return True


def update_readme(readme: str, specs: Mapping[str, Reproduction],
                  results: Mapping[str, Any], name: str = "README.md") -> str:
  """A Markdown file's text with the generated text between its markers:
  the headline and both tables between README_BEGIN/END (docs/results.md),
  the headline alone between HEADLINE_BEGIN/END (the README). `name` is the
  file, for the error; a file needs at least one pair."""
  blocks = ((README_BEGIN, README_END, tables(specs, results)),
            (HEADLINE_BEGIN, HEADLINE_END, headline(specs, results) + "\n"))
  found = [b for b in blocks if _markers(readme, b[0], b[1], name)]
  if not found:
    raise ConfigError(f"{name}: needs the results-table markers once each; "
                      f"put {README_BEGIN!r} and {README_END!r} where the "
                      f"table goes (or {HEADLINE_BEGIN!r} and "
                      f"{HEADLINE_END!r} where the headline goes)")
  for begin, end, text in found:
    head, rest = readme.split(begin, 1)
    _, tail = rest.split(end, 1)
    readme = f"{head}{begin}\n{text}{end}{tail}"
  return readme
