"""Predicts, from the first steps of the training loss, which members of a finished sweep generalize.

    python experiments/predict.py --workdir=runs/notsawo2023_predict --window=400

Notsawo et al. 2023: the spectral signature of the training loss over the
first few hundred steps correlates with the validation accuracy reached much
later. For every member this computes the early features of
`grokjax.analysis.predict.early_features` from the per-step training loss of
steps [0, window) (history.npz's `step_train_loss`; the run needs
--record_every=1 or a divisor of the window), and scores them against the
outcome in summary.csv: the Spearman correlation of each feature with the
final validation accuracy, each feature's AUC for "generalized" (t_gen
defined), and a logistic-regression classifier cross-validated by leaving one
seed out at a time (accuracy and AUC on held-out seeds only).

Writes `prediction.json` and `plots/prediction.png` (the early feature's
heatmap beside the final validation accuracy's over the swept grid: the
paper's figure 2) into the run directory, and prints a table.
"""

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from absl import flags  # pylint: disable=wrong-import-position
import numpy as np  # pylint: disable=wrong-import-position

import flags_lib  # pylint: disable=wrong-import-position
import grokjax as gj  # pylint: disable=wrong-import-position
from grokjax.analysis import predict  # pylint: disable=wrong-import-position
from grokjax.analysis import spectral  # pylint: disable=wrong-import-position
from grokjax.io import plots  # pylint: disable=wrong-import-position

flags.DEFINE_string("workdir", None, "a finished run directory")
flags.DEFINE_integer("window", 400, "steps [0, window) of the training loss "
                     "the features see")
flags.DEFINE_enum("detrend", "moving_average", list(spectral.DETRENDS),
                  "trend removed from log(loss) before the spectrum")
flags.DEFINE_integer("detrend_window", 25, "moving-average detrend: samples")
flags.DEFINE_integer("detrend_degree", 2, "polynomial detrend: degree")
flags.DEFINE_list("classifier_features", ["log_activity", "mobility",
                                          "complexity"],
                  "features the cross-validated classifier uses")
flags.DEFINE_string("heatmap_feature", "log_activity", "early feature shown "
                    "beside the final validation accuracy")
flags.DEFINE_list("heatmap_axes", [], "two swept columns (y, x) of the "
                  "heatmaps (default: learning_rate, weight_decay when both "
                  "vary, else the first two swept axes)")
flags.DEFINE_string("group", "seed", "members.csv column held out together "
                    "in cross-validation")
FLAGS = flags.FLAGS


def _early_loss(history: dict, window: int, workdir: str
                ) -> tuple[np.ndarray, float]:
  """The per-step train loss over steps [0, window): [E, T] and the sample spacing."""
  if "step_train_loss" not in history or history["record_step"].size == 0:
    raise gj.ConfigError(f"--workdir={workdir}: history.npz has no per-step "
                         "training loss; rerun the sweep with "
                         "--record_every=1")
  steps = history["record_step"]
  keep = steps < window
  if keep.sum() < 8:
    raise gj.ConfigError(f"--window={window}: only {int(keep.sum())} recorded "
                         f"steps below it (recorded every "
                         f"{int(np.diff(steps[:2])[0]) if steps.size > 1 else '?'}"
                         f" steps, up to step {int(steps.max())}); use a "
                         "longer --window or rerun with --record_every=1")
  spacing = np.diff(steps[keep])
  if np.ptp(spacing) != 0:
    raise gj.ConfigError(f"--window={window}: recorded steps are not evenly "
                         "spaced below it; use --record_every=1")
  return history["step_train_loss"][:, keep], float(spacing[0])


def predict_run(workdir: str, window: int, detrend: str = "moving_average",
                detrend_window: int = 25, detrend_degree: int = 2,
                classifier_features=("log_activity", "mobility",
                                     "complexity"),
                group: str = "seed") -> tuple[dict, list[dict]]:
  """(prediction dict, per-member rows with features and outcomes)."""
  for name in ("summary.csv", "history.npz", "members.csv"):
    if not os.path.exists(os.path.join(workdir, name)):
      raise gj.ConfigError(f"--workdir={workdir}: no {name} (the run has not "
                           "finished); finish it with the same command")
  history = gj.io.read_history(workdir)
  summary = gj.io.read_csv(os.path.join(workdir, "summary.csv"))
  members = gj.io.read_csv(os.path.join(workdir, "members.csv"))
  if group not in members[0]:
    raise gj.ConfigError(f"--group: no column {group!r} in members.csv; "
                         f"columns: {', '.join(members[0])}")
  loss, dt = _early_loss(history, window, workdir)
  feats = predict.early_features(loss, dt=dt, detrend_method=detrend,
                                 window=detrend_window, degree=detrend_degree)
  for name in classifier_features:
    if name not in feats:
      raise gj.ConfigError(f"--classifier_features: unknown feature {name!r};"
                           f" features: {', '.join(feats)}")
  final_key = ("final_val_error" if "final_val_error" in summary[0]
               else "final_val_acc")
  final = np.array([gj.io.csv_float(r[final_key]) for r in summary])
  generalized = np.array([np.isfinite(gj.io.csv_float(r["t_gen"]))
                          for r in summary])
  groups = np.array([m[group] for m in members])
  scores = predict.feature_scores(feats, final, generalized)
  x = np.stack([feats[n] for n in classifier_features], axis=1)
  cv = predict.logistic_cv(x, generalized, groups)
  prob = cv.pop("probability")
  result = {
      "workdir": os.path.abspath(workdir), "window": window, "dt": dt,
      "detrend": detrend, "detrend_window": detrend_window,
      "detrend_degree": detrend_degree, "target": final_key,
      "members": len(summary), "generalized": int(generalized.sum()),
      "features": scores,
      "classifier": {"features": list(classifier_features), "group": group,
                     "model": "l2-regularized logistic regression (optax "
                              "Adam), leave-one-group-out", **cv},
  }
  rows = []
  for i, m in enumerate(members):
    row = {k: gj.io.csv_float(v) if k != group else v for k, v in m.items()}
    row.update({k: float(v[i]) for k, v in feats.items()})
    row.update({final_key: float(final[i]), "generalized": bool(
        generalized[i]), "probability": float(prob[i])})
    rows.append(row)
  return result, rows


def main(argv):
  del argv
  if not FLAGS.workdir:
    raise gj.ConfigError("--workdir: give the finished run directory")
  result, rows = predict_run(FLAGS.workdir, FLAGS.window, FLAGS.detrend,
                             FLAGS.detrend_window, FLAGS.detrend_degree,
                             FLAGS.classifier_features, FLAGS.group)
  if FLAGS.heatmap_feature not in result["features"]:
    raise gj.ConfigError(f"--heatmap_feature: unknown feature "
                         f"{FLAGS.heatmap_feature!r}; features: "
                         f"{', '.join(result['features'])}")
  path = os.path.join(FLAGS.workdir, "prediction.json")
  with open(path, "w") as f:
    json.dump({**result, "per_member": rows}, f, indent=2,
              default=lambda v: None if v != v else v)
  members = gj.io.read_csv(os.path.join(FLAGS.workdir, "members.csv"))
  varied = [k for k in members[0] if k != "member"
            and len({m[k] for m in members}) > 1]
  axes = list(FLAGS.heatmap_axes) or (
      ["learning_rate", "weight_decay"] if {"learning_rate", "weight_decay"}
      <= set(varied) else plots.grid_axes(varied))
  if len(axes) == 2 and not set(axes) <= set(members[0]):
    raise gj.ConfigError(f"--heatmap_axes={','.join(axes)}: columns of "
                         f"members.csv are {', '.join(members[0])}")
  print(f"{result['members']} members, {result['generalized']} generalized; "
        f"features from steps [0, {FLAGS.window}) of the training loss")
  print(f"{'feature':16s} {'spearman':>9s} {'auc':>6s}")
  for name, s in result["features"].items():
    print(f"{name:16s} {s['spearman']:9.3f} {s['auc']:6.3f}")
  c = result["classifier"]
  print(f"classifier ({', '.join(c['features'])}), {c['folds']} held-out "
        f"{c['group']}s: accuracy {c['accuracy']:.3f} (majority class "
        f"{c['majority_accuracy']:.3f}), AUC {c['auc']:.3f}")
  written = [path]
  if len(axes) == 2:
    os.makedirs(os.path.join(FLAGS.workdir, "plots"), exist_ok=True)
    fig = os.path.join(FLAGS.workdir, "plots", "prediction.png")
    plots.plot_heatmaps(fig, rows, axes, [
        (FLAGS.heatmap_feature, f"{FLAGS.heatmap_feature} of the loss, steps "
         f"[0, {FLAGS.window})", "viridis"),
        (result["target"], f"median {result['target']} (end of run)",
         "viridis")])
    written.append(fig)
  print("wrote " + ", ".join(written))


if __name__ == "__main__":
  flags_lib.run_main(main)
