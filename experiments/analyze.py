"""Recomputes a run's summary, grokking-time statistics, scaling fits and plots without retraining.

    python experiments/analyze.py --workdir=runs/power2022 [--gen_threshold=0.95]

Works on a finished run and on one still training or preempted (from the
per-chunk records; members of a group still training count as not yet
generalized). Thresholds default to the run's own and can be changed here
(e.g. --gen_threshold=0.95 for Grokfast's measure) without touching the run:
everything goes to `--out` (default `<workdir>/analysis/`):
- `summary.csv`: one row per member (as the sweep's, at these thresholds);
- `stats.csv`: per grid point (every swept axis but the seeds), members,
  generalized, the median t_mem / t_gen / delay (never counting as +inf) and
  a bootstrap interval over the seeds;
- `fits.json`: with 3 or more training fractions, t_gen(r) = a r^-gamma + b
  per combination of the other swept values (Notsawo et al. 2023's fit;
  Power et al.'s curve), and with `--loglog_x`, a log-log slope of
  `--loglog_y` against the product of those columns (e.g. the Omnigrok 1/wd
  law: --loglog_x=weight_decay --loglog_y=t_gen, slope -1);
- `slingshots.json` (with per-step last-layer norms): each member's slingshot
  onsets (Thilak et al. 2022; the rule is in grokjax/analysis/slingshot.py)
  and whether it generalized at one;
- `plots/`: curves.png, grid.png (two swept axes), power_law.png, loglog.png,
  slingshots.png.

With `--measures=fourier,norms,...` (or `all`; the run needs parameter
snapshots: train it with `--snapshot_count=K`), the progress measures of
`grokjax.analysis.measures` over every saved step of the chosen
`--members`: `measures.npz` (names in that module), `plots/measures.png`
(each measure vs step with t_mem dashed and t_gen solid),
`plots/frequency_norms.png` and `plots/landscape.png`.

    python experiments/analyze.py --workdir=runs/nanda_measures \
        --measures=fourier,norms,distance,embedding,pca
"""



from absl import flags

from grokjax import cli
import grokjax as gj
from grokjax.analysis import report

flags.DEFINE_string("workdir", None, "a run directory (finished or running)")
flags.DEFINE_string("out", None, "output folder (default <workdir>/analysis)")
for _name, _help in (("mem_threshold", "train accuracy that defines t_mem"),
                     ("gen_threshold", "validation accuracy that defines "
                      "t_gen"),
                     ("phase_threshold", "accuracy of Liu et al.'s phases"),
                     ("phase_gap", "steps between train and val beyond which "
                      "a member is 'grokking'"),
                     ("mem_error", "linear tasks: train error of t_mem"),
                     ("gen_error", "linear tasks: test error of t_gen")):
  flags.DEFINE_float(_name, None, _help + " (default: the run's)")
flags.DEFINE_list("loglog_x", [], "summary columns whose product is the "
                  "abscissa of a log-log fit (empty: none)")
flags.DEFINE_string("loglog_y", "t_gen", "summary column of the log-log fit")
flags.DEFINE_integer("bootstrap", 1000, "bootstrap samples for intervals")
flags.DEFINE_integer("slingshot_window", 100, "slingshot rule: recorded "
                     "samples before/after a spike (analysis.slingshot)")
flags.DEFINE_float("spike_factor", 10.0, "slingshot rule: loss jump over its "
                   "recent minimum that counts as a spike")
flags.DEFINE_list("measures", [], "progress measures over the saved steps: "
                  "any of " + ", ".join(gj.analysis.MEASURES) + ", or all "
                  "(empty: none)")
flags.DEFINE_list("members", [], "run member indices for --measures "
                  "(empty: all)")
flags.DEFINE_list("measure_steps", [], "saved steps for --measures (empty: "
                  "all)")
flags.DEFINE_bool("tensorboard", False, "also write the run's TensorBoard "
                  "event files under <out>/tensorboard (runs from before "
                  "them, or from another machine)")
cli.define_settings_flags(gj.analysis.measures.settings_blocks())
FLAGS = flags.FLAGS


def _int_list(name: str, values: list[str]) -> list[int] | None:
  try:
    return [int(v) for v in values] if values else None
  except ValueError:
    raise gj.ConfigError(f"--{name}={','.join(values)}: give integers") \
        from None


def main(argv):
  del argv
  cli.stored_run(FLAGS.workdir, "the run directory to analyze")
  result = report.analyze_run(
      FLAGS.workdir, FLAGS.out, loglog_x=FLAGS.loglog_x,
      loglog_y=FLAGS.loglog_y, bootstrap=FLAGS.bootstrap,
      slingshot_window=FLAGS.slingshot_window,
      spike_factor=FLAGS.spike_factor, measures=FLAGS.measures,
      members=_int_list("members", FLAGS.members),
      measure_steps=_int_list("measure_steps", FLAGS.measure_steps),
      measure_options={name: FLAGS[name].value for name in
                       gj.settings.names_of(
                           *gj.analysis.measures.settings_blocks())},
      tensorboard=FLAGS.tensorboard,
      **{k: getattr(FLAGS, k) for k in report.THRESHOLDS})
  report.print_report(result, FLAGS.workdir)


if __name__ == "__main__":
  cli.run_main(main)
