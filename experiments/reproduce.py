"""Runs a suite of reproductions, judges each against its paper's band, and writes the results table.

    python experiments/reproduce.py --suite=smoke          # every reproduction at toy size
    python experiments/reproduce.py --suite=cpu --only=parity,omnigrok_digits
    python experiments/reproduce.py --suite=gpu --time_limit=300
    python experiments/reproduce.py --table_only --readme=README.md,docs/results.md
    python experiments/reproduce.py --suite=smoke --check   # every spec's command is valid

A reproduction is a JSON file beside its flagfile in experiments/flags/ (the
format: grokjax/reproductions/__init__.py). For each one in the suite this runs
`sweep.py --flagfile=... <flags>` into `<runs>/<id>` (the same command resumes
a run that was stopped), then the reproduction's analysis commands, then
measures its metrics on the run directory. `--time_limit` stops a sweep with
SIGTERM (it saves a checkpoint) and judges the steps it made, saying so.

Writes `results.json` (every reproduction's latest measured outcome: metrics,
verdict, device, versions, time; a smoke run never replaces a real one) and
`results.md` beside it; `--readme` regenerates the generated blocks of
Markdown files from them (the README's headline, docs/results.md's tables).
The smoke suite writes under its own `--runs` folder and judges nothing: it
checks that every flagfile, analysis and metric runs end to end.

`--collect=ID=WORKDIR` measures a run directory made elsewhere (a GPU
machine's, say) without running the sweep; it reads the analysis files as
they are, and `--reanalyze` runs the reproduction's analysis commands again
first (after the analysis code changed); `--merge=FILE` records another
results.json's entries, and runs nothing either.
"""

import json
import os
import sys

from absl import flags

from grokjax import cli
from grokjax import io as gio
from grokjax import reproductions as repro
from grokjax.reproductions import runner
from grokjax.config import ConfigError
from grokjax.io import atomic

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

flags.DEFINE_enum("suite", "cpu", repro.SUITES, "which reproductions, at "
                  "which size: smoke (all, toy size, not judged), cpu, gpu")
flags.DEFINE_list("only", [], "reproduction ids (JSON stems in "
                  "experiments/flags/); default: the whole suite")
flags.DEFINE_bool("stale", False, "only the suite's rows that show STALE "
                  "(their spec changed since they were measured, or their "
                  "run stopped early) or NOT RUN in --results")
flags.DEFINE_string("specs", os.path.join(HERE, "flags"), "folder of "
                    "reproduction JSON files")
flags.DEFINE_string("runs", None, "folder for the run directories "
                    "(default runs/reproduce/<suite>)")
flags.DEFINE_string("results", None, "results.json to update (default "
                    "experiments/results.json; for smoke, <runs>/results.json)")
flags.DEFINE_integer("time_limit", 0, "seconds per sweep before SIGTERM "
                     "(0: none); the run is judged on the steps it made")
flags.DEFINE_list("collect", [], "ID=WORKDIR pairs: measure these run "
                  "directories instead of running anything")
flags.DEFINE_bool("reanalyze", False, "with --collect: run the reproduction's "
                  "analysis commands on the run directory again before "
                  "measuring it (after the analysis code changed)")
flags.DEFINE_list("merge", [], "other results.json files (a GPU machine's, "
                  "say) whose entries are recorded; nothing runs")
flags.DEFINE_list("their_code", [], "ID=PEER_JSON[+PEER_JSON...]: record "
                  "the peer's official code run at the row's setup by a "
                  "driver in experiments/peers/ (one peer.json per seed) "
                  "beside the row's own measurement; nothing runs")
flags.DEFINE_string("their_code_figure", None, "with one --their_code: "
                    "grokjax's run directory of that row; draws its curves "
                    "and the peer's on one axis into docs/images/their_code/"
                    "ID.png and names the figure in the row")
flags.DEFINE_bool("table_only", False, "only regenerate results.md (and "
                  "--readme) from results.json")
flags.DEFINE_list("readme", [], "Markdown files whose generated blocks "
                  "(results table, headline) are regenerated: README.md,"
                  "docs/results.md")
flags.DEFINE_bool("check", False, "only check that each chosen "
                  "reproduction's command builds a valid configuration "
                  "(after adding or editing a spec or flagfile)")
FLAGS = flags.FLAGS


def _paths() -> tuple[str, str]:
  runs = FLAGS.runs or os.path.join(ROOT, "runs", "reproduce", FLAGS.suite)
  if FLAGS.results:
    results = FLAGS.results
  elif FLAGS.suite == "smoke" and not FLAGS.collect:
    results = os.path.join(runs, "results.json")
  else:
    results = os.path.join(HERE, "results.json")
  return runs, results


def _select(specs: dict, results: dict) -> list:
  unknown = [i for i in FLAGS.only if i not in specs]
  if unknown:
    raise ConfigError(f"--only: unknown reproduction(s) {unknown}; known: "
                      f"{', '.join(specs)}")
  chosen = [specs[i] for i in FLAGS.only] if FLAGS.only else [
      s for s in specs.values()
      if FLAGS.suite == "smoke" or s.suite == FLAGS.suite]
  if FLAGS.stale:
    chosen = [s for s in chosen if repro.verdict(s, results.get(s.id)) in (
        "STALE", "NOT RUN", "RAN at smoke size")]
  return chosen


def _read_readme(path: str) -> str:
  try:
    with open(path) as f:
      return f.read()
  except (OSError, UnicodeDecodeError) as e:
    raise ConfigError(f"--readme={path}: cannot read it ("
                      f"{getattr(e, 'strerror', None) or e}); give the "
                      "Markdown file whose results blocks are regenerated"
                      ) from None


def _read_merge(path: str, specs: dict) -> dict:
  if not os.path.isfile(path):
    raise ConfigError(f"--merge={path}: no such file")
  other = repro.read_results(path)
  unknown = sorted(set(other) - set(specs))
  if unknown:
    raise ConfigError(f"--merge={path}: unknown reproduction(s) {unknown}; "
                      f"known: see --specs={FLAGS.specs}")
  return other


def _their_code(pair: str, specs: dict, results: dict,
                results_path: str) -> dict:
  """The row's results.json entry with its `their_code` (the peer's runs)."""
  sid, _, paths = pair.partition("=")
  if sid not in specs or not paths:
    raise ConfigError(f"--their_code={pair}: give ID=PEER_JSON[+PEER_JSON...]"
                      f" with ID one of {', '.join(specs)}")
  entry = results.get(sid)
  if entry is None or entry["suite"] == "smoke":
    raise ConfigError(f"--their_code={pair}: {sid} has no measurement in "
                      f"{results_path} to put their code's beside; run or "
                      "--collect it first")
  records = []
  for path in paths.split("+"):
    try:
      with open(path) as f:
        records.append(json.load(f))
    except (OSError, ValueError) as e:
      raise ConfigError(f"--their_code={pair}: {path} is unreadable ({e})"
                        ) from None
    if not isinstance(records[-1], dict):
      raise ConfigError(f"--their_code={pair}: {path} is not a peer.json")
  their = repro.their_code(specs[sid], records, paths.split("+"))
  if FLAGS.their_code_figure:
    their["figure"] = _figure(sid, FLAGS.their_code_figure, records, their)
  return {**entry, "their_code": their}


def _figure(sid: str, workdir: str, records: list, their: dict) -> str:
  """docs/images/their_code/<sid>.png from the run's history and the
  peer's curves; its path from the repository's root."""
  try:
    history = gio.read_history(workdir)
  except (OSError, ValueError, KeyError) as e:
    raise ConfigError(f"--their_code_figure={workdir}: no readable "
                      f"history.npz ({e}); give {sid}'s run directory"
                      ) from None
  rel = os.path.join("docs", "images", "their_code", f"{sid}.png")
  os.makedirs(os.path.dirname(os.path.join(ROOT, rel)), exist_ok=True)
  gio.plots.plot_side_by_side(
      os.path.join(ROOT, rel), history, [r.get("curve", []) for r in records],
      f"{sid}: grokjax ({len(history['val_acc'])} members) and\n"
      f"{their['repo']}@{their['commit'][:7]} ({len(records)} seed"
      f"{'s' if len(records) > 1 else ''})")
  return rel


def main(argv):
  if len(argv) > 1:
    raise ConfigError(f"unexpected argument(s) {argv[1:]}: every option is "
                      "a --flag (see --help)")
  if FLAGS.time_limit < 0:
    raise ConfigError(f"--time_limit={FLAGS.time_limit}: give seconds >= 0 "
                      "(0: none)")
  specs = repro.load_all(FLAGS.specs)
  if not specs:
    raise ConfigError(f"--specs={FLAGS.specs}: no reproduction JSON there; "
                      "give the folder of the specs (experiments/flags)")
  runs, results_path = _paths()
  # Every input checked before anything runs or is written: one line each.
  existing = repro.read_results(results_path)
  for path in FLAGS.readme:
    repro.update_readme(_read_readme(path), specs, {}, path)
  merged = [_read_merge(path, specs) for path in FLAGS.merge]
  if FLAGS.their_code_figure and len(FLAGS.their_code) != 1:
    raise ConfigError(f"--their_code_figure={FLAGS.their_code_figure}: give "
                      "it with exactly one --their_code=ID=... (the row the "
                      "run directory belongs to)")
  entries = [_their_code(pair, specs, existing, results_path)
             for pair in FLAGS.their_code]
  if FLAGS.collect:
    for pair in FLAGS.collect:
      sid, _, workdir = pair.partition("=")
      if sid not in specs or not workdir:
        raise ConfigError(f"--collect={pair}: give ID=WORKDIR with ID one of "
                          f"{', '.join(specs)}")
      runner.check_collected(specs[sid], workdir, pair, ROOT)
      if FLAGS.reanalyze:
        log_path = os.path.join(workdir, "reproduce.log")
        with open(log_path, "a") as log:
          if runner.analyze(specs[sid], workdir, log, FLAGS.suite, ROOT):
            sys.exit(f"--collect={pair} --reanalyze: an analysis command "
                     f"failed; see {log_path}")
      entries.append(repro.measure(specs[sid], workdir, FLAGS.suite
                                   if FLAGS.suite != "smoke" else "cpu"))
  elif not FLAGS.table_only and not FLAGS.merge and not FLAGS.their_code:
    chosen = _select(specs, existing)
    if not chosen:
      raise ConfigError(f"--suite={FLAGS.suite}: no reproduction in it"
                        + (" is STALE or NOT RUN" if FLAGS.stale else ""))
    for spec in chosen:  # a spec whose command is wrong: before any run
      runner.spec_config(spec, root=ROOT)
      if FLAGS.suite == "smoke":
        runner.spec_config(spec, spec.smoke, ROOT)
    if FLAGS.check:
      print(f"{len(chosen)} reproduction(s): every command builds a valid "
            "configuration" + (": " + ", ".join(s.id for s in chosen)
                               if FLAGS.stale else ""))
      return
    for spec in chosen:
      print(f"{spec.id}: {spec.command()}"
            + (" " + " ".join(spec.smoke) if FLAGS.suite == "smoke" else ""),
            flush=True)
      entry = runner.run_one(spec, os.path.join(runs, spec.id), FLAGS.suite,
                             FLAGS.time_limit, ROOT)
      entries.append(entry)
      shown = "; ".join(f"{m['name']} {m['shown']}"
                        for m in entry.get("metrics", []))
      print(f"  {entry['status']}: {shown or entry.get('error', '')}",
            flush=True)
  for other in merged:
    entries.extend(other.values())
  results = repro.update_results(
      results_path, [e for e in entries if e["status"] != "FAILED"], specs)
  md = os.path.splitext(results_path)[0] + ".md"
  print(f"wrote {results_path} and {md}")
  for path in FLAGS.readme:  # the new text whole, then one atomic replace
    atomic.write_text(path, repro.update_readme(
        _read_readme(path), specs, results, path))
    print(f"regenerated the results blocks in {path}")
  failed = [e for e in entries if e["status"] == "FAILED"]
  for e in failed:
    print(f"{e['id']}: FAILED: {e['error']} (log: {e['log']})",
          file=sys.stderr)
  if failed:
    sys.exit(1)


if __name__ == "__main__":
  cli.run_main(main)
