"""Early-loss prediction of a run, importable in Colab: what `experiments/predict.py` computes.

    result, rows = gj.analysis.prediction.predict_run("runs/spectral", 400)

`predict_run` scores the early-loss features of every member (the spectral
signature of Notsawo et al. 2023, `grokjax.analysis.predict`) against its
outcome; `prediction_report` writes prediction.json and its plots.
"""

from __future__ import annotations

import json
import os
from typing import Callable, Sequence

import numpy as np

from grokjax.analysis import predict
from grokjax.config import ConfigError
from grokjax.io import atomic, plots
from grokjax.io.rundir import RunDir, csv_float
from grokjax.objective import objective_of


def early_loss(history: dict, window: int, workdir: str
               ) -> tuple[np.ndarray, float]:
  """The per-step train loss over steps [0, window): [E, T] and the sample spacing."""
  if "step_train_loss" not in history or history["record_step"].size == 0:
    raise ConfigError(f"--workdir={workdir}: history.npz has no per-step "
                      "training loss; rerun the sweep with --record_every=1")
  steps = history["record_step"]
  if window > steps.max() + 1:
    raise ConfigError(f"--window={window}: the run recorded steps up to "
                      f"{int(steps.max())}; use --window <= "
                      f"{int(steps.max()) + 1}")
  keep = steps < window
  if keep.sum() < 8:
    raise ConfigError(f"--window={window}: only {int(keep.sum())} recorded "
                      f"steps below it (recorded every "
                      f"{int(np.diff(steps[:2])[0]) if steps.size > 1 else '?'}"
                      f" steps, up to step {int(steps.max())}); use a "
                      "longer --window or rerun with --record_every=1")
  spacing = np.diff(steps[keep])
  if np.ptp(spacing) != 0:
    raise ConfigError(f"--window={window}: recorded steps are not evenly "
                      "spaced below it; use --record_every=1")
  return history["step_train_loss"][:, keep], float(spacing[0])


def predict_run(workdir: str, window: int, detrend: str = "moving_average",
                detrend_window: int = 25, detrend_degree: int = 2,
                classifier_features=predict.PAPER_FEATURES,
                group: str = "seed") -> tuple[dict, list[dict]]:
  """(prediction dict, per-member rows with features and outcomes) of a finished run."""
  run = RunDir(workdir)
  for name in ("summary.csv", "history.npz", "members.csv"):
    if not os.path.exists(run.file(name)):
      raise ConfigError(f"--workdir={workdir}: no {name} (the run has not "
                        "finished); finish it with the same command")
  history, summary, members = run.history(), run.summary(), run.members()
  if group not in members[0]:
    raise ConfigError(f"--group: no column {group!r} in members.csv; "
                      f"columns: {', '.join(members[0])}")
  loss, dt = early_loss(history, window, workdir)
  feats = predict.early_features(loss, dt=dt, detrend_method=detrend,
                                 window=detrend_window, degree=detrend_degree)
  for name in classifier_features:
    if name not in feats:
      raise ConfigError(f"--classifier_features: unknown feature {name!r};"
                        f" features: {', '.join(feats)}")
  final_key = f"final_val_{objective_of(run.config()).metric}"
  final = np.array([csv_float(r[final_key]) for r in summary])
  generalized = np.array([np.isfinite(csv_float(r["t_gen"]))
                          for r in summary])
  seeds = np.array([m[group] for m in members])
  scores = predict.feature_scores(feats, final, generalized, seeds)
  x = np.stack([feats[n] for n in classifier_features], axis=1)
  cv = predict.logistic_cv(x, generalized,
                           seeds)
  prob = cv.pop("probability")
  result = {
      "workdir": os.path.abspath(workdir), "window": window, "dt": dt,
      "detrend": detrend, "detrend_window": detrend_window,
      "detrend_degree": detrend_degree, "target": final_key,
      "members": len(summary), "generalized": int(generalized.sum()),
      "features": scores,
      "definitions": {k: predict.FEATURES[k] for k in feats},
      "classifier": {"features": list(classifier_features), "group": group,
                     "model": "l2-regularized logistic regression (optax "
                              "Adam), leave-one-group-out", **cv},
      "unseen": _beyond_the_paper(run, history, summary, members, group,
                                  window, classifier_features, generalized,
                                  seeds, detrend, detrend_window,
                                  detrend_degree),
  }
  rows = []
  for i, m in enumerate(members):
    row = {k: csv_float(v) if k != group else v for k, v in m.items()}
    row.update({k: float(v[i]) for k, v in feats.items()})
    row.update({final_key: float(final[i]), "generalized": bool(
        generalized[i]), "probability": float(prob[i])})
    rows.append(row)
  return result, rows


# Early windows (steps) at which the unseen-seed-and-region classifier is judged.
EARLY_WINDOWS = (25, 50, 100, 200, 400, 800, 1600, 3200, 6400)


def _beyond_the_paper(run, history, summary, members, group, window,
                      feature_names, generalized, seeds, detrend,
                      detrend_window, detrend_degree) -> dict:
  """The classifier and a t_gen regression judged on unseen seeds AND grid regions, over growing windows."""
  others = [k for k in members[0] if k not in ("member", group, "data_seed")
            and len({m[k] for m in members}) > 1]
  if len(set(seeds.tolist())) < 2 or not others:
    return {"skipped": "needs 2 or more seeds and a swept axis besides them"}
  regions = predict.grid_regions(np.array([[csv_float(m[k]) for k in others]
                                           for m in members]))
  if len(set(regions.tolist())) < 2:
    return {"skipped": "the swept grid has a single region"}
  steps = run.config().steps
  recorded = int(history["record_step"].max()) + 1
  windows = sorted({w for w in EARLY_WINDOWS if w <= recorded} | {window})
  by_window = []
  for w in windows:
    try:
      loss, dt = early_loss(history, w, run.path)
    except ConfigError:
      continue  # too few recorded steps below this window
    feats = predict.early_features(loss, dt=dt, detrend_method=detrend,
                                   window=detrend_window,
                                   degree=detrend_degree)
    x = np.stack([feats[n] for n in feature_names], axis=1)
    cv = predict.unseen_cv(x, generalized, seeds, regions)
    by_window.append({"window": w, "fraction_of_budget": w / steps,
                      "auc": cv["auc"], "accuracy": cv["accuracy"],
                      "majority_accuracy": cv["majority_accuracy"],
                      "rows": cv["rows"]})
    if w == window:
      t_gen = np.array([csv_float(r["t_gen"]) for r in summary])
      reg = predict.t_gen_regression(x, t_gen, steps, seeds, regions)
  # A window counts only where most members are judged (a collapsed loss
  # leaves the log-loss features undefined).
  first = next((b for b in by_window if np.isfinite(b["auc"])
                and b["auc"] >= 0.9 and b["rows"] >= len(members) / 2), None)
  return {"regions": {"axes": others, "blocks_per_axis": 2,
                      "count": len(set(regions.tolist()))},
          "features": list(feature_names),
          "folds": "one per (seed, region), trained on other seeds in other "
                   "regions",
          "by_window": by_window,
          "earliest_auc_0.9": (None if first is None else
                               {"window": first["window"],
                                "fraction_of_budget":
                                    first["fraction_of_budget"]}),
          "t_gen_regression": {
              "model": "ridge on standardized features -> log t_gen "
                       "(never generalized: censored at the run's length)",
              "window": window, "spearman": reg["spearman"],
              "rows": reg["rows"], "censored": reg["censored"]}}


def prediction_report(workdir: str, result: dict, rows: list[dict],
                      heatmap_feature: str = "energy",
                      heatmap_axes: Sequence[str] = (),
                      log: Callable[[str], None] = print) -> list[str]:
  """prediction.json and plots/prediction.png (the feature's heatmap beside the outcome's); prints a table."""
  if heatmap_feature not in result["features"]:
    raise ConfigError(f"--heatmap_feature: unknown feature "
                      f"{heatmap_feature!r}; features: "
                      f"{', '.join(result['features'])}")
  path = os.path.join(workdir, "prediction.json")
  atomic.write_text(path, json.dumps({**result, "per_member": rows},
                                      indent=2,
                                      default=lambda v: None if v != v else v))
  members = RunDir(workdir).members()
  varied = [k for k in members[0] if k != "member"
            and len({m[k] for m in members}) > 1]
  axes = list(heatmap_axes) or (
      ["learning_rate", "weight_decay"] if {"learning_rate", "weight_decay"}
      <= set(varied) else plots.grid_axes(varied))
  if len(axes) == 2 and not set(axes) <= set(members[0]):
    raise ConfigError(f"--heatmap_axes={','.join(axes)}: columns of "
                      f"members.csv are {', '.join(members[0])}")
  log(f"{result['members']} members, {result['generalized']} generalized; "
      f"features from steps [0, {result['window']}) of the training loss")
  log(f"{'feature':22s} {'spearman':>8s} {'(95% over ' + result['classifier']['group'] + 's)':>18s} {'auc':>6s} {'(95%)':>14s}")
  for name, s in result["features"].items():
    log(f"{name:22s} {s['spearman']:8.3f} [{s.get('spearman_lo', np.nan):6.3f}, "
        f"{s.get('spearman_hi', np.nan):6.3f}]   {s['auc']:6.3f} "
        f"[{s.get('auc_lo', np.nan):5.3f}, {s.get('auc_hi', np.nan):5.3f}]")
  c = result["classifier"]
  log(f"classifier ({', '.join(c['features'])}), {c['folds']} held-out "
      f"{c['group']}s: accuracy {c['accuracy']:.3f} (majority class "
      f"{c['majority_accuracy']:.3f}), AUC {c['auc']:.3f}")
  u = result["unseen"]
  if "skipped" in u:
    log(f"unseen seeds and regions: skipped ({u['skipped']})")
  else:
    log(f"on unseen {c['group']}s AND grid regions ({u['regions']['count']} "
        f"regions of {', '.join(u['regions']['axes'])}): AUC by window "
        + ", ".join(f"{b['window']}: {b['auc']:.2f}" for b in u["by_window"]))
    e = u["earliest_auc_0.9"]
    log("  AUC >= 0.9 " + ("never" if e is None else
                            f"from {e['window']} steps "
                            f"({100 * e['fraction_of_budget']:.1f}% of the "
                            "budget)")
        + f"; t_gen regression (window {u['t_gen_regression']['window']}): "
        f"Spearman {u['t_gen_regression']['spearman']:.3f} with the measured "
        f"t_gen ({u['t_gen_regression']['censored']} censored)")
  written = [path]
  os.makedirs(os.path.join(workdir, "plots"), exist_ok=True)
  window = f"[0, {result['window']})"
  if len(axes) == 2:
    # Notsawo et al. 2023's figure: (a) the energy of the first steps' train
    # loss over the lr x wd grid, (b) the validation accuracy at the end.
    fig = os.path.join(workdir, "plots", "prediction.png")
    plots.plot_heatmaps(fig, rows, axes, [
        (heatmap_feature, f"{heatmap_feature} of the train loss, steps "
         f"{window}", "viridis"),
        (result["target"], f"median {result['target']} (end of run)",
         "viridis")])
    written.append(fig)
  fig = os.path.join(workdir, "plots", "prediction_scatter.png")
  plots.plot_feature_scatter(
      fig, [r[heatmap_feature] for r in rows],
      [r[result["target"]] for r in rows],
      f"{heatmap_feature} of the train loss, steps {window}",
      f"{result['target']} (end of run)",
      log_x=heatmap_feature in ("energy", "highpass_activity"),
      title=f"Spearman {result['features'][heatmap_feature]['spearman']:.2f}"
            f" over {result['members']} members")
  written.append(fig)
  return written
