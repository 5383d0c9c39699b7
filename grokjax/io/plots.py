"""Figures of a sweep: accuracy/loss curves per member and heatmaps over two swept axes."""

from __future__ import annotations

import math
import os
from typing import Mapping, Sequence

import numpy as np

from grokjax.io import atomic
from grokjax.objective import objective_of_history

MAX_CURVES = 24


def _pyplot():
  import matplotlib  # pylint: disable=import-outside-toplevel
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=import-outside-toplevel
  return plt


def _label(member: Mapping, varied: Sequence[str]) -> str:
  return ", ".join(f"{k}={member[k]:g}" for k in varied) or "run"


def plot_curves(path: str, history: Mapping[str, np.ndarray],
                summary: Sequence[Mapping], varied: Sequence[str]) -> None:
  """Train (dashed) and val (solid) accuracy and loss vs log step; t_mem (o) and t_gen (*) marked.

  With more than 24 members, the first 24 are drawn.
  """
  plt = _pyplot()
  steps = np.maximum(history["eval_step"], 1)
  objective = objective_of_history(history)
  metric = objective.metric
  regression = not objective.higher_is_better  # errors, on a log scale
  fig, (ax_acc, ax_loss) = plt.subplots(1, 2, figsize=(13, 4.8))
  cmap = plt.get_cmap("viridis")
  n = min(len(summary), MAX_CURVES)
  for i in range(n):
    color = cmap(i / max(n - 1, 1))
    row = summary[i]
    ax_acc.plot(steps, history[f"train_{metric}"][i], "--", color=color, lw=1)
    ax_acc.plot(steps, history[f"val_{metric}"][i], "-", color=color, lw=1.4,
                label=_label(row, varied))
    ax_loss.plot(steps, history["train_loss"][i], "--", color=color, lw=1)
    ax_loss.plot(steps, history["val_loss"][i], "-", color=color, lw=1.4)
    mark = (lambda t: np.interp(t, steps, history[f"val_{metric}"][i])
            ) if regression else (lambda t: 1.0)
    if np.isfinite(row["t_mem"]):
      ax_acc.plot(max(row["t_mem"], 1), mark(row["t_mem"]), "o", color=color,
                  ms=5)
    if np.isfinite(row["t_gen"]):
      ax_acc.plot(max(row["t_gen"], 1), mark(row["t_gen"]), "*", color=color,
                  ms=9)
  for ax in (ax_acc, ax_loss):
    ax.set_xscale("log")
    ax.set_xlabel("step")
    ax.grid(alpha=0.3)
  ax_acc.set_ylabel(f"{objective.metric_label} (dashed train, solid val; "
                    "o t_mem, * t_gen)")
  ax_loss.set_ylabel(objective.loss_label)
  if regression:
    ax_acc.set_yscale("log")
  ax_loss.set_yscale("log")
  if n <= 12:
    ax_acc.legend(fontsize=7, loc="center left")
  title = f"{len(summary)} members" + (f" (first {n} shown)"
                                       if n < len(summary) else "")
  fig.suptitle(title)
  fig.tight_layout()
  atomic.savefig(fig, path, dpi=110)
  plt.close(fig)


def grid_axes(varied: Sequence[str]) -> list[str]:
  """The two swept axes a grid heatmap uses: the first two varied ones other than seeds."""
  return [k for k in varied if k not in ("seed", "data_seed")][:2]


def plot_grid(path: str, summary: Sequence[Mapping], axes: Sequence[str]) -> None:
  """Heatmaps of the median t_gen and median final val acc over two swept axes (median over the rest)."""
  final = "final_val_error" if "final_val_error" in summary[0] else \
      "final_val_acc"
  plot_heatmaps(path, summary, axes, [("t_gen", "median t_gen (steps)",
                                       "magma_r"),
                                      (final, f"median {final}", "viridis")])


def plot_heatmaps(path: str, rows: Sequence[Mapping], axes: Sequence[str],
                  panels: Sequence[tuple[str, str, str]]) -> None:
  """One heatmap per (key, title, colormap) panel over two swept axes (y, x).

  Each cell is the median of `key` over the rows at that grid point (seeds
  and any other swept values); a cell whose values are all NaN reads "never".
  """
  plt = _pyplot()
  ya, xa = axes
  ys = sorted({r[ya] for r in rows})
  xs = sorted({r[xa] for r in rows})
  fig, axs = plt.subplots(1, len(panels), figsize=(6 * len(panels), 4.8),
                          squeeze=False)
  for ax, (key, title, cmap) in zip(axs[0], panels):
    grid = np.full((len(ys), len(xs)), np.nan)
    for i, y in enumerate(ys):
      for j, x in enumerate(xs):
        vals = [r[key] for r in rows if r[ya] == y and r[xa] == x]
        if np.isfinite(vals).any():
          grid[i, j] = np.nanmedian(vals)
    im = ax.imshow(grid, origin="lower", cmap=cmap, aspect="auto")
    mid = np.nanmean(grid) if np.isfinite(grid).any() else 0.0
    for i in range(len(ys)):
      for j in range(len(xs)):
        text = "never" if np.isnan(grid[i, j]) else f"{grid[i, j]:.3g}"
        dark = np.isfinite(grid[i, j]) and (grid[i, j] < mid) == (
            not cmap.endswith("_r"))
        ax.text(j, i, text, ha="center", va="center", fontsize=8,
                color="w" if dark else "k")
    ax.set_xticks(range(len(xs)), [f"{x:g}" for x in xs], rotation=45)
    ax.set_yticks(range(len(ys)), [f"{y:g}" for y in ys])
    ax.set_xlabel(xa)
    ax.set_ylabel(ya)
    ax.set_title(title)
    fig.colorbar(im, ax=ax)
  fig.tight_layout()
  atomic.savefig(fig, path, dpi=110)
  plt.close(fig)


def plot_feature_scatter(path: str, x: Sequence[float], y: Sequence[float],
                         xlabel: str, ylabel: str, *, log_x: bool = False,
                         title: str = "") -> None:
  """One point per member: an early feature against an outcome (non-finite points left out)."""
  plt = _pyplot()
  x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
  ok = np.isfinite(x) & np.isfinite(y) & ((x > 0) if log_x else True)
  fig, ax = plt.subplots(figsize=(5.5, 4.2))
  ax.scatter(x[ok], y[ok], s=14, alpha=0.7)
  if log_x:
    ax.set_xscale("log")
  ax.set_xlabel(xlabel)
  ax.set_ylabel(ylabel)
  ax.set_title(title)
  fig.tight_layout()
  atomic.savefig(fig, path, dpi=110)
  plt.close(fig)


def plot_loglog_fit(path: str, fit: dict) -> None:
  """Members and the fitted line of an `analysis.bootstrap_loglog` fit (with "x", "y" names and "data")."""
  plt = _pyplot()
  xs, ys = np.array(fit["data"]["x"]), np.array(fit["data"]["y"])
  ok = np.isfinite(ys) & (ys > 0)
  fig, ax = plt.subplots(figsize=(5.5, 4.2))
  ax.loglog(xs[ok], ys[ok], "o", ms=4, alpha=0.7, label="members")
  if np.isfinite(fit["slope"]):
    line = np.geomspace(xs[ok].min(), xs[ok].max(), 50)
    ax.loglog(line, 10 ** fit["intercept"] * line ** fit["slope"], "-",
              label=f"slope {fit['slope']:.3f} [{fit['slope_lo']:.3f}, "
              f"{fit['slope_hi']:.3f}]")
  ax.set_xlabel(fit["x"])
  ax.set_ylabel(fit["y"])
  ax.set_title(f"{fit['points']} members ({fit['dropped']} dropped), "
               f"{fit['groups']} seeds", fontsize=9)
  ax.grid(alpha=0.3, which="both")
  ax.legend(fontsize=8)
  fig.tight_layout()
  atomic.savefig(fig, path, dpi=110)
  plt.close(fig)


def _save_log_y(plt, fig, ax, path: str, xlabel: str, ylabel: str) -> None:
  """Log y axis, labels, grid and legend; then written to `path` and closed."""
  ax.set_yscale("log")
  ax.set_xlabel(xlabel)
  ax.set_ylabel(ylabel)
  ax.grid(alpha=0.3, which="both")
  ax.legend(fontsize=7)
  fig.tight_layout()
  atomic.savefig(fig, path, dpi=110)
  plt.close(fig)


def plot_power_laws(path: str, fits: list[dict], stats: list[dict],
                    others: list[str]) -> None:
  """Median t_gen (with its seed interval) against the training fraction, and each fitted a r^-gamma + b.

  `fits` are `analysis.power_law_fit` results carrying their `others` values
  and `data`; `stats` rows from `analysis.time_statistics`.
  """
  plt = _pyplot()
  fig, ax = plt.subplots(figsize=(6, 4.5))
  for i, fit in enumerate(fits):
    label = ", ".join(f"{a}={fit[a]:g}" for a in others) or "all"
    pts = [s for s in stats if all(s[a] == fit[a] for a in others)]
    pts.sort(key=lambda s: s["train_fraction"])
    r = np.array([s["train_fraction"] for s in pts])
    med = np.array([s["median_t_gen"] for s in pts])
    lo = np.array([s["t_gen_lo"] for s in pts])
    hi = np.array([s["t_gen_hi"] for s in pts])
    ok = np.isfinite(med)
    color = f"C{i % 10}"
    ax.errorbar(r[ok], med[ok], yerr=[med[ok] - lo[ok], np.where(
        np.isfinite(hi[ok]), hi[ok], med[ok]) - med[ok]], fmt="o",
                color=color, capsize=3, label=f"{label}: median t_gen")
    if math.isfinite(fit["gamma"]):
      line = np.linspace(min(fit["data"]["r"]), max(fit["data"]["r"]), 100)
      ax.plot(line, fit["a"] * line ** -fit["gamma"] + fit["b"], "-",
              color=color, label=f"a r^-{fit['gamma']:.2f} + {fit['b']:.3g} "
              f"(gamma [{fit['gamma_lo']:.2f}, {fit['gamma_hi']:.2f}])")
  _save_log_y(plt, fig, ax, path, "training fraction r",
              "steps to generalize (t_gen)")


def plot_slingshots(path: str, steps_T: np.ndarray, loss_ExT: np.ndarray,
                    norm_ExT: np.ndarray, onsets: list[list[int]],
                    t_gen: np.ndarray) -> None:
  """Train loss and last-layer norm of up to 4 members (those with slingshots first), onsets dotted, t_gen green."""
  plt = _pyplot()
  shown = [i for i, o in enumerate(onsets) if o][:4] or list(
      range(min(4, len(onsets))))
  fig, axs = plt.subplots(len(shown), 1, figsize=(9, 2.6 * len(shown)),
                          squeeze=False)
  for ax, i in zip(axs[:, 0], shown):
    ax.semilogy(steps_T, loss_ExT[i], lw=0.6, color="C0")
    ax.set_ylabel("train loss", color="C0")
    twin = ax.twinx()
    twin.plot(steps_T, norm_ExT[i], lw=0.8, color="C3")
    twin.set_ylabel("last-layer norm", color="C3")
    for o in onsets[i]:
      ax.axvline(o, color="k", ls=":", lw=0.8)
    if np.isfinite(t_gen[i]):
      ax.axvline(t_gen[i], color="C2", lw=1.2)
    ax.set_title(f"member {i}: {len(onsets[i])} slingshots (dotted), t_gen "
                 "(green)", fontsize=9)
  axs[-1, 0].set_xlabel("step")
  fig.tight_layout()
  atomic.savefig(fig, path, dpi=110)
  plt.close(fig)


def _mark_times(ax, t_mem: float, t_gen: float, color) -> None:
  if np.isfinite(t_mem):
    ax.axvline(max(t_mem, 1), color=color, ls="--", lw=0.7)
  if np.isfinite(t_gen):
    ax.axvline(max(t_gen, 1), color=color, ls="-", lw=0.9, alpha=0.6)


def plot_measures(path: str, measures: Mapping[str, np.ndarray],
                  names: Sequence[str], t_mem: np.ndarray,
                  t_gen: np.ndarray) -> None:
  """Each [E, S] measure vs step (symlog x), a line per member, its t_mem (dashed) and t_gen (solid) marked."""
  plt = _pyplot()
  steps = measures["step"]
  cols = min(4, len(names))
  rows = -(-len(names) // cols)
  fig, axs = plt.subplots(rows, cols, figsize=(3.6 * cols, 2.7 * rows),
                          squeeze=False)
  members = measures["members"][:MAX_CURVES]
  for ax, name in zip(axs.ravel(), names):
    for i, m in enumerate(members):
      color = f"C{i % 10}"
      ax.plot(steps, measures[name][i], marker=".", ms=3, lw=0.9,
              color=color, label=f"member {m}")
      _mark_times(ax, t_mem[i], t_gen[i], color)
    ax.set_xscale("symlog", linthresh=max(1, int(steps[1]) if len(steps) > 1
                                          else 1))
    ax.set_xlim(left=0)
    positive = measures[name][np.isfinite(measures[name])]
    if positive.size and positive.min() > 0 and positive.max() > 30 * positive.min():
      ax.set_yscale("log")
    ax.set_title(name, fontsize=9)
    ax.tick_params(labelsize=7)
  for ax in axs.ravel()[len(names):]:
    ax.axis("off")
  axs[0, 0].legend(fontsize=6)
  fig.suptitle("progress measures vs step: t_mem dashed, t_gen solid",
               fontsize=10)
  fig.tight_layout()
  atomic.savefig(fig, path, dpi=110)
  plt.close(fig)


def plot_frequency_norms(path: str, measures: Mapping[str, np.ndarray],
                         t_mem: np.ndarray, t_gen: np.ndarray) -> None:
  """Embedding norm per frequency (rows) over the saved steps (columns) for up to 4 members; key frequencies ticked."""
  plt = _pyplot()
  shown = list(range(min(4, len(measures["members"]))))
  fig, axs = plt.subplots(1, len(shown), figsize=(4.2 * len(shown), 3.6),
                          squeeze=False)
  steps = measures["step"]
  for ax, i in zip(axs[0], shown):
    norms = measures["frequency_norms"][i].T  # [F, S]
    ax.imshow(norms, aspect="auto", origin="lower", cmap="viridis",
              interpolation="nearest")
    ticks = np.linspace(0, len(steps) - 1, min(6, len(steps))).astype(int)
    ax.set_xticks(ticks, [str(steps[t]) for t in ticks], fontsize=7)
    key = np.flatnonzero(measures["key_frequencies"][i])
    ax.set_yticks(key, [str(k) for k in key], fontsize=7)
    for t, style in ((t_mem[i], "--"), (t_gen[i], "-")):
      if np.isfinite(t):
        ax.axvline(np.interp(t, steps, np.arange(len(steps))), color="w",
                   ls=style, lw=0.8)
    ax.set_title(f"member {measures['members'][i]}: |embedding| per "
                 "frequency", fontsize=9)
    ax.set_xlabel("saved step", fontsize=8)
  axs[0, 0].set_ylabel("frequency k (key ticked)", fontsize=8)
  fig.tight_layout()
  atomic.savefig(fig, path, dpi=110)
  plt.close(fig)


def plot_landscape(path: str, measures: Mapping[str, np.ndarray]) -> None:
  """Train loss along theta_t + a (theta_final - theta_t) and a random direction, first member, a few steps."""
  plt = _pyplot()
  steps = measures["step"]
  picks = np.unique(np.linspace(0, len(steps) - 1, min(6, len(steps))).astype(
      int))
  fig, axs = plt.subplots(1, 2, figsize=(9, 3.4))
  for ax, name in zip(axs, ("final", "random")):
    alphas = measures[f"landscape_alpha_{name}"]
    for c, j in enumerate(picks):
      ax.semilogy(alphas, measures[f"landscape_{name}"][0, j], color=f"C{c}",
                  label=f"step {steps[j]}")
    ax.set_xlabel("a" if name == "random" else "a (1 = final parameters)")
    ax.set_title(f"member {measures['members'][0]}: toward the final params"
                 if name == "final" else "filter-normalized random direction",
                 fontsize=9)
  axs[0].set_ylabel("train loss")
  axs[0].legend(fontsize=7)
  fig.tight_layout()
  atomic.savefig(fig, path, dpi=110)
  plt.close(fig)


def plot_algebras(path: str, points: Sequence[Mapping], steps: int) -> None:
  """t_gen per member by algebra category, against total mode rank and sparsity; never = x at the top."""
  plt = _pyplot()
  t = np.array([p["t_gen"] for p in points], np.float64)
  never = ~np.isfinite(t)
  top = steps * 1.15
  shown = np.where(never, top, t)
  cats = sorted({p["category"] for p in points})
  fig, axs = plt.subplots(1, 3, figsize=(13, 3.8), sharey=True)
  xs = [np.array([cats.index(p["category"]) for p in points], np.float64),
        np.array([p["mode_rank_1"] + p["mode_rank_2"] + p["mode_rank_3"]
                  for p in points], np.float64),
        np.array([p["sparsity"] for p in points], np.float64)]
  jitter = np.random.default_rng(0).uniform(-0.12, 0.12, len(points))
  for ax, x, label in zip(axs, xs, ("category (~ = property fails)",
                                    "total mode rank of C", "sparsity of C")):
    x = x + jitter * (1 if label.startswith("category") else
                      0.3 if "rank" in label else 0.02)
    ax.scatter(x[~never], shown[~never], s=18, color="C0")
    ax.scatter(x[never], shown[never], s=22, marker="x", color="C3")
    ax.set_xlabel(label)
    ax.axhline(steps, color="0.7", lw=0.8, ls=":")
  axs[0].set_xticks(range(len(cats)), cats, fontsize=8)
  axs[0].set_ylabel("t_gen (x: never within the run)")
  fig.tight_layout()
  atomic.savefig(fig, path, dpi=110)
  plt.close(fig)


def plot_times(path: str, summary: Sequence[Mapping], axis: str) -> None:
  """t_mem and t_gen of every member against one swept axis, with their medians over the rest.

  A member that never generalized is drawn as a hollow triangle at the top
  (the median counts it as +inf: a median past the end of the run is not
  drawn), so "did not grok" is visible instead of missing.
  """
  plt = _pyplot()
  xs = sorted({float(r[axis]) for r in summary})
  fig, ax = plt.subplots(figsize=(6, 4.5))
  number = lambda v: math.nan if v in ("", None) else float(v)  # a CSV cell
  t_mem = np.array([number(r["t_mem"]) for r in summary])
  t_gen = np.array([number(r["t_gen"]) for r in summary])
  x = np.array([float(r[axis]) for r in summary])
  finite = t_gen[np.isfinite(t_gen)]
  if not finite.size:  # nothing generalized: scale to the memorization times
    finite = t_mem[np.isfinite(t_mem)]
  top = (finite.max() if finite.size else math.nan) * 1.5
  top = top if np.isfinite(top) and top > 0 else 1.0
  ax.scatter(x, t_mem, marker="o", color="C0", alpha=0.5, label="t_mem")
  ok = np.isfinite(t_gen)
  ax.scatter(x[ok], t_gen[ok], marker="*", s=60, color="C3", alpha=0.6,
             label="t_gen")
  if (~ok).any():
    ax.scatter(x[~ok], np.full((~ok).sum(), top), marker="^",
               facecolors="none", edgecolors="C3",
               label="t_gen: not within the run")
  for values, color, name in ((t_mem, "C0", "t_mem"), (t_gen, "C3", "t_gen")):
    med = [np.median(np.where(np.isfinite(values[x == v]), values[x == v],
                              np.inf)) for v in xs]
    ax.plot(xs, [m if np.isfinite(m) else np.nan for m in med], "-",
            color=color, label=f"median {name}")
  _save_log_y(plt, fig, ax, path, axis, "step")


def write_plots(workdir: str, history: Mapping[str, np.ndarray],
                summary: Sequence[Mapping], varied: Sequence[str]) -> list[str]:
  """Writes plots/curves.png and plots/times.png (one swept axis besides the seeds) or plots/grid.png (two); returns the paths."""
  os.makedirs(os.path.join(workdir, "plots"), exist_ok=True)
  paths = [os.path.join(workdir, "plots", "curves.png")]
  plot_curves(paths[0], history, summary, varied)
  axes = grid_axes(varied)
  if len(axes) == 1:
    paths.append(os.path.join(workdir, "plots", "times.png"))
    plot_times(paths[1], summary, axes[0])
  if len(axes) == 2:
    paths.append(os.path.join(workdir, "plots", "grid.png"))
    plot_grid(paths[1], summary, axes)
  return paths


def _median_curve(curves: Sequence[tuple[np.ndarray, np.ndarray]]):
  """(steps, median) over curves evaluated at the same steps; None when the
  grids differ (nothing bold is drawn then)."""
  if not curves or any(not np.array_equal(s, curves[0][0]) for s, _ in curves):
    return None
  return curves[0][0], np.median(np.stack([v for _, v in curves]), axis=0)


def plot_side_by_side(path: str, ours: Mapping[str, np.ndarray],
                      theirs: Sequence[Sequence[Mapping[str, float]]],
                      title: str) -> None:
  """grokjax's and the peer's own code's train (dashed) and validation
  (solid) accuracy on one log-step axis: each seed a thin line, the median
  over seeds bold (issue 31's figure per row). `ours` is a run's history
  (eval_step, train_acc, val_acc [M, T]); `theirs` one curve per seed, as a
  driver's peer.json holds it (points with `step` and the accuracies under
  the driver's names: train_acc / train_accuracy, val_acc / test_acc /
  test_accuracy)."""
  plt = _pyplot()
  fig, ax = plt.subplots(figsize=(7.5, 4.5))

  def pick(point, names):
    return next((point[k] for k in names if k in point), np.nan)

  sides = {"grokjax": ("tab:blue", {
      "train": [(ours["eval_step"], v) for v in ours["train_acc"]],
      "val": [(ours["eval_step"], v) for v in ours["val_acc"]]})}
  names = {"train": ("train_acc", "train_accuracy"),
           "val": ("val_acc", "test_acc", "test_accuracy", "val_accuracy")}
  sides["their code"] = ("tab:orange", {
      split: [(np.array([p["step"] for p in curve], float),
               np.array([pick(p, keys) for p in curve], float))
              for curve in theirs] for split, keys in names.items()})
  for side, (color, splits) in sides.items():
    for split, curves in splits.items():
      style = "--" if split == "train" else "-"
      for steps, values in curves:
        ax.plot(np.maximum(steps, 1), values, style, color=color, lw=0.6,
                alpha=0.5)
      median = _median_curve(curves)
      if median is not None:
        ax.plot(np.maximum(median[0], 1), median[1], style, color=color,
                lw=2.2, label=f"{side}, {split} (median of {len(curves)})")
  ax.set_xscale("log")
  ax.set_xlabel("step")
  ax.set_ylabel("accuracy (dashed train, solid validation/test)")
  ax.set_ylim(-0.02, 1.02)
  ax.grid(alpha=0.3)
  ax.legend(fontsize=7, loc="center left")
  ax.set_title(title, fontsize=9)
  fig.tight_layout()
  atomic.savefig(fig, path, dpi=110)
  plt.close(fig)
