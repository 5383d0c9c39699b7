"""One figure comparing eval curves of several run directories (median over members, min-max band).

    python experiments/compare_runs.py --workdirs=runs/l1,runs/l2,runs/nuc \\
        --metrics=val_acc,param_norm --out=runs/norms.png

Each metric gets a panel: per run, the median over its members against the
step (log scale), a band from the members' min to max, and the median t_gen
marked. Used for Notsawo et al. 2025's figure: under l1 the l2 norm rises
after generalization.
"""

import os


from absl import flags
import numpy as np

from grokjax import cli
import grokjax as gj

flags.DEFINE_list("workdirs", None, "run directories to compare")
flags.DEFINE_list("labels", None, "a label per run (default: its "
                  "--regularizer and --reg_strength)")
flags.DEFINE_list("metrics", ["train_acc", "val_acc", "param_norm"],
                  "history.npz eval fields, one panel each")
flags.DEFINE_string("out", None, "output .png path")
FLAGS = flags.FLAGS


def _label(workdir: str) -> str:
  config = gj.io.RunDir(workdir).read_config()["config"]
  strength = ",".join(f"{v:g}" for v in config.get("reg_strength", []))
  return f"{config.get('regularizer', 'none')} {strength}"


def main(argv):
  del argv
  if not FLAGS.workdirs or not FLAGS.out:
    raise gj.ConfigError("--workdirs and --out: give the runs and the figure "
                         "path")
  if not FLAGS.metrics:
    raise gj.ConfigError("--metrics: give at least one history field "
                         "(e.g. val_acc,param_norm)")
  for workdir in FLAGS.workdirs:
    cli.stored_run(workdir)
  labels = FLAGS.labels or [_label(w) for w in FLAGS.workdirs]
  if len(labels) != len(FLAGS.workdirs):
    raise gj.ConfigError(f"--labels: {len(labels)} labels for "
                         f"{len(FLAGS.workdirs)} runs")
  import matplotlib  # pylint: disable=import-outside-toplevel
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=import-outside-toplevel
  fig, axs = plt.subplots(1, len(FLAGS.metrics),
                          figsize=(4.6 * len(FLAGS.metrics), 3.8),
                          squeeze=False)
  for workdir, label in zip(FLAGS.workdirs, labels):
    run = gj.io.RunDir(workdir)
    rows, history = run.summary(), run.history()
    t_gen = gj.analysis.median_time(np.array([gj.io.csv_float(r["t_gen"]) for r in rows]))
    steps = np.maximum(history["eval_step"], 1)
    for ax, metric in zip(axs[0], FLAGS.metrics):
      if metric not in history:
        raise gj.ConfigError(f"--metrics: {workdir} has no {metric!r}; fields:"
                             f" {', '.join(sorted(history))}")
      values = history[metric]
      line, = ax.plot(steps, np.nanmedian(values, axis=0), label=label)
      ax.fill_between(steps, np.nanmin(values, axis=0),
                      np.nanmax(values, axis=0), color=line.get_color(),
                      alpha=0.2)
      if np.isfinite(t_gen):
        ax.axvline(t_gen, color=line.get_color(), ls=":", lw=1)
  for ax, metric in zip(axs[0], FLAGS.metrics):
    ax.set_xscale("log")
    ax.set_xlabel("step (dotted: median t_gen)")
    ax.set_ylabel(metric)
    ax.grid(alpha=0.3)
  axs[0][0].legend(fontsize=8)
  fig.tight_layout()
  os.makedirs(os.path.dirname(os.path.abspath(FLAGS.out)), exist_ok=True)
  gj.io.atomic.savefig(fig, FLAGS.out, dpi=110)
  print(f"wrote {FLAGS.out}")


if __name__ == "__main__":
  cli.run_main(main)
