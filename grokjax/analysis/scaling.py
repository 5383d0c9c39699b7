"""Log-log scaling fits with bootstrap intervals over seeds.

Notsawo et al. 2025: the delay between memorization and generalization scales
as 1/(alpha * beta), so log(t_gen - t_mem) against log(alpha * beta) has slope
-1. `loglog_fit` fits such a line by least squares; `bootstrap_loglog`
resamples whole seeds (every grid point of a drawn seed comes along, so the
interval reflects the seed-to-seed spread, not the points' count).
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np


def loglog_fit(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
  """(slope, intercept) of log10 y = slope * log10 x + intercept by least squares."""
  lx, ly = np.log10(np.asarray(x, np.float64)), np.log10(np.asarray(
      y, np.float64))
  if len(lx) < 2 or np.ptp(lx) == 0:
    return float("nan"), float("nan")
  slope, intercept = np.polyfit(lx, ly, 1)
  return float(slope), float(intercept)


def bootstrap_loglog(x: np.ndarray, y: np.ndarray, groups: np.ndarray, *,
                     num_samples: int = 2000, level: float = 0.95,
                     seed: int = 0) -> dict[str, float]:
  """Least-squares log-log slope and its bootstrap interval, resampling `groups` (seeds).

  Points with a non-finite or non-positive x or y (a member that never
  generalized) are dropped and counted in ``dropped``.

  Returns: slope, intercept, slope_lo, slope_hi (the central `level`
  percentile interval), r2, points, dropped, groups.
  """
  x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
  groups = np.asarray(groups)
  ok = np.isfinite(x) & np.isfinite(y) & (x > 0) & (y > 0)
  x, y, groups = x[ok], y[ok], groups[ok]
  slope, intercept = loglog_fit(x, y)
  ids = np.unique(groups)
  rng = np.random.default_rng(seed)
  members = [np.flatnonzero(groups == g) for g in ids]
  slopes = []
  for _ in range(num_samples if len(ids) > 1 else 0):
    idx = np.concatenate([members[i] for i in rng.integers(0, len(ids),
                                                            len(ids))])
    slopes.append(loglog_fit(x[idx], y[idx])[0])
  slopes = np.array([s for s in slopes if np.isfinite(s)])
  tail = 100 * (1 - level) / 2
  lo, hi = (np.percentile(slopes, [tail, 100 - tail]) if len(slopes)
            else (float("nan"), float("nan")))
  resid = np.log10(y) - (slope * np.log10(x) + intercept) if len(x) else []
  total = np.sum((np.log10(y) - np.mean(np.log10(y))) ** 2) if len(x) else 0
  r2 = 1 - np.sum(np.square(resid)) / total if total > 0 else float("nan")
  return {"slope": slope, "intercept": intercept, "slope_lo": float(lo),
          "slope_hi": float(hi), "level": level, "r2": float(r2),
          "points": int(ok.sum()), "dropped": int((~ok).sum()),
          "groups": int(len(ids)), "bootstrap_samples": int(len(slopes))}


def column_product(rows: Sequence[Mapping], names: Sequence[str]) -> np.ndarray:
  """Per row, the product of the named columns (e.g. learning_rate * reg_strength)."""
  return np.array([np.prod([float(r[n]) for n in names]) for r in rows],
                  np.float64)


__all__ = ["loglog_fit", "bootstrap_loglog", "column_product"]
