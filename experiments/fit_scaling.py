"""Fits a log-log scaling law to a finished run directory's summary.csv.

    python experiments/fit_scaling.py --workdir=runs/notsawo2025_sparse \\
        --x=learning_rate,reg_strength --y=delay

Fits log10(y) = slope * log10(prod of the --x columns) + c over every member
(e.g. the delay t_gen - t_mem against alpha * beta: Notsawo et al. 2025 predict
slope -1), with a bootstrap interval that resamples whole seeds. Writes
`fit_<y>_vs_<x>.json` and `plots/fit_<y>_vs_<x>.png` into the run directory,
and prints one line. `--expect=-1 --tolerance=0.1` also checks the slope
(exit status 1 when outside).
"""

import json
import os
import sys


from absl import flags
import numpy as np

from grokjax import cli
import grokjax as gj

flags.DEFINE_string("workdir", None, "a run directory with summary.csv")
flags.DEFINE_list("x", ["learning_rate", "reg_strength"], "summary columns "
                  "whose product is the abscissa")
flags.DEFINE_string("y", "delay", "summary column to fit (delay, t_gen, "
                    "t_mem, final_val_error, ...)")
flags.DEFINE_string("group", "seed", "column resampled by the bootstrap")
flags.DEFINE_integer("bootstrap", 2000, "bootstrap samples")
flags.DEFINE_float("expect", None, "expected slope (prints PASS/MISS)")
flags.DEFINE_float("tolerance", 0.1, "allowed |slope - expect|")
FLAGS = flags.FLAGS


def fit_run(workdir: str, x: list[str], y: str, group: str = "seed",
            bootstrap: int = 2000) -> dict:
  """The fit of `y` against the product of `x` over the run's members."""
  path = gj.io.RunDir(workdir).file("summary.csv")
  if not os.path.exists(path):
    raise gj.ConfigError(f"--workdir={workdir}: no summary.csv (the run has "
                         "not finished); finish it with the same command")
  rows = gj.io.read_csv(path)
  for name in list(x) + [y, group]:
    if name not in rows[0]:
      raise gj.ConfigError(f"--x/--y/--group: no column {name!r} in {path}; "
                           f"columns: {', '.join(rows[0])}")
  xs = gj.analysis.column_product(rows, x)  # swept columns: never empty
  ys = np.array([gj.io.csv_float(r[y]) for r in rows])
  if not (np.isfinite(xs) & np.isfinite(ys)).any():
    raise gj.ConfigError(f"--y={y}: no member of {workdir} has a finite "
                         f"{y} (nothing generalized?); there is nothing to "
                         "fit")
  fit = gj.analysis.bootstrap_loglog(xs, ys, [r[group] for r in rows],
                                     num_samples=bootstrap)
  return {"x": "*".join(x), "y": y, **fit,
          "data": {"x": xs.tolist(), "y": ys.tolist()}}


def main(argv):
  del argv
  if not FLAGS.workdir:
    raise gj.ConfigError("--workdir: give the run directory to fit")
  fit = fit_run(FLAGS.workdir, FLAGS.x, FLAGS.y, FLAGS.group, FLAGS.bootstrap)
  name = f"fit_{FLAGS.y}_vs_{'_'.join(FLAGS.x)}"
  gj.io.atomic.write_text(os.path.join(FLAGS.workdir, name + ".json"),
                          json.dumps(fit, indent=2))
  os.makedirs(os.path.join(FLAGS.workdir, "plots"), exist_ok=True)
  gj.io.plots.plot_loglog_fit(os.path.join(FLAGS.workdir, "plots",
                                           name + ".png"), fit)
  line = (f"{fit['y']} ~ ({fit['x']})^slope: slope {fit['slope']:.3f} "
          f"[{fit['slope_lo']:.3f}, {fit['slope_hi']:.3f}] "
          f"({100 * fit['level']:.0f}% bootstrap over {fit['groups']} seeds), "
          f"R^2 {fit['r2']:.3f}, {fit['points']} members, {fit['dropped']} "
          "dropped")
  print(line)
  print(f"wrote {os.path.join(FLAGS.workdir, name)}.json and plots/{name}.png")
  if FLAGS.expect is not None:
    ok = abs(fit["slope"] - FLAGS.expect) <= FLAGS.tolerance
    print(f"{'PASS' if ok else 'MISS'}: expected {FLAGS.expect:g} +- "
          f"{FLAGS.tolerance:g}")
    if not ok:
      sys.exit(1)


if __name__ == "__main__":
  cli.run_main(main)
