"""What `experiments/analyze.py` computes, importable in Colab.

    report = gj.analysis.report.analyze_run("runs/power2022",
                                            gen_threshold=0.95)
    report.stats        # per grid point: generalized count, median t_gen, ...

`analyze_run` recomputes a run's summary, grokking-time statistics, scaling
fits, slingshots and (with `measures`) progress measures at any thresholds,
from a finished run or one still training, and writes them under
``<workdir>/analysis/`` (see experiments/analyze.py for the files).
The early-loss prediction (experiments/predict.py) is
`grokjax.analysis.prediction`.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from typing import Callable, Sequence

import numpy as np

from grokjax.analysis import grokking, measures as measures_lib, measuring
from grokjax.analysis import scaling, slingshot
from grokjax.config import Config, ConfigError
from grokjax.grid import Grid
from grokjax.io import atomic, plots, rundir
from grokjax.io import tensorboard as tb_lib
from grokjax.io.rundir import RunDir, csv_float
from grokjax.io.snapshots import snapshot_steps
from grokjax.objective import objective_of

SEEDS = ("seed", "data_seed")
THRESHOLDS = ("mem_threshold", "gen_threshold", "phase_threshold",
              "phase_gap", "mem_error", "gen_error")


@dataclasses.dataclass
class Report:
  """What `analyze_run` computed and wrote."""
  config: Config  # the run's, with the thresholds used
  summary: list[dict]
  stats: list[dict]
  fits: dict
  finished: bool
  written: list[str]
  axes: list[str]  # the swept axes other than the seeds


def power_law_fits(summary: list[dict], varied: list[str],
                   num_samples: int) -> list[dict]:
  """t_gen(r) = a r^-gamma + b per combination of the swept values other than r and the seeds."""
  others = [a for a in varied if a not in SEEDS + ("train_fraction",)]
  combos = sorted({tuple(r[a] for a in others) for r in summary})
  fits = []
  for combo in combos:
    rows = [r for r in summary if tuple(r[a] for a in others) == combo]
    fit = scaling.power_law_fit(
        np.array([r["train_fraction"] for r in rows]),
        np.array([r["t_gen"] for r in rows], np.float64),
        np.array([r["seed"] for r in rows]), num_samples=num_samples)
    fits.append({**dict(zip(others, combo)), **fit,
                 "data": {"r": [r["train_fraction"] for r in rows],
                          "t_gen": [r["t_gen"] for r in rows]}})
  return fits


def summary_loglog_fit(summary: list[dict], x: Sequence[str], y: str,
               num_samples: int) -> dict:
  """Log-log slope of column `y` against the product of columns `x`, with a seed bootstrap."""
  for name in list(x) + [y]:
    if name not in summary[0]:
      raise ConfigError(f"--loglog_x/--loglog_y: no column {name!r}; "
                        f"columns: {', '.join(summary[0])}")
  xs = scaling.column_product(summary, list(x))
  ys = np.array([r[y] for r in summary], np.float64)
  fit = scaling.bootstrap_loglog(xs, ys, [r["seed"] for r in summary],
                                 num_samples=num_samples)
  return {"x": "*".join(x), "y": y, **fit,
          "data": {"x": xs.tolist(), "y": ys.tolist()}}


def slingshot_report(out: str, history: dict, summary: list[dict],
                     config: Config, window: int = 100,
                     spike_factor: float = 10.0,
                     log: Callable[[str], None] = print) -> list[str]:
  """slingshots.json and plots/slingshots.png (Thilak et al. 2022); returns the paths."""
  steps = history["record_step"]
  dt = int(steps[1] - steps[0])
  onsets = slingshot.slingshot_onsets(
      steps, history["step_train_loss"], history["step_last_layer_norm"],
      window=window, spike_factor=spike_factor)
  t_gen = np.array([r["t_gen"] for r in summary], np.float64)
  # "At an onset": within the slingshot window plus one eval interval.
  tolerance = window * dt + (config.eval_every
                             if config.eval_schedule == "linear" else 0)
  at = slingshot.grokking_at_onsets(onsets, t_gen, tolerance)
  report = {"rule": {"window_samples": window, "spike_factor": spike_factor,
                     "min_growth": slingshot.MIN_GROWTH,
                     "plateau_ratio": slingshot.PLATEAU_RATIO,
                     "record_every": dt, "tolerance_steps": tolerance},
            "members": [{"member": i, "onsets": o, "count": len(o),
                         "t_gen": None if not np.isfinite(t) else t,
                         "generalized_at_onset": None if np.isnan(a)
                         else bool(a)}
                        for i, (o, t, a) in enumerate(zip(onsets, t_gen, at))]}
  path = os.path.join(out, "slingshots.json")
  atomic.write_text(path, json.dumps(report, indent=2))
  fig_path = os.path.join(out, "plots", "slingshots.png")
  plots.plot_slingshots(fig_path, steps, history["step_train_loss"],
                        history["step_last_layer_norm"], onsets, t_gen)
  counts = [len(o) for o in onsets]
  grokked = at[np.isfinite(at)]
  log(f"  slingshots: {sum(counts)} onsets in {sum(c > 0 for c in counts)}"
      f"/{len(counts)} members; generalized at an onset: "
      f"{int(grokked.sum())}/{grokked.size} of the members with both")
  return [path, fig_path]


def measures_report(workdir: str, out: str, summary: list[dict],
                    names: Sequence[str], members=None, steps=None,
                    log: Callable[[str], None] = print,
                    **options) -> list[str]:
  """measures.npz and each measure's plots; prints the shown measures per member."""
  m = measuring.compute_measures(workdir, names, members, steps, log=log,
                                    **options)
  path = os.path.join(out, "measures.npz")
  measuring.write_measures(path, m)
  written = [path]
  t_mem = np.array([summary[i]["t_mem"] for i in m["members"]], np.float64)
  t_gen = np.array([summary[i]["t_gen"] for i in m["members"]], np.float64)
  scalars = measuring.scalar_measures(m)
  folder = os.path.join(out, "plots")
  if scalars:
    written.append(os.path.join(folder, "measures.png"))
    plots.plot_measures(written[-1], m, scalars, t_mem, t_gen)
  chosen = [measures_lib.REGISTRY[n] for n in measures_lib.MEASURES
            if n in measures_lib.check_measures(names, _config_of(workdir))]
  for measure in chosen:
    if measure.plot is not None:
      written.append(measure.plot(folder, m, t_mem, t_gen))
  shown = [n for measure in chosen for n in measure.shown if n in scalars]
  for i, member in enumerate(m["members"]):
    parts = [f"  member {member}:"]
    if "key_frequencies" in m:
      parts.append("key frequencies "
                   f"{np.flatnonzero(m['key_frequencies'][i]).tolist()};")
    for name in shown:
      v = m[name][i]
      parts.append(f"{name} {v[0]:.3g} -> {v[-1]:.3g}")
    if "pca_explained" in m:
      parts.append(f"PCA 2 modes {m['pca_explained'][i, :2].sum():.1%}")
    log(" ".join(parts) + f" (steps {m['step'][0]} -> {m['step'][-1]})")
  return written


def _config_of(workdir: str) -> Config:
  return RunDir(workdir).config()


def analyze_run(workdir: str, out: str | None = None, *,
                loglog_x: Sequence[str] = (), loglog_y: str = "t_gen",
                bootstrap: int = 1000, slingshot_window: int = 100,
                spike_factor: float = 10.0, measures: Sequence[str] = (),
                members: Sequence[int] | None = None,
                measure_steps: Sequence[int] | None = None,
                measure_options: dict | None = None,
                tensorboard: bool = False,
                log: Callable[[str], None] = print,
                **thresholds) -> Report:
  """Summary, statistics, fits, slingshots and measures of a run, written under `out`.

  `thresholds`: any of THRESHOLDS, overriding the run's (None: the run's).
  `measure_options`: the measures' own settings, keyword options of
  `measuring.compute_measures` (e.g. lanczos_steps, complexity_radius).
  `tensorboard`: also write the run's TensorBoard event files (what a sweep
  writes under <workdir>/tensorboard) under `<out>/tensorboard`, for runs
  from before them or from another machine.
  """
  run = RunDir(workdir)
  overrides = {k: v for k, v in thresholds.items() if v is not None}
  unknown = set(overrides) - set(THRESHOLDS)
  if unknown:
    raise ConfigError(f"analyze_run: unknown setting {sorted(unknown)[0]}; "
                      f"thresholds are {', '.join(THRESHOLDS)}")
  config = run.config().replace(**overrides)
  if measures:  # bad names or a run without snapshots: say so first
    measures_lib.check_measures(measures, config)
    snapshot_steps(workdir)
  history, diverged, finished = run.history_so_far()
  rows = [{k: csv_float(v) for k, v in m.items() if k != "member"}
          for m in run.members()]
  summary = grokking.summarize_config(history, rows, diverged, config)
  varied = [k for k in rows[0] if len({m[k] for m in rows}) > 1]
  axes = [a for a in varied if a not in SEEDS]
  stats = grokking.time_statistics(summary, axes, num_samples=bootstrap)
  out = out or os.path.join(workdir, "analysis")
  os.makedirs(os.path.join(out, "plots"), exist_ok=True)
  rundir.write_csv(os.path.join(out, "summary.csv"), summary)
  rundir.write_csv(os.path.join(out, "stats.csv"), stats)
  written = [os.path.join(out, n) for n in ("summary.csv", "stats.csv")]
  written += plots.write_plots(out, history, summary, varied)
  objective = objective_of(config)
  fits = {"thresholds": dict(zip(("mem", "gen"),
                                 objective.thresholds(config))),
          "finished": finished}
  fractions = sorted({r["train_fraction"] for r in summary})
  if len(fractions) >= 3 and objective.higher_is_better:
    fits["power_law"] = power_law_fits(summary, varied, bootstrap)
    written.append(os.path.join(out, "plots", "power_law.png"))
    plots.plot_power_laws(written[-1], fits["power_law"], stats,
                          [a for a in axes if a != "train_fraction"])
  if loglog_x:
    fits["loglog"] = summary_loglog_fit(summary, loglog_x, loglog_y, bootstrap)
    written.append(os.path.join(out, "plots", "loglog.png"))
    plots.plot_loglog_fit(written[-1], fits["loglog"])
  if "step_last_layer_norm" in history and history["record_step"].size > 1:
    written += slingshot_report(out, history, summary, config,
                                slingshot_window, spike_factor, log)
  if measures:
    written += measures_report(workdir, out, summary, measures, members,
                               measure_steps, log, **(measure_options or {}))
  if tensorboard:
    tb_lib.write_run(out, history, rows, Grid.from_config(config).varied,
                     config.steps, summary)
    written.append(os.path.join(out, tb_lib.DIRNAME))
  atomic.write_text(os.path.join(out, "fits.json"), json.dumps(
      fits, indent=2, default=lambda v: None if v != v else v))
  written.append(os.path.join(out, "fits.json"))
  return Report(config, summary, stats, fits, finished, written, axes)


def print_report(report: Report, workdir: str,
                 log: Callable[[str], None] = print) -> None:
  """The lines experiments/analyze.py prints after its analysis."""
  when = lambda v: f"{v:g}" if math.isfinite(v) else "never"
  state = "finished" if report.finished else "still running (partial)"
  mem, gen = objective_of(report.config).thresholds(report.config)
  axes = report.axes
  log(f"{workdir}: {len(report.summary)} members, {state}; thresholds "
      f"mem {mem:g}, gen {gen:g}")
  for s in report.stats:
    point = ", ".join(f"{a}={s[a]:g}" for a in axes) or "all members"
    log(f"  {point}: generalized {s['generalized']}/{s['members']}; median "
        f"t_gen {when(s['median_t_gen'])} [{when(s['t_gen_lo'])}, "
        f"{when(s['t_gen_hi'])}], delay {when(s['median_delay'])}")
  others = [a for a in axes if a != "train_fraction"]
  for fit in report.fits.get("power_law", []):
    point = ", ".join(f"{a}={fit[a]:g}" for a in others) or "all members"
    log(f"  {point}: t_gen = {fit['a']:.3g} r^-{fit['gamma']:.3f} + "
        f"{fit['b']:.3g}: "
        f"gamma [{fit['gamma_lo']:.3f}, {fit['gamma_hi']:.3f}] "
        f"({fit['points']} members, {fit['dropped']} never)")
  if "loglog" in report.fits:
    ll = report.fits["loglog"]
    log(f"  {ll['y']} ~ ({ll['x']})^slope: slope {ll['slope']:.3f} "
        f"[{ll['slope_lo']:.3f}, {ll['slope_hi']:.3f}]")
  log("wrote " + ", ".join(report.written))
