"""The experiment tools refuse bad input as sweep.py does: one line naming the
flag or file, exit code 2, before any compilation, and no file loses a byte.

Each case is one a hostile but realistic user tried (issue 33): the writers'
files are compared byte for byte before and after.
"""

import json
import math
import os
import subprocess
import sys

import numpy as np
import pytest

from grokjax import reproductions as repro
from grokjax.config import Config, ConfigError
from grokjax.io import atomic

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXPERIMENTS = os.path.join(ROOT, "experiments")


def _tool(script, *args, cwd=ROOT):
  return subprocess.run([sys.executable, os.path.join(EXPERIMENTS, script),
                         *args], cwd=cwd, capture_output=True, text=True,
                        timeout=600)


def _one_line_exit_2(proc, *needles):
  assert proc.returncode == 2, (proc.returncode, proc.stderr[-2000:])
  lines = proc.stderr.strip().splitlines()
  assert len(lines) == 1, proc.stderr
  for needle in needles:
    assert needle in lines[0], (needle, lines[0])
  assert "Traceback" not in proc.stderr


def _spec(tmp_path, **over):
  (tmp_path / "x.flags").write_text("--steps=1\n")
  d = {"title": "t", "paper": "p", "flagfile": "x.flags", "suite": "cpu",
       "claim": "paper",
       "metrics": [{"name": "gen", "kind": "t_gen", "band": [100, 200],
                    "band_source": "paper: 150"}]}
  d.update(over)
  path = tmp_path / "spec.json"
  # json.dumps writes NaN as the bare token NaN, which json.load reads back
  path.write_text(json.dumps(d))
  return str(path)


@pytest.mark.parametrize("over, message", [
    ({"flags": "--p=13"}, "'flags' must be a list of strings"),
    ({"smoke": ["--steps=2", 3]}, "'smoke' must be a list of strings"),
    ({"analysis": "analyze.py"}, "'analysis' must be a list of commands"),
    ({"analysis": [[]]}, "'analysis' must be a list of commands"),
    ({"title": 5}, "'title' must be text"),
    ({"metrics": None}, "'metrics' must be a non-empty list"),
    ({"metrics": []}, "'metrics' must be a non-empty list"),
    ({"metrics": ["t_gen"]}, "each metric is a JSON object"),
    ({"metrics": [{"kind": "t_gen"}]}, "needs a 'name'"),
    ({"metrics": [{"name": "a", "kind": 5}]}, "'kind' must be text"),
    ({"metrics": [{"name": "a", "kind": "npz", "file": "f.npz", "key": "k",
                   "over": 3}]}, "'over' must be text"),
    ({"metrics": [{"name": "a", "kind": "t_gen", "where": [1]}]},
     "'where' must be an object"),
    ({"metrics": [{"name": "a", "kind": "t_gen", "band": [1000, 10]}]},
     "has low > high"),
    ({"metrics": [{"name": "a", "kind": "t_gen", "band": [math.nan, 1000]}]},
     "finite numbers"),
    ({"metrics": [{"name": "a", "kind": "t_gen", "band": [0, math.inf]}]},
     "finite numbers"),
    ({"metrics": [{"name": "a", "kind": "t_gen", "band": [None, None]}]},
     "not both"),
    ({"metrics": [{"name": "a", "kind": "t_gen", "band": [True, 3]}]},
     "finite numbers"),
])
def test_spec_fields_are_checked_by_type_in_one_line(tmp_path, over, message):
  path = _spec(tmp_path, **over)
  with pytest.raises(ConfigError) as e:
    repro.load(path)
  assert message in str(e.value) and path in str(e.value)
  assert "\n" not in str(e.value)


_ENTRY = {"id": "a", "suite": "cpu", "status": "MATCH", "metrics": [
    {"name": "gen", "shown": "1", "band": [0, 2]}], "steps_done": 1,
          "steps": 1, "finished": True, "measured": "2026", "device": "CPU"}


@pytest.mark.parametrize("content, message", [
    ([1, 2], "holds a JSON list"),
    ("x", "holds a JSON str"),
    ({"a": [1]}, "entry 'a' is not an object"),
    ({"a": {k: v for k, v in _ENTRY.items() if k != "status"}},
     "has no 'status'"),
    ({"a": {**_ENTRY, "metrics": None}}, "'metrics' is None"),
    ({"a": {**_ENTRY, "steps": "10"}}, "'steps' is '10', not int"),
    ({"a": {**_ENTRY, "id": "b"}}, "has id 'b'"),
    ({"a": {**_ENTRY, "status": "GREAT"}}, "status 'GREAT'"),
    ({"a": {**_ENTRY, "metrics": [{"name": "gen"}]}}, "needs a name and a "
                                                      "shown value"),
])
def test_results_files_are_checked_by_schema(tmp_path, content, message):
  path = tmp_path / "r.json"
  path.write_text(json.dumps(content))
  with pytest.raises(ConfigError) as e:
    repro.read_results(str(path))
  assert message in str(e.value) and str(path) in str(e.value)
  assert "\n" not in str(e.value)
  assert repro.check_results({"a": _ENTRY}, "x") == {"a": _ENTRY}


def test_results_path_that_is_a_directory_is_one_line(tmp_path):
  with pytest.raises(ConfigError, match="is a directory"):
    repro.read_results(str(tmp_path))


@pytest.mark.parametrize("text, message", [
    ("no markers here\n", "needs the results-table markers once each"),
    (f"{repro.README_END}\nx\n{repro.README_BEGIN}\n", "comes before"),
    (f"{repro.README_BEGIN}\n{repro.README_BEGIN}\n{repro.README_END}\n",
     "once each"),
])
def test_update_readme_names_the_file_and_the_fault(text, message):
  with pytest.raises(ConfigError) as e:
    repro.update_readme(text, {}, {}, "docs/X.md")
  assert message in str(e.value) and str(e.value).startswith("docs/X.md:")


def test_atomic_write_keeps_the_old_bytes_when_the_write_fails(tmp_path):
  path = tmp_path / "f.txt"
  path.write_bytes(b"finished result")
  atomic.write_text(str(path), "new")
  assert path.read_bytes() == b"new"
  with pytest.raises(atomic.WriteError, match="cannot write"):
    atomic.write_text(str(tmp_path / "missing" / "f.txt"), "x")
  # a failure half way (here: text that cannot be encoded) leaves no file
  # behind and the old bytes as they were
  with pytest.raises(UnicodeEncodeError):
    atomic.write_text(str(path), "\ud800")
  assert path.read_bytes() == b"new" and os.listdir(tmp_path) == ["f.txt"]


def _readme_cases(tmp_path):
  no_markers = tmp_path / "a.md"
  no_markers.write_text("# my notes\nno table here\n")
  reversed_ = tmp_path / "b.md"
  reversed_.write_text(f"x\n{repro.README_END}\ny\n{repro.README_BEGIN}\nz\n")
  return [(no_markers, "needs the results-table markers"),
          (reversed_, "comes before")]


def test_reproduce_refuses_a_readme_without_its_markers_and_keeps_it(tmp_path):
  for path, message in _readme_cases(tmp_path):
    before = path.read_bytes()
    proc = _tool("reproduce.py", "--table_only", f"--readme={path}",
                 f"--results={tmp_path}/r.json")
    _one_line_exit_2(proc, str(path), message)
    assert path.read_bytes() == before


@pytest.mark.parametrize("case", ["readme_folder", "results_dir",
                                  "merge_list", "merge_no_status",
                                  "check_leftover", "collect_corrupt",
                                  "no_specs", "negative_time_limit",
                                  "results_unwritable", "figure_alone"])
def test_reproduce_bad_input_is_one_line_and_loses_nothing(tmp_path, case):
  results = tmp_path / "r.json"
  results.write_text(json.dumps({}))
  before = results.read_bytes()
  args = [f"--results={results}"]
  if case == "readme_folder":
    args += ["--table_only", f"--readme={tmp_path}/none/README.md"]
    needles = [f"--readme={tmp_path}/none/README.md", "cannot read"]
  elif case == "results_dir":
    args = ["--table_only", f"--results={tmp_path}"]
    needles = [str(tmp_path), "is a directory"]
  elif case == "merge_list":
    (tmp_path / "m.json").write_text("[1, 2]")
    args += [f"--merge={tmp_path}/m.json"]
    needles = [f"{tmp_path}/m.json", "holds a JSON list"]
  elif case == "merge_no_status":
    entry = {k: v for k, v in _ENTRY.items() if k != "status"}
    (tmp_path / "m.json").write_text(json.dumps({"quickstart": {
        **entry, "id": "quickstart"}}))
    args += [f"--merge={tmp_path}/m.json"]
    needles = [f"{tmp_path}/m.json", "has no 'status'"]
  elif case == "check_leftover":
    args += ["--suite=cpu", "--only=quickstart", "--check", "extra"]
    needles = ["unexpected argument(s) ['extra']"]
  elif case == "no_specs":
    # --table_only with a specs folder that holds none used to rewrite
    # results.md with an empty table
    (tmp_path / "r.md").write_text("# the table\n")
    args += ["--table_only", f"--specs={tmp_path}/nowhere"]
    needles = [f"--specs={tmp_path}/nowhere", "no reproduction JSON"]
  elif case == "negative_time_limit":
    args += ["--only=quickstart", "--time_limit=-1"]
    needles = ["--time_limit=-1", "seconds >= 0"]
  elif case == "figure_alone":
    args += [f"--their_code_figure={tmp_path}/run"]
    needles = [f"--their_code_figure={tmp_path}/run",
               "exactly one --their_code"]
  elif case == "results_unwritable":
    blocker = tmp_path / "file"
    blocker.write_text("x")
    args = ["--table_only", f"--results={blocker}/r.json"]
    needles = [f"{blocker}/r.json", "cannot write there"]
  else:
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text('{"config": {"task": ')
    args += [f"--collect=quickstart={run}"]
    needles = [f"--collect=quickstart={run}", "config.json is unreadable"]
  md_before = (tmp_path / "r.md").read_bytes() if (
      tmp_path / "r.md").exists() else None
  proc = _tool("reproduce.py", *args)
  _one_line_exit_2(proc, *needles)
  assert "--overwrite" not in proc.stderr
  assert results.read_bytes() == before
  if md_before is not None:
    assert (tmp_path / "r.md").read_bytes() == md_before


def test_sweep_says_an_empty_range_is_empty(tmp_path):
  proc = _tool("sweep.py", "--flagfile=experiments/flags/quickstart.flags",
               "--seed=5:3", f"--workdir={tmp_path}/w")
  _one_line_exit_2(proc, "--seed=5:3", "the range 5:3 is empty")
  assert not os.path.exists(tmp_path / "w")


def _fake_run(path, config, summary=True, members=True):
  """A run directory's files as sweep.py writes them, without training."""
  path.mkdir(parents=True)
  (path / "config.json").write_text(json.dumps({"config": config.to_dict()}))
  if members:
    (path / "members.csv").write_text("member,seed\n0,0\n")
  if summary:
    (path / "summary.csv").write_text("member,t_gen\n0,100\n")


def test_drift_refuses_to_reuse_a_run_of_other_settings(tmp_path):
  # The runs of p=13 in --out, then drift.py asked for p=11: it used to
  # report the old runs' drift and exit 0.
  out = tmp_path / "drift"
  _fake_run(out / "one_device", Config(task="x+y", p=13, steps=20))
  proc = _tool("drift.py", "--task=x+y", "--p=11", "--steps=20",
               f"--out={out}")
  _one_line_exit_2(proc, f"--out={out}", "holds a run with other settings",
                   "--p: 11 vs 13")
  assert not os.path.exists(out / "drift.json")


def test_drift_needs_a_device(tmp_path):
  proc = _tool("drift.py", "--task=x+y", "--p=11", "--steps=20",
               f"--out={tmp_path}/d", "--devices=0")
  _one_line_exit_2(proc, "--devices=0")


def test_drift_out_that_cannot_be_made_is_one_line(tmp_path):
  blocker = tmp_path / "file"
  blocker.write_text("x")
  proc = _tool("drift.py", "--task=x+y", "--p=11", "--steps=20",
               f"--out={blocker}/drift")
  _one_line_exit_2(proc, f"--out={blocker}/drift", "cannot create it")


def test_compare_runs_needs_a_metric_and_reads_a_damaged_history_in_one_line(
    tmp_path):
  run = tmp_path / "run"
  _fake_run(run, Config(task="x+y", p=11, steps=20))
  out = tmp_path / "cmp.png"
  proc = _tool("compare_runs.py", f"--workdirs={run}", "--metrics=",
               f"--out={out}")
  _one_line_exit_2(proc, "--metrics")
  # a history.npz cut short (a copy interrupted): no records to rebuild from
  np.savez(run / "history.npz", val_acc=np.zeros((1, 3)),
           eval_step=np.arange(3))
  data = (run / "history.npz").read_bytes()
  (run / "history.npz").write_bytes(data[:len(data) // 2])
  proc = _tool("compare_runs.py", f"--workdirs={run}", "--metrics=val_acc",
               f"--out={out}")
  _one_line_exit_2(proc, str(run), "history.npz is damaged")
  assert not os.path.exists(out)


def test_replay_of_a_run_without_members_csv_is_one_line(tmp_path):
  run = tmp_path / "run"
  _fake_run(run, Config(task="x+y", p=11, steps=20), members=False)
  proc = _tool("replay.py", f"--workdir={run}", "--member=0")
  _one_line_exit_2(proc, str(run), "members.csv")
