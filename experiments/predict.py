"""Predicts, from the first steps of the training loss, which members of a finished sweep generalize.

    python experiments/predict.py --workdir=runs/notsawo2023_predict --window=400

Notsawo et al. 2023: the spectral signature of the training loss over the
first few hundred steps correlates with the validation accuracy reached much
later. For every member this computes the early features of
`grokjax.analysis.predict.early_features` from the per-step training loss of
steps [0, window) (history.npz's `step_train_loss`; the run needs
--record_every=1 or a divisor of the window): the paper's energy m0 (Hjorth's
activity of the raw loss, dt * sum_t L(t)^2); Hjorth's activity, mobility
and complexity of the detrended window (``highpass_*``); and two baselines,
the loss level at the window's end and its relative drop. It
scores them against the outcome in summary.csv: the Spearman correlation of
each feature with the final validation accuracy, each feature's AUC for
"generalized" (t_gen defined), and a logistic-regression classifier
cross-validated by leaving one seed out at a time (accuracy and AUC on
held-out seeds only).

Past the paper, `prediction.json`'s ``unseen`` section judges the same
classifier only on members whose seed AND grid region it never saw, for
windows of 25 to 6400 steps (the earliest reaching AUC 0.9, as a fraction of
the budget), and a ridge regression of log t_gen by its Spearman
correlation with the measured t_gen.

Writes `prediction.json` (each feature's scores with seed-bootstrap
intervals, and its definition),
`plots/prediction.png` (the paper's figure: the energy of steps [0, window)
as a heatmap over the lr x wd grid beside the final validation accuracy's; when two
axes vary) and `plots/prediction_scatter.png` (the feature against the final
validation accuracy, one point per member) into the run directory, and
prints a table.
"""



from absl import flags

from grokjax import cli
import grokjax as gj
from grokjax.analysis import prediction
from grokjax.analysis import predict
from grokjax.analysis import spectral

flags.DEFINE_string("workdir", None, "a finished run directory")
flags.DEFINE_integer("window", 400, "steps [0, window) of the training loss "
                     "the features see")
flags.DEFINE_enum("detrend", "moving_average", list(spectral.DETRENDS),
                  "highpass_* variant features only: trend removed from "
                  "log(loss) before their spectrum")
flags.DEFINE_integer("detrend_window", 25, "highpass_* variant, "
                     "moving-average detrend: samples")
flags.DEFINE_integer("detrend_degree", 2, "highpass_* variant, polynomial "
                     "detrend: degree")
flags.DEFINE_list("classifier_features", list(predict.PAPER_FEATURES),
                  "features the cross-validated classifier uses (default: "
                  "the paper's, of the raw loss)")
flags.DEFINE_string("heatmap_feature", "energy", "early feature shown "
                    "beside the final validation accuracy (default: the "
                    "paper's energy m0 of the raw loss)")
flags.DEFINE_list("heatmap_axes", [], "two swept columns (y, x) of the "
                  "heatmaps (default: learning_rate, weight_decay when both "
                  "vary, else the first two swept axes)")
flags.DEFINE_string("group", "seed", "members.csv column held out together "
                    "in cross-validation")
FLAGS = flags.FLAGS


def main(argv):
  del argv
  if not FLAGS.workdir:
    raise gj.ConfigError("--workdir: give the finished run directory")
  result, rows = prediction.predict_run(
      FLAGS.workdir, FLAGS.window, FLAGS.detrend, FLAGS.detrend_window,
      FLAGS.detrend_degree, FLAGS.classifier_features, FLAGS.group)
  written = prediction.prediction_report(FLAGS.workdir, result, rows,
                                     FLAGS.heatmap_feature,
                                     FLAGS.heatmap_axes)
  print("wrote " + ", ".join(written))


if __name__ == "__main__":
  cli.run_main(main)
