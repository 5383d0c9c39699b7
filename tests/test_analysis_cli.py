"""experiments/analyze.py and experiments/predict.py end to end on one small real sweep."""

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from grokjax import analysis
from grokjax.analysis import measures
from grokjax.config import Config, ConfigError
from grokjax.io import snapshot_schedule
from grokjax import io as gio
from grokjax.analysis import predict

# One 12-member sweep shared by three end-to-end checks (~100 s): in the slow
# run (pytest -m slow, which .ci/run also runs), to keep the default run
# under 10 minutes.
pytestmark = pytest.mark.slow

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SWEEP = [sys.executable, os.path.join(ROOT, "experiments", "sweep.py")]
ANALYZE = [sys.executable, os.path.join(ROOT, "experiments", "analyze.py")]
PREDICT = [sys.executable, os.path.join(ROOT, "experiments", "predict.py")]

# x+y mod 31, 1-layer d=64: 3 fractions x 2 learning rates x 2 seeds, 800
# steps, parameter snapshots at 6 log-spaced steps and every 200. Measured:
# 9 of 12 members reach 99% val; at lr 4e-3, t_gen 400 at 75% and 300 at 90%.
GRID = ["--task=x+y", "--p=31", "--depth=1", "--d_model=64", "--d_mlp=256",
        "--num_heads=4", "--nolayer_norm", "--steps=800", "--eval_every=50",
        "--chunk_steps=400", "--learning_rate=2e-3,4e-3", "--weight_decay=1",
        "--train_fraction=0.6,0.75,0.9", "--seed=0:2", "--phase_gap=200",
        "--snapshot_count=6", "--snapshot_every=200"]


def _run(cmd, **kw):
  return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True,
                        timeout=600, **kw)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
  workdir = str(tmp_path_factory.mktemp("analysis") / "run")
  proc = _run(SWEEP + GRID + [f"--workdir={workdir}"])
  assert proc.returncode == 0, proc.stderr
  return workdir


def test_analyze_recomputes_summary_stats_and_fits(run_dir, tmp_path):
  proc = _run(ANALYZE + [f"--workdir={run_dir}"])
  assert proc.returncode == 0, proc.stderr
  out = os.path.join(run_dir, "analysis")
  # At the run's thresholds the recomputed summary is the sweep's own.
  top = gio.read_csv(os.path.join(run_dir, "summary.csv"))
  assert gio.read_csv(os.path.join(out, "summary.csv")) == top
  stats = gio.read_csv(os.path.join(out, "stats.csv"))
  assert len(stats) == 6
  rows = [{k: gio.csv_float(r[k]) for k in ("train_fraction",
                                             "learning_rate", "t_gen")}
          for r in top]
  for s in stats:
    mine = [r["t_gen"] for r in rows
            if r["train_fraction"] == float(s["train_fraction"])
            and r["learning_rate"] == float(s["learning_rate"])]
    # Empty cells are "never" (+inf in the statistics).
    never = lambda cell: np.inf if cell == "" else float(cell)
    med = never(s["median_t_gen"])
    assert med == analysis.median_time(np.array(mine))
    assert never(s["t_gen_lo"]) <= med <= never(s["t_gen_hi"])
  fits = json.load(open(os.path.join(out, "fits.json")))
  assert fits["finished"] and fits["thresholds"]["gen"] == 0.99
  assert len(fits["power_law"]) == 2
  fast = next(f for f in fits["power_law"] if f["learning_rate"] == 0.004)
  # More data, sooner: a positive exponent (measured 0.82) with a bootstrap
  # interval over the two seeds.
  assert fast["gamma"] > 0 and fast["gamma_lo"] < fast["gamma_hi"]
  assert fast["points"] == 5 and fast["dropped"] == 1
  assert os.path.exists(os.path.join(out, "plots", "power_law.png"))
  # Per-step last-layer norms are recorded, so slingshots are looked for.
  history = gio.read_history(run_dir)
  assert history["step_last_layer_norm"].shape == (12, 800)
  assert np.all(history["step_last_layer_norm"] > 0)
  sling = json.load(open(os.path.join(out, "slingshots.json")))
  assert [m["member"] for m in sling["members"]] == list(range(12))
  assert os.path.exists(os.path.join(out, "plots", "slingshots.png"))
  # Another threshold changes only the analysis folder: t_gen can only come
  # sooner at 90% than at 99%, and the run's own summary is untouched.
  lower = _run(ANALYZE + [f"--workdir={run_dir}", "--gen_threshold=0.9",
                          f"--out={tmp_path / 'at90'}"])
  assert lower.returncode == 0, lower.stderr
  at90 = gio.read_csv(str(tmp_path / "at90" / "summary.csv"))
  for a, b in zip(at90, top):
    if b["t_gen"]:
      assert float(a["t_gen"]) <= float(b["t_gen"])
  assert gio.read_csv(os.path.join(run_dir, "summary.csv")) == top
  # A run still training (no final evaluation yet) is analyzed from its
  # chunk records.
  partial = str(tmp_path / "partial")
  shutil.copytree(run_dir, partial)
  os.remove(os.path.join(partial, "records", "g0000_sfinal.npz"))
  manifest = os.path.join(partial, "records", "g0000.manifest.jsonl")
  with open(manifest) as f:  # as the run left it before its final eval
    lines = [l for l in f if "sfinal" not in l]
  with open(manifest, "w") as f:
    f.writelines(lines)
  os.remove(os.path.join(partial, "summary.csv"))
  proc = _run(ANALYZE + [f"--workdir={partial}"])
  assert proc.returncode == 0, proc.stderr
  assert "still running" in proc.stdout
  assert not json.load(open(os.path.join(partial, "analysis",
                                         "fits.json")))["finished"]


def test_analyze_measures_see_the_fourier_circuit_form(run_dir, tmp_path):
  """Members 5 and 11 (90% data, lr 4e-3) grok; the measures show how."""
  out = str(tmp_path / "m")
  proc = _run(ANALYZE + [f"--workdir={run_dir}", f"--out={out}",
                         "--measures=fourier,norms,distance,embedding,pca,"
                         "landscape", "--members=5,11"])
  assert proc.returncode == 0, proc.stderr
  m = dict(np.load(os.path.join(out, "measures.npz")))
  # Every saved step: 0, geomspace(1, 800, 6) rounded, every 200, and 800.
  np.testing.assert_array_equal(m["step"], snapshot_schedule(
      Config(steps=800, snapshot_count=6, snapshot_every=200)))
  assert m["step"].tolist() == [0, 1, 4, 14, 55, 200, 210, 400, 600, 800]
  np.testing.assert_array_equal(m["members"], [5, 11])
  S = len(m["step"])
  for name in ("gini", "ipr", "restricted_loss", "excluded_loss_test",
               "l2_norm", "nuclear_norm", "med", "rqi", "distance_from_init"):
    assert m[name].shape == (2, S), name
  assert m["frequency_norms"].shape == (2, S, 16)
  assert m["key_frequencies"].shape == (2, 16)
  history = gio.read_history(run_dir)
  summary = gio.read_csv(os.path.join(run_dir, "summary.csv"))
  for i, member in enumerate((5, 11)):
    assert summary[member]["t_gen"]  # both generalize
    # Key frequencies appear: none at init, a few (Nanda: 3-6) at the end.
    assert m["num_key_frequencies"][i, 0] == 0
    assert 1 <= m["key_frequencies"][i].sum() <= 8
    # ... fixed from the final model's MLP neurons (Nanda et al.'s notebook):
    # the frequencies its living neurons pick, each neuron mostly explained
    f = m["neuron_frequency"][i]
    np.testing.assert_array_equal(np.flatnonzero(m["key_frequencies"][i]),
                                  np.unique(f[f > 0]))
    assert np.median(m["neuron_frequency_share"][i][f > 0]) > 0.5
    # The Fourier norms concentrate (Gini rises), the key-frequency part of
    # the logits alone fits the data far better than chance (log 31 = 3.43),
    # and removing it destroys the test predictions.
    assert m["gini"][i, -1] > 2 * m["gini"][i, 0]
    assert m["restricted_loss"][i, -1] < 0.5 * np.log(31)
    # Over all p^2 pairs (the paper's curve): the rows' mean, so at every
    # step a mix of the train and test means with weight n_train / N, the
    # same at every step and ~0.9 here (90% of the data).
    tr, te = m["restricted_loss"][i], m["restricted_loss_test"][i]
    sep = np.abs(tr - te) > 1e-2
    w = (m["restricted_loss_all"][i] - te)[sep] / (tr - te)[sep]
    assert sep.sum() >= 3 and np.ptp(w) < 1e-3 and 0.88 < w[0] < 0.92
    assert m["excluded_loss_test"][i, -1] > m["excluded_loss_test"][i, 0]
    assert m["distance_from_init"][i, 0] == 0
    # The whole-network l2 norm is the sweep's recorded param_norm.
    for j, step in enumerate(m["step"]):
      if step in history["eval_step"]:
        k = int(np.searchsorted(history["eval_step"], step))
        np.testing.assert_allclose(m["l2_norm"][i, j],
                                   history["param_norm"][member, k],
                                   rtol=1e-5)
        # The slice toward the final parameters starts at the train loss.
        a0 = int(np.argmin(np.abs(m["landscape_alpha_final"])))
        np.testing.assert_allclose(m["landscape_final"][i, j, a0],
                                   history["train_loss"][member, k],
                                   rtol=1e-4)
    assert 0.5 < m["pca_explained"][i, :2].sum() <= 1.0 + 1e-6
  for name in ("measures.png", "frequency_norms.png", "landscape.png"):
    assert os.path.exists(os.path.join(out, "plots", name))
  # A measure that does not apply, or an unknown one, is refused first
  # (analyze.py turns it into one line and exit 2, as every ConfigError).
  config = Config.from_dict(gio.read_config(run_dir)["config"])
  with pytest.raises(ConfigError, match="--measures=complexity: needs the model.s relu_layers"):
    measures.check_measures(["complexity"], config)
  with pytest.raises(ConfigError, match="--measures=fourir: unknown"):
    measures.check_measures(["fourir"], config)


def test_predict_writes_prediction_json_and_the_heatmaps(run_dir):
  proc = _run(PREDICT + [f"--workdir={run_dir}", "--window=200"])
  assert proc.returncode == 0, proc.stderr
  out = json.load(open(os.path.join(run_dir, "prediction.json")))
  assert out["members"] == 12 and out["window"] == 200 and out["dt"] == 1.0
  assert set(out["features"]) == set(predict.FEATURES)
  for name in ("energy", "highpass_mobility", "relative_drop",
               "final_log_loss"):
    assert -1 <= out["features"][name]["spearman"] <= 1
    assert out["definitions"][name] == predict.FEATURES[name]
  assert out["classifier"]["features"] == list(predict.PAPER_FEATURES)
  # Past the paper: judged on unseen seeds and grid regions, by window.
  unseen = out["unseen"]
  assert [b["window"] for b in unseen["by_window"]] == [25, 50, 100, 200,
                                                       400, 800]
  assert all(b["rows"] == 12 for b in unseen["by_window"])
  assert -1 <= unseen["t_gen_regression"]["spearman"] <= 1
  c = out["classifier"]
  assert c["folds"] == 2 and c["rows"] == 12 and c["dropped"] == 0
  assert 0 <= c["accuracy"] <= 1 and 0 <= c["auc"] <= 1
  # The per-member features are those of the library on the stored losses,
  # and the file's Spearman is theirs against the final accuracy.
  history = gio.read_history(run_dir)
  want = predict.early_features(history["step_train_loss"][:, :200])
  np.testing.assert_allclose([m["energy"] for m in out["per_member"]],
                             want["energy"], rtol=1e-6)
  # The paper's energy, from its formula on the stored losses.
  np.testing.assert_allclose(
      want["energy"],
      (history["step_train_loss"][:, :200].astype(np.float64) ** 2).sum(-1),
      rtol=1e-5)
  summary = gio.read_csv(os.path.join(run_dir, "summary.csv"))
  final = [float(r["final_val_acc"]) for r in summary]
  assert out["features"]["relative_drop"]["spearman"] == predict.spearman(
      want["relative_drop"], final)
  for name in ("prediction.png", "prediction_scatter.png"):
    assert os.path.exists(os.path.join(run_dir, "plots", name))
  # A window with too few recorded steps: one line naming the flag, exit 2.
  bad = _run(PREDICT + [f"--workdir={run_dir}", "--window=5"])
  assert bad.returncode == 2
  line, = bad.stderr.strip().splitlines()
  assert "--window=5" in line
