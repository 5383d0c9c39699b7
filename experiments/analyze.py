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
snapshots: train it with `--keep_checkpoints=K`), the progress measures of
`grokjax.analysis.measures` over every saved step of the chosen
`--members`: `measures.npz` (names in that module), `plots/measures.png`
(each measure vs step with t_mem dashed and t_gen solid),
`plots/frequency_norms.png` and `plots/landscape.png`.

    python experiments/analyze.py --workdir=runs/nanda_measures \
        --measures=fourier,norms,distance,embedding,pca
"""

import json
import math
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from absl import flags  # pylint: disable=wrong-import-position
import numpy as np  # pylint: disable=wrong-import-position

import flags_lib  # pylint: disable=wrong-import-position
import grokjax as gj  # pylint: disable=wrong-import-position
from grokjax.io import plots  # pylint: disable=wrong-import-position

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
flags.DEFINE_integer("lanczos_steps", 20, "Lanczos iterations of the Hessian "
                     "measure")
flags.DEFINE_integer("pca_components", 5, "principal components of the "
                     "trajectory measure")
FLAGS = flags.FLAGS

SEEDS = ("seed", "data_seed")


def _power_law_fits(summary: list[dict], varied: list[str],
                    num_samples: int) -> list[dict]:
  """t_gen(r) fits per combination of the swept values other than r and the seeds."""
  others = [a for a in varied if a not in SEEDS + ("train_fraction",)]
  combos = sorted({tuple(r[a] for a in others) for r in summary})
  fits = []
  for combo in combos:
    rows = [r for r in summary if tuple(r[a] for a in others) == combo]
    fit = gj.analysis.power_law_fit(
        np.array([r["train_fraction"] for r in rows]),
        np.array([r["t_gen"] for r in rows], np.float64),
        np.array([r["seed"] for r in rows]), num_samples=num_samples)
    fits.append({**dict(zip(others, combo)), **fit,
                 "data": {"r": [r["train_fraction"] for r in rows],
                          "t_gen": [r["t_gen"] for r in rows]}})
  return fits


def _slingshots(out: str, history: dict, summary: list[dict], config
                ) -> list[str]:
  """slingshots.json and plots/slingshots.png; returns the paths."""
  steps = history["record_step"]
  dt = int(steps[1] - steps[0])
  onsets = gj.analysis.slingshot_onsets(
      steps, history["step_train_loss"], history["step_last_layer_norm"],
      window=FLAGS.slingshot_window, spike_factor=FLAGS.spike_factor)
  t_gen = np.array([r["t_gen"] for r in summary], np.float64)
  # "At an onset": within the slingshot window plus one eval interval.
  tolerance = FLAGS.slingshot_window * dt + (config.eval_every
                                             if config.eval_schedule ==
                                             "linear" else 0)
  at = gj.analysis.grokking_at_onsets(onsets, t_gen, tolerance)
  report = {"rule": {"window_samples": FLAGS.slingshot_window,
                     "spike_factor": FLAGS.spike_factor,
                     "record_every": dt, "tolerance_steps": tolerance},
            "members": [{"member": i, "onsets": o, "count": len(o),
                         "t_gen": None if not np.isfinite(t) else t,
                         "generalized_at_onset": None if np.isnan(a)
                         else bool(a)}
                        for i, (o, t, a) in enumerate(zip(onsets, t_gen, at))]}
  path = os.path.join(out, "slingshots.json")
  with open(path, "w") as f:
    json.dump(report, f, indent=2)
  fig_path = os.path.join(out, "plots", "slingshots.png")
  plots.plot_slingshots(fig_path, steps, history["step_train_loss"],
                        history["step_last_layer_norm"], onsets, t_gen)
  counts = [len(o) for o in onsets]
  grokked = at[np.isfinite(at)]
  print(f"  slingshots: {sum(counts)} onsets in {sum(c > 0 for c in counts)}"
        f"/{len(counts)} members; generalized at an onset: "
        f"{int(grokked.sum())}/{grokked.size} of the members with both")
  return [path, fig_path]


def _int_list(name: str, values: list[str]) -> list[int] | None:
  try:
    return [int(v) for v in values] if values else None
  except ValueError:
    raise gj.ConfigError(f"--{name}={','.join(values)}: give integers") \
        from None


# The measures printed per member (all are in measures.npz and the plot).
_SHOWN = ("gini", "restricted_loss", "excluded_loss", "excluded_loss_test",
          "l2_norm", "effective_rank", "med", "hessian_max",
          "local_complexity")


def _measures(out: str, summary: list[dict]) -> list[str]:
  """measures.npz and its plots; returns the paths."""
  m = gj.analysis.compute_measures(
      FLAGS.workdir, FLAGS.measures, _int_list("members", FLAGS.members),
      _int_list("measure_steps", FLAGS.measure_steps),
      lanczos_steps=FLAGS.lanczos_steps, pca_components=FLAGS.pca_components,
      log=print)
  path = os.path.join(out, "measures.npz")
  gj.analysis.measures.write_measures(path, m)
  written = [path]
  t_mem = np.array([summary[i]["t_mem"] for i in m["members"]], np.float64)
  t_gen = np.array([summary[i]["t_gen"] for i in m["members"]], np.float64)
  names = gj.analysis.measures.scalar_measures(m)
  if names:
    written.append(os.path.join(out, "plots", "measures.png"))
    plots.plot_measures(written[-1], m, names, t_mem, t_gen)
  if "frequency_norms" in m:
    written.append(os.path.join(out, "plots", "frequency_norms.png"))
    plots.plot_frequency_norms(written[-1], m, t_mem, t_gen)
  if "landscape_final" in m:
    written.append(os.path.join(out, "plots", "landscape.png"))
    plots.plot_landscape(written[-1], m)
  steps = m["step"]
  for i, member in enumerate(m["members"]):
    parts = [f"  member {member}:"]
    if "key_frequencies" in m:
      parts.append("key frequencies "
                   f"{np.flatnonzero(m['key_frequencies'][i]).tolist()};")
    for name in [n for n in _SHOWN if n in names]:
      v = m[name][i]
      parts.append(f"{name} {v[0]:.3g} -> {v[-1]:.3g}")
    if "pca_explained" in m:
      parts.append(f"PCA 2 modes {m['pca_explained'][i, :2].sum():.1%}")
    print(" ".join(parts) + f" (steps {steps[0]} -> {steps[-1]})")
  return written


def main(argv):
  del argv
  stored = flags_lib.stored_run(FLAGS.workdir,
                                "the run directory to analyze")
  overrides = {k: getattr(FLAGS, k) for k in (
      "mem_threshold", "gen_threshold", "phase_threshold", "phase_gap",
      "mem_error", "gen_error") if getattr(FLAGS, k) is not None}
  config = gj.Config.from_dict(stored["config"]).replace(**overrides)
  if FLAGS.measures:  # bad names or a run without snapshots: say so first
    gj.analysis.measures.check_measures(FLAGS.measures, config)
    gj.io.snapshot_steps(FLAGS.workdir)
  history, diverged, finished = gj.io.RunDir(FLAGS.workdir).history_so_far()
  members = gj.io.read_csv(os.path.join(FLAGS.workdir, "members.csv"))
  members = [{k: gj.io.csv_float(v) for k, v in m.items() if k != "member"}
             for m in members]
  summary = gj.analysis.summarize_config(history, members, diverged, config)
  varied = [k for k in members[0] if len({m[k] for m in members}) > 1]
  axes = [a for a in varied if a not in SEEDS]
  stats = gj.analysis.time_statistics(summary, axes,
                                      num_samples=FLAGS.bootstrap)
  out = FLAGS.out or os.path.join(FLAGS.workdir, "analysis")
  os.makedirs(os.path.join(out, "plots"), exist_ok=True)
  gj.io.write_csv(os.path.join(out, "summary.csv"), summary)
  gj.io.write_csv(os.path.join(out, "stats.csv"), stats)
  written = [os.path.join(out, n) for n in ("summary.csv", "stats.csv")]
  written += gj.io.write_plots(out, history, summary, varied)
  objective = gj.objective.objective_of(config)
  thresholds = objective.thresholds(config)
  fits = {"thresholds": dict(zip(("mem", "gen"), thresholds)),
          "finished": finished}
  fractions = sorted({r["train_fraction"] for r in summary})
  if len(fractions) >= 3 and objective.higher_is_better:
    others = [a for a in axes if a != "train_fraction"]
    fits["power_law"] = _power_law_fits(summary, varied, FLAGS.bootstrap)
    path = os.path.join(out, "plots", "power_law.png")
    plots.plot_power_laws(path, fits["power_law"], stats, others)
    written.append(path)
  if FLAGS.loglog_x:
    for name in FLAGS.loglog_x + [FLAGS.loglog_y]:
      if name not in summary[0]:
        raise gj.ConfigError(f"--loglog_x/--loglog_y: no column {name!r}; "
                             f"columns: {', '.join(summary[0])}")
    xs = gj.analysis.column_product(summary, FLAGS.loglog_x)
    ys = np.array([r[FLAGS.loglog_y] for r in summary], np.float64)
    fit = gj.analysis.bootstrap_loglog(xs, ys, [r["seed"] for r in summary],
                                       num_samples=FLAGS.bootstrap)
    fits["loglog"] = {"x": "*".join(FLAGS.loglog_x), "y": FLAGS.loglog_y,
                      **fit, "data": {"x": xs.tolist(), "y": ys.tolist()}}
    path = os.path.join(out, "plots", "loglog.png")
    plots.plot_loglog_fit(path, fits["loglog"])
    written.append(path)
  if "step_last_layer_norm" in history and history["record_step"].size > 1:
    written += _slingshots(out, history, summary, config)
  if FLAGS.measures:
    written += _measures(out, summary)
  with open(os.path.join(out, "fits.json"), "w") as f:
    json.dump(fits, f, indent=2, default=lambda v: None if v != v else v)
  written.append(os.path.join(out, "fits.json"))

  when = lambda v: f"{v:g}" if math.isfinite(v) else "never"
  state = "finished" if finished else "still running (partial)"
  print(f"{FLAGS.workdir}: {len(summary)} members, {state}; thresholds "
        f"mem {thresholds[0]:g}, gen {thresholds[1]:g}")
  for s in stats:
    point = ", ".join(f"{a}={s[a]:g}" for a in axes) or "all members"
    print(f"  {point}: generalized {s['generalized']}/{s['members']}; median "
          f"t_gen {when(s['median_t_gen'])} [{when(s['t_gen_lo'])}, "
          f"{when(s['t_gen_hi'])}], delay {when(s['median_delay'])}")
  others = [a for a in axes if a != "train_fraction"]
  for fit in fits.get("power_law", []):
    point = ", ".join(f"{a}={fit[a]:g}" for a in others) or "all members"
    print(f"  {point}: t_gen = {fit['a']:.3g} r^-{fit['gamma']:.3f} + "
          f"{fit['b']:.3g}: "
          f"gamma [{fit['gamma_lo']:.3f}, {fit['gamma_hi']:.3f}] "
          f"({fit['points']} members, {fit['dropped']} never)")
  if "loglog" in fits:
    ll = fits["loglog"]
    print(f"  {ll['y']} ~ ({ll['x']})^slope: slope {ll['slope']:.3f} "
          f"[{ll['slope_lo']:.3f}, {ll['slope_hi']:.3f}]")
  print("wrote " + ", ".join(written))


if __name__ == "__main__":
  flags_lib.run_main(main)
