"""When does a member memorize, generalize, and grok? Times and phases from eval histories.

All functions take eval histories `[E, Te]` with their steps `[Te]` and return
per-member arrays [E]; a time that never happens is NaN.
"""

from __future__ import annotations

from typing import Mapping

import numpy as np

from grokjax.objective import Objective, objective_of, objective_of_history

PHASES = ("comprehension", "grokking", "memorization", "confusion",
          "unmeasured")  # the last: --eval_sets=val measures no train metric


def first_step_reaching(steps_T: np.ndarray, values_ExT: np.ndarray,
                        threshold: float) -> np.ndarray:
  """First step at which `values >= threshold`, per member; NaN if never (NaNs never count)."""
  values = np.nan_to_num(np.asarray(values_ExT, np.float64), nan=-np.inf)
  hit = values >= threshold
  first = np.argmax(hit, axis=1)
  return np.where(hit.any(axis=1), np.asarray(steps_T, np.float64)[first],
                  np.nan)


def first_step_below(steps_T: np.ndarray, values_ExT: np.ndarray,
                     threshold: float) -> np.ndarray:
  """First step at which `values <= threshold`, per member; NaN if never (NaNs never count)."""
  return first_step_reaching(steps_T, -np.asarray(values_ExT, np.float64),
                             -threshold)


def grokking_times(history: Mapping[str, np.ndarray], mem_threshold: float = 0.99,
                   gen_threshold: float = 0.99,
                   objective: Objective | None = None) -> dict[str, np.ndarray]:
  """t_mem (train acc >= mem_threshold), t_gen (val acc >= gen_threshold), delay = t_gen - t_mem.

  Power et al. 2022 report the median over seeds of t_gen at 0.99; Grokfast
  (Lee et al. 2024) uses gen_threshold = 0.95. For a linear task (a history
  with ``train_error``/``val_error``) the thresholds are errors to get below:
  t_mem when the measurements are fit, t_gen when a* is recovered (Notsawo et
  al. 2025 use 1e-3 for both). `objective`: the history's own by default.
  """
  objective = objective or objective_of_history(history)
  first = (first_step_reaching if objective.higher_is_better
           else first_step_below)
  steps, metric = history["eval_step"], objective.metric
  t_mem = first(steps, history[f"train_{metric}"], mem_threshold)
  t_gen = first(steps, history[f"val_{metric}"], gen_threshold)
  return {"t_mem": t_mem, "t_gen": t_gen, "delay": t_gen - t_mem}


def notsawo_times(history: Mapping[str, np.ndarray], low: float = 0.0,
                  high: float = 1.0) -> dict[str, np.ndarray]:
  """t1..t4 of Notsawo et al. 2023: train acc > low, train acc >= high, val acc > low, val acc >= high.

  The paper's definitions are the defaults: t1 = first step with train
  accuracy > 0, t2 = train accuracy 100%, t3 = validation accuracy > 0,
  t4 = validation accuracy 100% (TARGETS.md; the seed's slides: "Confusion
  t in [0, t1], Memorization [t2, t3], Comprehension [t3, inf)"). At
  initialization a classifier is already above 0 (chance is
  1/num_classes), so t1 and t3 are often the first eval; `low` (e.g. 0.05)
  and `high` (e.g. 0.99) are the common relaxations, never the default.
  """
  steps = history["eval_step"]
  above_low = np.nextafter(low, np.inf)  # ">= the next float" is "> low".
  return {"t1": first_step_reaching(steps, history["train_acc"], above_low),
          "t2": first_step_reaching(steps, history["train_acc"], high),
          "t3": first_step_reaching(steps, history["val_acc"], above_low),
          "t4": first_step_reaching(steps, history["val_acc"], high)}


def median_time(times: np.ndarray) -> float:
  """Median of event times over seeds, a member that never got there counting as +inf.

  So a median is finite only when more than half the members reached the event
  (Power et al. 2022 plot the median steps to 99% validation accuracy).
  """
  t = np.where(np.isnan(times), np.inf, np.asarray(times, np.float64))
  return float(np.median(t)) if t.size else float("nan")


def group_medians(summary: list[dict], axes: list[str],
                  keys: tuple[str, ...] = ("t_mem", "t_gen", "delay")
                  ) -> list[dict]:
  """Per combination of `axes` values (e.g. everything swept but the seed): member count, generalized count, median_time of each key."""
  groups: dict[tuple, list[dict]] = {}
  for row in summary:
    groups.setdefault(tuple(row[a] for a in axes), []).append(row)
  out = []
  for values, rows in groups.items():
    out.append({**dict(zip(axes, values)), "members": len(rows),
                "generalized": sum(bool(np.isfinite(r["t_gen"])) for r in rows),
                **{f"median_{k}": median_time(np.array([r[k] for r in rows],
                                                       np.float64))
                   for k in keys}})
  return out


def time_statistics(summary: list[dict], axes: list[str],
                    keys: tuple[str, ...] = ("t_mem", "t_gen", "delay"), *,
                    num_samples: int = 1000, level: float = 0.95,
                    seed: int = 0) -> list[dict]:
  """`group_medians` plus a bootstrap interval of each median over the grid point's members (seeds).

  The members at a grid point are resampled with replacement and the
  `median_time` of each sample taken (never = +inf), so an interval's upper
  end is inf when resamples where most members never got there are likely.
  Adds ``<key>_lo`` and ``<key>_hi`` (central `level` percentiles).
  """
  rng = np.random.default_rng(seed)
  tail = 100 * (1 - level) / 2
  out = group_medians(summary, axes, keys)
  for row in out:
    rows = [r for r in summary if all(r[a] == row[a] for a in axes)]
    for key in keys:
      t = np.array([r[key] for r in rows], np.float64)
      t = np.where(np.isnan(t), np.inf, t)
      draws = t[rng.integers(0, len(t), (num_samples, len(t)))]
      meds = np.median(draws, axis=1)
      lo, hi = (float(np.percentile(meds, tail, method="lower")),
                float(np.percentile(meds, 100 - tail, method="higher")))
      row[f"{key}_lo"], row[f"{key}_hi"] = lo, hi
  return out


def phases(history: Mapping[str, np.ndarray], threshold: float = 0.9,
           gap: float = 1000, gen_threshold: float | None = None) -> np.ndarray:
  """Learning phase per member (Liu et al. 2022, "Towards understanding grokking").

  With t_tr, t_val the first steps where train / val accuracy reach `threshold`
  (val: `gen_threshold` when given; a linear task's errors get below them):
  comprehension if t_val - t_tr <= gap; grokking if t_val - t_tr > gap;
  memorization if only train reaches it; confusion otherwise; unmeasured
  where no train metric was measured (--eval_sets=val).
  """
  t = grokking_times(history, threshold,
                     threshold if gen_threshold is None else gen_threshold)
  t_tr, t_val = t["t_mem"], t["t_gen"]
  out = np.full(t_tr.shape, "confusion", dtype=object)
  metric = objective_of_history(history).metric
  out[np.isnan(history[f"train_{metric}"]).all(axis=-1)] = "unmeasured"
  out[np.isfinite(t_tr) & ~np.isfinite(t_val)] = "memorization"
  both = np.isfinite(t_tr) & np.isfinite(t_val)
  out[both & (t_val - t_tr <= gap)] = "comprehension"
  out[both & (t_val - t_tr > gap)] = "grokking"
  return out.astype(str)


def summarize(history: Mapping[str, np.ndarray], members: list[dict],
              diverged_step: np.ndarray, *, mem_threshold: float = 0.99,
              gen_threshold: float = 0.99, phase_threshold: float = 0.9,
              phase_gap: float = 1000) -> list[dict]:
  """One row per member: its swept values, t_mem, t_gen, delay, final accuracies (errors), phase, diverged.

  A linear task's phases use its mem/gen error thresholds (Liu's 0.9 accuracy
  has no counterpart there); `phase_threshold` is then ignored.
  """
  objective = objective_of_history(history)
  t = grokking_times(history, mem_threshold, gen_threshold, objective)
  metric = objective.metric
  if objective.higher_is_better:
    phase = phases(history, phase_threshold, phase_gap)
  else:
    phase = phases(history, mem_threshold, phase_gap, gen_threshold)
  final_train = _last_finite(history[f"train_{metric}"])
  final_val = _last_finite(history[f"val_{metric}"])
  rows = []
  for i, member in enumerate(members):
    rows.append({"member": i, **member,
                 "t_mem": float(t["t_mem"][i]), "t_gen": float(t["t_gen"][i]),
                 "delay": float(t["delay"][i]),
                 f"final_train_{metric}": float(final_train[i]),
                 f"final_val_{metric}": float(final_val[i]),
                 "phase": str(phase[i]),
                 "diverged": bool(diverged_step[i] >= 0),
                 "diverged_step": int(diverged_step[i]) if diverged_step[i] >= 0
                                  else float("nan")})
  return rows


def summarize_config(history: Mapping[str, np.ndarray], members: list[dict],
                     diverged_step: np.ndarray, config) -> list[dict]:
  """`summarize` with a Config's thresholds (errors for a linear task)."""
  mem, gen = objective_of(config).thresholds(config)
  return summarize(history, members, diverged_step, mem_threshold=mem,
                   gen_threshold=gen, phase_threshold=config.phase_threshold,
                   phase_gap=config.phase_gap)


def _last_finite(values_ExT: np.ndarray) -> np.ndarray:
  """The last non-NaN value of each row (NaN if none)."""
  values = np.asarray(values_ExT, np.float64)
  ok = np.isfinite(values)
  last = values.shape[1] - 1 - np.argmax(ok[:, ::-1], axis=1)
  return np.where(ok.any(axis=1), values[np.arange(len(values)), last], np.nan)
