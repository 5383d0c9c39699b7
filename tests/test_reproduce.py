"""Reproductions as data: the JSON specs, the metrics measured from a run directory, results.json and the README's generated table."""

import gzip
import json
import math
import os
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest

from grokjax import reproductions as repro
from grokjax.config import Config, ConfigError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SPECS = os.path.join(ROOT, "experiments", "flags")


def _write(path, obj):
  with open(path, "w") as f:
    json.dump(obj, f)
  return str(path)


def _spec_dict(**over):
  d = {"title": "t", "paper": "p", "flagfile": "x.flags", "suite": "cpu",
       "claim": "paper",
       "metrics": [{"name": "gen", "kind": "t_gen", "band": [100, 200],
                    "band_source": "paper: fig. 1, 150"}]}
  d.update(over)
  return d


def test_every_reproduction_loads_with_an_existing_flagfile_and_a_judged_metric():
  specs = repro.load_all(SPECS)
  assert len(specs) >= 20
  for spec in specs.values():
    assert os.path.exists(spec.flagfile_path), spec.id
    assert spec.suite in ("cpu", "gpu")
    assert spec.metrics, spec.id
  # Each of these papers states a number, so its row must be judged.
  for sid in ("nanda2023_exact", "nanda2023_fractions", "calibration",
              "notsawo2025_sparse", "grokfast2024_ma", "omnigrok_digits"):
    assert any(m.band for m in specs[sid].metrics), sid


def test_every_reproduction_command_and_its_smoke_variant_is_valid():
  """Each spec's sweep command (and with its smoke flags) parses into a
  Config that validates: a renamed flag or a bad value in any flagfile fails
  here, not an hour into a suite."""
  proc = _reproduce("--suite=smoke", "--check")
  assert proc.returncode == 0, proc.stderr
  n = len(repro.load_all(SPECS))
  assert f"{n} reproduction(s): every command builds a valid" in proc.stdout


@pytest.mark.parametrize("page", ["README.md", "docs/results.md"])
def test_readme_results_table_is_the_generated_one(page):
  """The README's headline and docs/results.md's tables are exactly what
  results.json and the specs generate: editing them by hand (or a spec
  without regenerating) fails here."""
  specs = repro.load_all(SPECS)
  results = repro.read_results(os.path.join(ROOT, "experiments",
                                            "results.json"))
  with open(os.path.join(ROOT, page)) as f:
    text = f.read()
  assert repro.update_readme(text, specs, results, page) == text
  assert set(results) <= set(specs)


@pytest.mark.parametrize("over, message", [
    ({"suite": "tpu"}, "suite 'tpu'"),
    ({"colour": 1}, "unknown field(s) ['colour']"),
    ({"metrics": [{"name": "a", "kind": "speed"}]}, "unknown kind 'speed'"),
    ({"metrics": [{"name": "a", "kind": "t_gen", "band": [1]}]},
     "band must be [low, high]"),
    ({"metrics": [{"name": "a", "kind": "json", "file": "f.json"}]},
     "kind json needs file and key"),
    ({"flagfile": "missing.flags"}, "does not exist"),
])
def test_malformed_spec_is_one_line_naming_the_file(tmp_path, over, message):
  (tmp_path / "x.flags").write_text("--steps=1\n")
  path = _write(tmp_path / "bad.json", _spec_dict(**over))
  with pytest.raises(ConfigError) as e:
    repro.load(path)
  assert message in str(e.value) and path in str(e.value)
  assert "\n" not in str(e.value)


def test_band_judgement_is_inclusive_and_open_ended():
  m = repro.Metric("m", "t_gen", band=(100, 200))
  assert [m.judge(v) for v in (99.9, 100, 200, 200.1)] == [False, True, True,
                                                          False]
  assert m.judge(float("nan")) is False and m.judge(math.inf) is False
  assert repro.Metric("m", "delay", band=(5000, None)).judge(math.inf) is True
  assert repro.Metric("m", "t_gen").judge(1.0) is None


def test_history_from_metrics_numbers_members_by_group_and_keeps_the_resumed_line(
    tmp_path):
  lines = [
      {"event": "start", "step": 0, "group_size": 2, "groups": 2},
      {"group": 0, "step": 0, "val_loss": [1, 2], "val_acc": [0.1, 0.2]},
      {"group": 0, "step": 10, "val_loss": [3, 4], "val_acc": [0.3, 0.4]},
      {"event": "progress", "group": 0, "step": 10, "seconds": 5.0},
      {"event": "preempted", "group": 0, "step": 10, "signal": "SIGTERM"},
      {"event": "resume", "step": 10, "group_size": 2, "groups": 2},
      # the resumed run logs step 10 again: the later line counts
      {"group": 0, "step": 10, "val_loss": [5, 6], "val_acc": [0.5, 0.6]},
      {"group": 1, "step": 0, "val_loss": [7, 8], "val_acc": [0.7, 0.8]},
      {"event": "progress", "group": 1, "step": 0, "seconds": 2.0},
  ]
  path = tmp_path / "metrics.jsonl.gz"
  with gzip.open(path, "wt") as f:
    f.write("\n".join(json.dumps(l) for l in lines) + '\n{"group": 1, "st')
  h = repro.history_from_metrics(str(path))
  np.testing.assert_array_equal(h["eval_step"], [0, 10])
  np.testing.assert_array_equal(
      h["val_acc"], [[0.1, 0.5], [0.2, 0.6], [0.7, np.nan], [0.8, np.nan]])
  # training seconds add over the run's starts: 5 before the resume, 2 after
  assert repro.run_clock(str(tmp_path / "metrics.jsonl")) == (7.0, 10)


def _rows():
  # t_gen as summary.csv writes it: "nan" for a member that never generalized
  return [
      {"train_fraction": "0.3", "seed": "0", "t_mem": "100", "t_gen": "300",
       "delay": "200", "final_val_acc": "0.99"},
      {"train_fraction": "0.3", "seed": "1", "t_mem": "100", "t_gen": "nan",
       "delay": "nan", "final_val_acc": "0.5"},
      {"train_fraction": "0.3", "seed": "2", "t_mem": "200", "t_gen": "900",
       "delay": "700", "final_val_acc": "1.0"},
      {"train_fraction": "0.6", "seed": "0", "t_mem": "100", "t_gen": "nan",
       "delay": "nan", "final_val_acc": "0.1"},
  ]


def test_metric_values_follow_the_median_time_rule(tmp_path):
  """The median counts a member that never got there as +inf: {300, inf, 900}
  has median 900; {inf} is 'never'."""
  where = {"train_fraction": 0.3}
  v, shown = repro.metric_value(repro.Metric("g", "t_gen", where), "",
                                _rows())
  assert v == 900 and shown == "900 (2/3 reached)"
  v, shown = repro.metric_value(
      repro.Metric("g", "t_gen", {"train_fraction": 0.6}), "", _rows())
  assert math.isinf(v) and shown == "never (0/1 reached)"
  v, shown = repro.metric_value(repro.Metric("r", "reached", where), "",
                                _rows())
  assert v == 2 / 3 and shown == "2/3"
  v, _ = repro.metric_value(repro.Metric("f", "final_val_acc", where), "",
                            _rows())
  assert v == 0.99  # median of 0.99, 0.5, 1.0
  with pytest.raises(ConfigError, match="no member matches"):
    repro.metric_value(repro.Metric("g", "t_gen", {"train_fraction": 0.9}),
                       "", _rows())
  with pytest.raises(ConfigError, match="no column 'lr'"):
    repro.metric_value(repro.Metric("g", "t_gen", {"lr": 1}), "", _rows())


def test_json_metric_reads_a_key_path_and_reduces_lists(tmp_path):
  _write(tmp_path / "slingshots.json",
         {"members": [{"count": 2}, {"count": 0}, {"count": 3}]})
  _write(tmp_path / "fit.json", {"slope": -1.02, "nested": {"x": [4, 5]}})
  value = lambda **kw: repro.metric_value(repro.Metric("m", "json", **kw),
                                          str(tmp_path), [])[0]
  assert value(file="slingshots.json", key="members.*.count",
               reduce="sum") == 5
  assert value(file="slingshots.json", key="members.*.count") == 2  # median
  assert value(file="fit.json", key="slope") == -1.02
  assert value(file="fit.json", key="nested.x.1") == 5
  with pytest.raises(ConfigError, match="missing"):
    value(file="absent.json", key="slope")
  with pytest.raises(ConfigError, match="has no 'nested.y'"):
    value(file="fit.json", key="nested.y")


def test_npz_metric_reduces_each_member_over_its_saved_steps(tmp_path):
  """Each `over` on a hand-made measures.npz, the expected numbers worked out
  by hand from the arrays below."""
  step = np.array([0, 10, 20, 40])
  loss = np.array([[3.0, 0.5, 2.0, 6.0],    # member 0: t_gen 300
                   [4.0, 2.0, 0.8, 0.2],    # member 1: never generalized
                   [5.0, 1.0, 0.9, 10.0]])  # member 2: t_gen 900
  np.savez(tmp_path / "m.npz", step=step, members=np.array([0, 1, 2]),
           loss=loss, keys=np.array([[1, 0, 1], [0, 0, 1], [1, 1, 1]], bool),
           pca=np.array([[0.5, 0.3, 0.1], [0.9, 0.05, 0.0],
                         [0.6, 0.2, 0.1]]))
  rows = _rows()[:3]

  def value(key="loss", reduce="median", **kw):
    return repro.metric_value(repro.Metric("m", "npz", file="m.npz", key=key,
                                           reduce=reduce, **kw),
                              str(tmp_path), rows)

  assert value(over="last")[0] == 6.0               # median of 6, 0.2, 10
  assert value(over="first", reduce="max")[0] == 5.0
  assert value(over="count", key="keys")[0] == 2    # 2, 1, 3 key frequencies
  assert value(over="sum:2", key="pca")[0] == pytest.approx(0.8)  # .8 .95 .8
  # the step of the first value below 1 (1.0 is not): 10, 20, 20
  v, shown = value(over="first_below:1")
  assert v == 20 and shown == "20 (each 10, 20, 20)"
  assert value(over="first_above:5.5", reduce="min")[0] == 40
  assert math.isinf(value(over="first_above:100")[0])
  # last over the lowest: 6 / 0.5 = 12, 0.2 / 0.2 = 1, 10 / 0.9
  assert value(over="last_over_min")[0] == 10 / 0.9
  assert value(over="last_over_first")[0] == pytest.approx(6 / 3)
  # last over the peak: 6 / 6, 0.2 / 4, 10 / 10; the peak's step: 40, 0, 40
  assert value(over="last_over_max", reduce="min")[0] == pytest.approx(0.05)
  assert value(over="step_of_max")[0] == 40
  # that step over the member's t_gen: 10 / 300 and 20 / 900; member 1 has
  # no t_gen, so it is left out (not divided by +inf into a 0)
  v, shown = value(over="first_below:1", relative_to="t_gen", reduce="max")
  assert v == 10 / 300 and "n/a" in shown
  # the value at the first saved step at or after t_mem (100, 100, 200): none
  # is saved that late here, so every member is NaN and the metric is n/a
  assert math.isnan(value(over="at:t_mem")[0])
  assert value(over="last", where={"seed": 2})[0] == 10.0
  # the per-member values a row stores (its "each": the seed spread that
  # "agrees with their code" reads): 2, 1, 3 key frequencies
  keys = repro.Metric("m", "npz", file="m.npz", key="keys", over="count")
  assert repro.metric_outcome(keys, str(tmp_path), rows) == (
      2.0, "2 (each 2, 1, 3)", [2.0, 1.0, 3.0])
  with pytest.raises(ConfigError, match="no array 'absent'"):
    value(key="absent", over="last")
  with pytest.raises(ConfigError, match="needs over"):
    value(over="")


def test_npz_at_reads_the_value_at_a_members_time(tmp_path):
  np.savez(tmp_path / "m.npz", step=np.array([0, 250, 500, 1000]),
           members=np.array([0, 2]),
           gini=np.array([[0.1, 0.2, 0.3, 0.5], [0.1, 0.15, 0.2, 0.6]]))
  rows = _rows()[:3]  # member 0: t_gen 300 -> step 500; member 2: 900 -> 1000
  v, shown = repro.metric_value(
      repro.Metric("g", "npz", file="m.npz", key="gini", over="at:t_gen",
                   reduce="min"), str(tmp_path), rows)
  assert v == 0.3 and shown == "0.3 (each 0.3, 0.6)"


def test_npz_spearman_pairs_each_saved_step_with_the_next_evaluation(tmp_path):
  # MED at saved steps 0, 10, 20, 40; the run evaluated at 0, 5, 10, 20, 30:
  # each saved step pairs with the first evaluation at or after it (0, 10,
  # 20; step 40 has none and drops), never with the decoys at 5 and 30.
  np.savez(tmp_path / "m.npz", step=np.array([0, 10, 20, 40]),
           members=np.array([0, 1, 2]),
           med=np.array([[1.0, 2, 3, 4], [4.0, 3, 2, 1], [1.0, 3, 2, 9]]))
  np.savez(tmp_path / "history.npz", eval_step=np.array([0, 5, 10, 20, 30]),
           val_loss=np.array([[5.0, 100, 6, 7, -100],
                              [1.0, 100, 2, 3, -100],
                              [1.0, 100, 2, 3, -100]]))
  value = lambda column: repro.metric_value(
      repro.Metric("m", "npz", file="m.npz", key="med",
                   over=f"spearman:{column}"), str(tmp_path), _rows()[:3])
  # ranks (1 2 3 | 1 2 3) -> +1; (3 2 1 | 1 2 3) -> -1; (1 3 2 | 1 2 3):
  # 1 - 6 * (0 + 1 + 1) / (3 * 8) = 0.5. Median 0.5.
  v, shown = value("val_loss")
  assert v == pytest.approx(0.5) and shown == "0.5 (each 1, -1, 0.5)"
  with pytest.raises(ConfigError, match="no evaluation array 'test_loss'"):
    value("test_loss")


def test_npz_first_below_relative_to_a_history_loss_compares_losses(tmp_path):
  # The restricted loss falls below 1 at saved steps 20 / 10 / never; the
  # test loss (history val_loss) first below 1 at evaluation 40 / 10 / 30:
  # ratios 0.5, 1 and +inf (never fell: not before), median 1.
  np.savez(tmp_path / "m.npz", step=np.array([0, 10, 20, 30]),
           members=np.array([0, 1, 2]),
           rl=np.array([[3.0, 2, 0.5, 0.1], [3.0, 0.9, 0.5, 0.1],
                        [3.0, 2, 2, 2]]))
  np.savez(tmp_path / "history.npz", eval_step=np.array([0, 10, 20, 30, 40]),
           val_loss=np.array([[5.0, 4, 3, 2, 0.5], [5.0, 0.9, 0.5, 0.2, 0.1],
                              [5.0, 4, 3, 0.5, 0.1]]))
  metric = repro.Metric("m", "npz", file="m.npz", key="rl",
                        over="first_below:1",
                        relative_to="first_below:1:val_loss")
  v, shown = repro.metric_value(metric, str(tmp_path), _rows()[:3])
  assert v == 1 and shown == "1 (each 0.5, 1, never)"
  bad = repro.Metric("m", "npz", file="m.npz", key="rl", over="last",
                     relative_to="first_below:1:test_loss")
  with pytest.raises(ConfigError, match="no 'test_loss'"):
    repro.metric_value(bad, str(tmp_path), _rows()[:3])


def test_npz_metric_reads_a_runs_history_on_its_eval_steps(tmp_path):
  """history.npz has no `step` or `members`: evaluation arrays run over
  eval_step, per-step ones over record_step, and row i is member i."""
  np.savez(tmp_path / "history.npz", eval_step=np.array([0, 100, 200]),
           record_step=np.arange(4),
           param_norm=np.array([[77.0, 50.0, 63.0], [70.0, 60.0, 55.0],
                                [9.0, 8.0, 9.5]]),
           step_train_loss=np.array([[4.0, 3.0, 3.5, 0.1]] * 3))
  value = lambda **kw: repro.metric_value(
      repro.Metric("m", "npz", file="history.npz", **kw), str(tmp_path),
      _rows()[:3])[0]
  # 63 / 50 = 1.26, 55 / 55 = 1, 9.5 / 8 = 1.1875 -> median 1.1875; the
  # lowest at steps 100, 200, 100
  assert value(key="param_norm", over="last_over_min") == pytest.approx(1.1875)
  assert value(key="param_norm", over="step_of_min") == 100
  assert value(key="step_train_loss", over="step_of_max") == 0
  assert value(key="step_train_loss", over="first_below:1") == 3
  # after t_gen (300, never, 900): no saved step is that late, so every
  # member is NaN; after t_mem (100, 100, 200): 63/50, 55/55, 9.5/9.5
  assert math.isnan(value(key="param_norm", over="last_over_min",
                          after="t_gen"))
  assert value(key="param_norm", over="last_over_min",
               after="t_mem") == pytest.approx(1.0)
  assert value(key="param_norm", over="last_over_min", after="t_mem",
               reduce="max") == pytest.approx(1.26)


def test_merge_keeps_the_latest_measurement_and_never_a_smoke_one():
  real = {"id": "a", "suite": "cpu", "status": "MISS",
          "measured": "2026-11-27T10:00:00+00:00"}
  newer = {**real, "suite": "gpu", "status": "MATCH",
           "measured": "2026-11-27T11:00:00+00:00"}
  smoke = {"id": "a", "suite": "smoke", "status": "RAN",
           "measured": "2026-11-27T12:00:00+00:00"}
  assert repro.merge({"a": real}, [smoke])["a"] == real
  assert repro.merge({}, [smoke])["a"] == smoke
  assert repro.merge({"a": smoke}, [real])["a"] == real
  assert repro.merge({"a": real}, [newer])["a"] == newer
  assert repro.merge({"a": newer}, [real])["a"] == newer


def test_runs_sharing_a_results_file_each_add_their_entries(tmp_path):
  # Two processes (a suite in the background and a --collect, say) record
  # 20 entries each into one results.json: each update reads the file as it
  # is under the lock, so all 40 are there at the end (a writer that merged
  # into the copy it read at its start would drop the other's).
  path = str(tmp_path / "results.json")
  code = ("import sys; from grokjax import reproductions as r\n"
          "for i in range(20):\n"
          "  r.update_results(sys.argv[1], [{'id': f'{sys.argv[2]}{i}', "
          "'suite': 'cpu', 'status': 'MATCH', 'measured': 'x', "
          "'metrics': [], 'steps_done': 1, 'steps': 1, 'finished': True, "
          "'device': 'CPU'}], {})\n")
  procs = [subprocess.Popen([sys.executable, "-c", code, path, tag], cwd=ROOT)
           for tag in ("a", "b")]
  assert [p.wait(timeout=120) for p in procs] == [0, 0]
  results = repro.read_results(path)
  assert sorted(results) == sorted(f"{t}{i}" for t in "ab" for i in range(20))
  with open(str(tmp_path / "results.md")) as f:
    assert f.read().startswith("# grokjax reproductions")
  assert sorted(os.listdir(tmp_path)) == ["results.json", "results.json.lock",
                                          "results.md"]  # no temporaries left


def _reproduce(*args):
  return subprocess.run([sys.executable,
                         os.path.join(ROOT, "experiments", "reproduce.py"),
                         *args], cwd=ROOT, capture_output=True, text=True,
                        timeout=1200)


@pytest.mark.parametrize("args, message", [
    (["--only=no_such_paper"], "--only: unknown reproduction(s) "
                               "['no_such_paper']"),
    (["--collect=calibration=/nonexistent"], "--collect=calibration="
                                             "/nonexistent: no config.json"),
    (["--only=calibration", "--specs={tmp}/specs"], "its command does not "
     "parse"),
    (["--collect=nope=/tmp"], "--collect=nope=/tmp: give ID=WORKDIR"),
    (["--collect=calibration={tmp}/other"],
     "was made with other settings than calibration's command (--task: x+y "
     "vs x-y;"),
])
def test_bad_input_is_one_line_and_exit_2_before_running(tmp_path, args,
                                                        message):
  # a run of the calibration's task changed to x-y (config.json as the sweep
  # writes it; nothing else is read before the check)
  other = tmp_path / "other"
  other.mkdir()
  config = Config(task="x-y", p=31, steps=4000, d_model=64, depth=1)
  _write(other / "config.json", {"config": config.to_dict()})
  # a spec whose command names a flag the sweep does not have
  (tmp_path / "specs").mkdir()
  (tmp_path / "specs" / "q.flags").write_text("--task=x+y\n")
  _write(tmp_path / "specs" / "calibration.json",
         _spec_dict(flagfile="q.flags", flags=["--no_such_flag=1"]))
  proc = _reproduce("--suite=smoke", f"--runs={tmp_path}",
                    f"--results={tmp_path}/r.json",
                    *[a.replace("{tmp}", str(tmp_path)) for a in args])
  assert proc.returncode == 2, proc.stderr
  assert message in proc.stderr and len(proc.stderr.splitlines()) == 1
  assert not os.path.exists(tmp_path / "r.json")


def test_merge_records_the_entries_and_runs_nothing(tmp_path):
  # A GPU machine's results.json merged here: its entry is recorded, the
  # table shows it, and no suite starts (no run folder appears).
  spec = repro.load(os.path.join(SPECS, "calibration.json"))
  entry = {"id": "calibration", "suite": "gpu", "status": "MATCH",
           "metrics": [{"name": m.name, "shown": "1", "band": list(m.band),
                        "in_band": True} for m in spec.metrics],
           "steps_done": 10, "steps": 10, "finished": True,
           "members": 1, "train_seconds": 1.0, "device": "1 x NVIDIA H100",
           "versions": {"jax": "0.0"}, "measured": "2026-11-27T10:00:00+00:00",
           "command": spec.command(), "spec": spec.snapshot()}
  other = _write(tmp_path / "gpu.json", {"calibration": entry})
  proc = _reproduce(f"--merge={other}", f"--runs={tmp_path}/runs",
                    f"--results={tmp_path}/r.json")
  assert proc.returncode == 0, proc.stderr
  assert repro.read_results(str(tmp_path / "r.json")) == {"calibration": entry}
  assert not os.path.exists(tmp_path / "runs")
  row = next(l for l in (tmp_path / "r.md").read_text().splitlines()
             if l.startswith("| TARGETS.md CPU calibration"))
  assert "| MATCH |" in row and "NVIDIA H100" in row


# The smoke suite on two rows (slow, 40 s): final_* and reached after analyze.py's
# measures (gu2025_holdout_cpu), json from predict.py's prediction.json (the
# time kinds and `where` are checked against hand-made rows above). The whole
# suite (every reproduction and analysis script, ~5 min on 2 cores) is the
# other slow test below; the default run checks every spec's command
# (--check) and the metric kinds on hand-made files.
SMOKE_DEFAULT = ("gu2025_holdout_cpu", "notsawo2023_predict_cpu")


def _smoke(tmp_path, only):
  results = tmp_path / "results.json"
  proc = _reproduce("--suite=smoke", f"--runs={tmp_path}/runs",
                    f"--results={results}", f"--only={','.join(only)}")
  assert proc.returncode == 0, proc.stdout + proc.stderr
  with open(results) as f:
    out = json.load(f)
  specs = repro.load_all(SPECS)
  assert set(out) == set(only)
  for sid in only:
    entry = out[sid]
    assert entry["status"] == "RAN" and entry["suite"] == "smoke"
    assert [m["name"] for m in entry["metrics"]] == [
        m.name for m in specs[sid].metrics]
    assert all(m["in_band"] is None for m in entry["metrics"])  # not judged
    assert entry["steps_done"] == entry["steps"] and entry["finished"]
  # a smoke record is never shown as a result
  md = (tmp_path / "results.md").read_text()
  for sid in only:
    row = next(l for l in md.splitlines() if specs[sid].title in l)
    assert "| NOT RUN |" in row
  return out


@pytest.mark.slow  # 40 s; keeps the default run under 10 minutes on 2 cores
def test_smoke_suite_runs_each_metric_kind_and_analysis_end_to_end(tmp_path):
  out = _smoke(tmp_path, SMOKE_DEFAULT)
  # predict.py's prediction.json was read: a Spearman correlation; the
  # classifier's AUC is undefined (n/a) when no toy member generalized
  predict = {m["name"]: m for m in out["notsawo2023_predict_cpu"]["metrics"]}
  rho = predict["Spearman(energy, final val acc)"]["value"]
  assert rho is not None and -1 <= rho <= 1
  auc = predict["held-out-seed classifier AUC"]
  assert auc["value"] is None and auc["shown"] == "n/a"


@pytest.mark.slow
def test_smoke_suite_every_reproduction(tmp_path):
  _smoke(tmp_path, tuple(repro.load_all(SPECS)))


@pytest.mark.slow  # 25 s: a 20-step sweep, analyze.py twice
def test_collect_reanalyze_runs_the_analysis_again(tmp_path):
  # A row measured from a run directory reads its analysis files as they
  # are; --reanalyze makes them again first (after the analysis changed).
  specs = tmp_path / "specs"
  specs.mkdir()
  (specs / "tiny.flags").write_text(
      "--task=x+y\n--p=7\n--train_fraction=0.5\n--d_model=16\n--depth=1\n"
      "--steps=20\n--eval_every=10\n--chunk_steps=20\n--seed=0\n")
  _write(specs / "tiny.json", _spec_dict(
      flagfile="tiny.flags", analysis=[["analyze.py", "--workdir={workdir}"]]))
  common = (f"--specs={specs}", f"--results={tmp_path}/r.json")
  proc = _reproduce("--suite=cpu", "--only=tiny", f"--runs={tmp_path}/runs",
                    *common)
  assert proc.returncode == 0, proc.stdout + proc.stderr
  run = tmp_path / "runs" / "tiny"
  made = (run / "analysis" / "summary.csv").read_text()
  shutil.rmtree(run / "analysis")
  proc = _reproduce(f"--collect=tiny={run}", *common)
  assert proc.returncode == 0, proc.stderr
  assert not (run / "analysis").exists()   # measured without analysing
  proc = _reproduce(f"--collect=tiny={run}", "--reanalyze", *common)
  assert proc.returncode == 0, proc.stderr
  # The same run, analysed again: the same summary.
  assert (run / "analysis" / "summary.csv").read_text() == made


def _peer(metrics, commit="93b2248e351d4bb9e4dda8ac32a6999b8970404b"):
  return {"repo": "ironjr/grokfast", "commit": commit, "torch": "2.13.0+cpu",
          "device": "cpu", "command": ["main.py", "--budget", "50000"],
          "seconds": 3000.0, "metrics": metrics}


def test_their_code_takes_the_median_time_rule_and_names_bad_records(tmp_path):
  (tmp_path / "x.flags").write_text("--steps=1\n")
  spec = repro.load(_write(tmp_path / "row.json", _spec_dict(metrics=[
      {"name": "val 95%", "kind": "t_gen", "band": [20000, 80000],
       "band_source": "paper: 39,890"},
      {"name": "final val acc", "kind": "final_val_acc"}])))
  records = [_peer({"val 95%": 39000, "final val acc": 0.97}),
             _peer({"val 95%": None, "final val acc": 0.6}),
             _peer({"val 95%": 45000, "final val acc": 0.96, "norm": 3.0})]
  t = repro.their_code(spec, records, ["a", "b", "c"])
  # median of (39000, +inf, 45000) = 45000: a seed that never got there
  # counts as +inf, as in grokjax's own column
  assert t["metrics"][0] == {"name": "val 95%", "value": 45000.0, "shown":
                             "45000 (2/3 reached) (each 39000, never, 45000)",
                             "each": [39000.0, math.inf, 45000.0]}
  assert t["metrics"][1]["value"] == 0.96 and t["metrics"][2]["name"] == "norm"
  assert t["metrics"][2]["each"] == [3.0]  # only the record that measured it
  # one run per setting (Omnigrok's alphas): a record without a metric is not
  # a seed that never got there
  per_setting = repro.their_code(spec, [_peer({"val 95%": 1000}),
                                        _peer({"final val acc": 0.5})],
                                 ["a", "b"])
  assert per_setting["metrics"][0]["each"] == [1000.0]
  assert per_setting["metrics"][0]["shown"] == "1000 (1/1 reached)"
  assert t["seeds"] == 3 and t["commit"].startswith("93b2248")
  t2 = repro.their_code(spec, records[1:2], ["b"])
  assert t2["metrics"][0]["shown"] == "never (0/1 reached)"
  cell = repro.their_cell(spec, {"their_code": t})  # pylint: disable=protected-access
  assert "ironjr/grokfast@93b2248, 3 seeds" in cell and "150 min" in cell
  bad = dict(records[0])
  del bad["commit"]
  with pytest.raises(ConfigError, match=r"^b: no 'commit'"):
    repro.their_code(spec, [records[0], bad], ["a", "b"])
  with pytest.raises(ConfigError, match="none of its metrics"):
    repro.their_code(spec, [_peer({"speed": 1})], ["a"])
  with pytest.raises(ConfigError, match="different repositories or commits"):
    repro.their_code(spec, [records[0], _peer({"val 95%": 1}, "abc")],
                     ["a", "b"])


def test_agreement_with_their_code_is_decided_by_the_seed_spread(tmp_path):
  """Times agree within max(1.5x, either side's max/min over seeds); other
  values within max(0.05, either side's range); never and never agree."""
  (tmp_path / "x.flags").write_text("--steps=1\n")
  spec = repro.load(_write(tmp_path / "row.json", _spec_dict(metrics=[
      {"name": "val 95%", "kind": "t_gen"},
      {"name": "final val acc", "kind": "final_val_acc"}])))

  def verdict(ours_t, ours_acc, theirs):
    t = repro.their_code(spec, [_peer(m) for m in theirs],
                         [str(i) for i in range(len(theirs))])
    entry = {"suite": "cpu", "their_code": t, "metrics": [
        {"name": "val 95%", "value": float(np.median(ours_t)),
         "each": ours_t},
        {"name": "final val acc", "value": float(np.median(ours_acc)),
         "each": ours_acc}]}
    return repro.agreement(spec, entry)

  one = lambda t, acc: [{"val 95%": t, "final val acc": acc}]
  # one seed a side: 1000 vs 1400 is within 1.5x; 0.95 vs 0.99 within 0.05
  assert verdict([1000.0], [0.95], one(1400, 0.99)) == (True, [])
  # 1000 vs 1600 is not (1.6x); 0.90 vs 0.99 is not
  assert verdict([1000.0], [0.90], one(1600, 0.99)) == (False, [
      "val 95%: ours 1000, theirs 1600", "final val acc: ours 0.9, theirs "
      "0.99"])
  # our seeds spread 1000..2000 (2x): 1000 vs 1900 agrees; ranges widen too
  assert verdict([1000.0, 1500.0, 2000.0], [0.7, 0.8, 0.99],
                 one(1900, 0.99)) == (True, [])
  # never on both sides agrees; never on one side does not
  assert verdict([math.inf], [0.6], one(None, 0.64))[0]
  assert not verdict([math.inf], [0.6], one(50000, 0.64))[0]
  t = repro.their_code(spec, [_peer({"val 95%": 1400})], ["a"])
  assert "**Agrees with their code**" in repro.their_cell(  # pylint: disable=protected-access
      spec, {"suite": "cpu", "their_code": t, "metrics": [
          {"name": "val 95%", "value": 1000.0, "each": [1000.0]}]})


def test_their_code_is_recorded_beside_the_rows_measurement(tmp_path):
  results = tmp_path / "r.json"
  entry = {"id": "quickstart", "suite": "cpu", "status": "MATCH",
           "metrics": [], "steps_done": 1, "steps": 1, "finished": True,
           "measured": "2026-12-04T00:00:00+00:00", "device": "CPU"}
  results.write_text(json.dumps({"quickstart": entry}))
  spec = repro.load(os.path.join(SPECS, "quickstart.json"))
  name = spec.metrics[0].name
  peer = _write(tmp_path / "peer.json", _peer({name: 100}))
  proc = _reproduce(f"--results={results}", f"--their_code=quickstart={peer}")
  assert proc.returncode == 0, proc.stderr
  got = json.loads(results.read_text())["quickstart"]
  assert got["their_code"]["metrics"][0]["name"] == name
  assert {k: v for k, v in got.items() if k != "their_code"} == entry
  with open(tmp_path / "r.md") as f:
    assert "ironjr/grokfast@93b2248, 1 seed" in f.read()
  # a re-measurement of the row keeps their code's record
  newer = {**entry, "measured": "2026-12-05T00:00:00+00:00"}
  assert "their_code" in repro.merge({"quickstart": got}, [newer])["quickstart"]


@pytest.mark.parametrize("over, message", [
    ({"claim": "mine"}, "claim 'mine'"),
    ({"metrics": [{"name": "a", "kind": "t_gen", "band": [1, 2]}]},
     "a band needs a 'band_source'"),
    ({"metrics": [{"name": "a", "kind": "t_gen", "band_source": "x"}]},
     "band_source without a band"),
    ({"metrics": [{"name": "a", "kind": "reached", "band": [0, 1],
                   "band_source": "x"}]}, "covers every value a reached"),
    ({"metrics": [{"name": "a", "kind": "final_val_acc", "band": [None, 1],
                   "band_source": "x"}]}, "cannot fail"),
    ({"metrics": [{"name": "a", "kind": "t_gen", "band": [0, None],
                   "band_source": "x"}]}, "cannot fail"),
])
def test_bands_need_a_source_and_a_chance_to_fail(tmp_path, over, message):
  (tmp_path / "x.flags").write_text("--steps=1\n")
  d = _spec_dict(**over)
  if "claim" in over:
    d["claim"] = over["claim"]
  path = _write(tmp_path / "bad.json", d)
  with pytest.raises(ConfigError, match=re.escape(message)):
    repro.load(path)
  # a time band that excludes 'never' can fail: 99% reached within the run
  ok = _spec_dict(metrics=[{"name": "a", "kind": "t_gen", "band": [0, 80000],
                            "band_source": "paper: within 80k"}])
  assert repro.load(_write(tmp_path / "ok.json", ok)).metrics[0].band == (
      0, 80000)


def test_every_spec_says_whose_claim_and_every_band_has_a_source():
  specs = repro.load_all(SPECS)
  assert {s.claim for s in specs.values()} == {"paper", "recipe"}
  for spec in specs.values():
    for m in spec.metrics:
      assert (m.band is None) == (not m.band_source), (spec.id, m.name)


def _entry_for(spec, status="MATCH", finished=True):
  return {"id": spec.id, "suite": "cpu", "status": status, "metrics": [
      {"name": m.name, "shown": "1", "band": list(m.band) if m.band else None,
       "in_band": True} for m in spec.metrics], "steps_done": 10,
          "steps": 10 if finished else 20, "finished": finished,
          "measured": "2026-12-04", "device": "CPU",
          "command": spec.command(), "spec": spec.snapshot()}


def test_a_row_whose_spec_changed_after_the_run_is_stale(tmp_path):
  (tmp_path / "x.flags").write_text("--steps=1\n")
  path = _write(tmp_path / "row.json", _spec_dict())
  spec = repro.load(path)
  entry = _entry_for(spec)
  assert repro.staleness(spec, entry) is None
  assert repro.verdict(spec, entry) == "MATCH"
  # the band edited after the run: STALE, not re-judged under the new band
  d = _spec_dict()
  d["metrics"][0]["band"] = [100, 300]
  edited = repro.load(_write(path, d))
  assert repro.verdict(edited, entry) == "STALE"
  assert "metrics changed" in repro.staleness(edited, entry)
  row = [l for l in repro.table({"row": edited}, {"row": {**entry, "id":
                                                           "row"}})
         .splitlines() if l.startswith("| t |")][0]
  assert "STALE (metrics changed since the run; measured MATCH)" in row
  # the source alone may be reworded without a re-run
  d = _spec_dict()
  d["metrics"][0]["band_source"] = "paper: fig. 1 of the arXiv v2, 150"
  assert repro.verdict(repro.load(_write(path, d)), entry) == "MATCH"
  # the flagfile edited: STALE
  (tmp_path / "x.flags").write_text("--steps=2\n")
  assert "flags changed" in repro.staleness(repro.load(path), entry)
  (tmp_path / "x.flags").write_text("--steps=1\n")
  # a run stopped before its last step: STALE until re-run to the end
  assert "stopped at 10 of 20 steps" in repro.staleness(
      spec, _entry_for(spec, finished=False))
  # an entry measured before snapshots were stored: its bands are compared
  legacy = {k: v for k, v in entry.items() if k != "spec"}
  assert repro.verdict(spec, legacy) == "MATCH"
  assert repro.verdict(edited, legacy) == "STALE"


def test_headline_counts_paper_claims_only(tmp_path):
  (tmp_path / "x.flags").write_text("--steps=1\n")
  paper = repro.load(_write(tmp_path / "a.json", _spec_dict()))
  recipe = repro.load(_write(tmp_path / "b.json", _spec_dict(
      claim="recipe")))
  other = repro.load(_write(tmp_path / "c.json", _spec_dict()))
  specs = {"a": paper, "b": recipe, "c": other}
  results = {"a": _entry_for(paper), "b": _entry_for(recipe)}
  line = repro.headline(specs, results)
  assert line.startswith("**1 of 2 paper claims MATCH** (1 NOT RUN)")
  assert "recipes of this library: 1 of 1 MATCH" in line
  text = repro.tables(specs, results)
  assert text.index("#### Paper claims") < text.index("#### Recipes")


def test_a_like_for_like_row_lists_its_remaining_differences(tmp_path):
  (tmp_path / "x.flags").write_text("--steps=1\n")
  spec = repro.load(_write(tmp_path / "row.json", _spec_dict(
      differences=["their head is 114-way", "their split has 3830 pairs"])))
  assert spec.differences == ("their head is 114-way",
                              "their split has 3830 pairs")
  row = repro.table({"row": spec}, {}).splitlines()[-1]
  assert ("*Still different from their code:* their head is 114-way; their "
          "split has 3830 pairs.") in row
  with pytest.raises(ConfigError, match="'differences' must be a list"):
    repro.load(_write(tmp_path / "bad.json", _spec_dict(differences="x")))


def test_stale_selects_the_rows_to_run_again(tmp_path):
  (tmp_path / "specs").mkdir()
  (tmp_path / "specs" / "x.flags").write_text("--task=x+y\n--p=11\n")
  for sid in ("a", "b", "c"):
    _write(tmp_path / "specs" / f"{sid}.json", _spec_dict())
  spec = repro.load(str(tmp_path / "specs" / "a.json"))
  fresh = {**_entry_for(spec), "id": "a"}
  old_band = {**fresh, "id": "b", "metrics": [{**fresh["metrics"][0],
                                               "band": [1, 2]}]}
  old_band.pop("spec")  # measured before snapshots, under another band
  results = _write(tmp_path / "r.json", {"a": fresh, "b": old_band})
  proc = _reproduce("--suite=cpu", "--stale", "--check",
                    f"--specs={tmp_path}/specs", f"--results={results}")
  assert proc.returncode == 0, proc.stderr
  assert proc.stdout.strip().endswith("configuration: b, c")  # c: NOT RUN


def test_side_by_side_figure_draws_each_seed_and_the_median(tmp_path):
  """The figure per row: grokjax's members and the peer's seeds on one axis;
  the bold median is numpy's over seeds evaluated at the same steps, and
  none is drawn where the seeds' grids differ."""
  from grokjax.io import plots  # pylint: disable=import-outside-toplevel
  steps = np.array([0, 10, 20])
  got = plots._median_curve([(steps, np.array([0.1, 0.5, 1.0])),  # pylint: disable=protected-access
                             (steps, np.array([0.3, 0.6, 0.9])),
                             (steps, np.array([0.2, 0.9, 0.8]))])
  np.testing.assert_array_equal(got[0], steps)
  np.testing.assert_array_equal(got[1], [0.2, 0.6, 0.9])
  assert plots._median_curve([(steps, steps), (steps[:2], steps[:2])]) is None  # pylint: disable=protected-access
  ours = {"eval_step": steps, "train_acc": np.array([[0.1, 1, 1], [0.2, 1, 1]]),
          "val_acc": np.array([[0.0, 0.5, 1], [0.1, 0.4, 0.9]])}
  theirs = [[{"step": 0, "train_acc": 0.1, "test_acc": 0.0},
             {"step": 15, "train_acc": 1.0, "test_acc": 0.7}]]
  path = tmp_path / "row.png"
  plots.plot_side_by_side(str(path), ours, theirs, "row")
  assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
