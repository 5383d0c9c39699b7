"""When does a member memorize, generalize, and grok? Times and phases from eval histories.

All functions take eval histories `[E, Te]` with their steps `[Te]` and return
per-member arrays [E]; a time that never happens is NaN.
"""

from __future__ import annotations

from typing import Mapping

import numpy as np

PHASES = ("comprehension", "grokking", "memorization", "confusion")


def first_step_reaching(steps_T: np.ndarray, values_ExT: np.ndarray,
                        threshold: float) -> np.ndarray:
  """First step at which `values >= threshold`, per member; NaN if never (NaNs never count)."""
  values = np.nan_to_num(np.asarray(values_ExT, np.float64), nan=-np.inf)
  hit = values >= threshold
  first = np.argmax(hit, axis=1)
  return np.where(hit.any(axis=1), np.asarray(steps_T, np.float64)[first],
                  np.nan)


def grokking_times(history: Mapping[str, np.ndarray], mem_threshold: float = 0.99,
                   gen_threshold: float = 0.99) -> dict[str, np.ndarray]:
  """t_mem (train acc >= mem_threshold), t_gen (val acc >= gen_threshold), delay = t_gen - t_mem.

  Power et al. 2022 report the median over seeds of t_gen at 0.99; Grokfast
  (Lee et al. 2024) uses gen_threshold = 0.95.
  """
  steps = history["eval_step"]
  t_mem = first_step_reaching(steps, history["train_acc"], mem_threshold)
  t_gen = first_step_reaching(steps, history["val_acc"], gen_threshold)
  return {"t_mem": t_mem, "t_gen": t_gen, "delay": t_gen - t_mem}


def notsawo_times(history: Mapping[str, np.ndarray], low: float = 0.05,
                  high: float = 0.99) -> dict[str, np.ndarray]:
  """t1..t4 of Notsawo et al. 2023: train acc > low, train acc >= high, val acc > low, val acc >= high.

  The paper's t1 and t3 use "accuracy > 0"; `low` makes that threshold explicit
  (chance level is 1/num_classes).
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


def phases(history: Mapping[str, np.ndarray], threshold: float = 0.9,
           gap: float = 1000) -> np.ndarray:
  """Learning phase per member (Liu et al. 2022, "Towards understanding grokking").

  With t_tr, t_val the first steps where train / val accuracy reach `threshold`:
  comprehension if t_val - t_tr <= gap; grokking if t_val - t_tr > gap;
  memorization if only train reaches it; confusion otherwise.
  """
  t = grokking_times(history, threshold, threshold)
  t_tr, t_val = t["t_mem"], t["t_gen"]
  out = np.full(t_tr.shape, "confusion", dtype=object)
  out[np.isfinite(t_tr) & ~np.isfinite(t_val)] = "memorization"
  both = np.isfinite(t_tr) & np.isfinite(t_val)
  out[both & (t_val - t_tr <= gap)] = "comprehension"
  out[both & (t_val - t_tr > gap)] = "grokking"
  return out.astype(str)


def summarize(history: Mapping[str, np.ndarray], members: list[dict],
              diverged_step: np.ndarray, *, mem_threshold: float = 0.99,
              gen_threshold: float = 0.99, phase_threshold: float = 0.9,
              phase_gap: float = 1000) -> list[dict]:
  """One row per member: its swept values, t_mem, t_gen, delay, final accuracies, phase, diverged."""
  t = grokking_times(history, mem_threshold, gen_threshold)
  phase = phases(history, phase_threshold, phase_gap)
  final_train = _last_finite(history["train_acc"])
  final_val = _last_finite(history["val_acc"])
  rows = []
  for i, member in enumerate(members):
    rows.append({"member": i, **member,
                 "t_mem": float(t["t_mem"][i]), "t_gen": float(t["t_gen"][i]),
                 "delay": float(t["delay"][i]),
                 "final_train_acc": float(final_train[i]),
                 "final_val_acc": float(final_val[i]), "phase": str(phase[i]),
                 "diverged": bool(diverged_step[i] >= 0),
                 "diverged_step": int(diverged_step[i]) if diverged_step[i] >= 0
                                  else float("nan")})
  return rows


def _last_finite(values_ExT: np.ndarray) -> np.ndarray:
  """The last non-NaN value of each row (NaN if none)."""
  values = np.asarray(values_ExT, np.float64)
  ok = np.isfinite(values)
  last = values.shape[1] - 1 - np.argmax(ok[:, ::-1], axis=1)
  return np.where(ok.any(axis=1), values[np.arange(len(values)), last], np.nan)
