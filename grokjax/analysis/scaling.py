"""Log-log scaling fits with bootstrap intervals over seeds.

Notsawo et al. 2025: the delay between memorization and generalization scales
as 1/(alpha * beta), so log(t_gen - t_mem) against log(alpha * beta) has slope
-1. `loglog_fit` fits such a line by least squares; `bootstrap_loglog`
resamples whole seeds (every grid point of a drawn seed comes along, so the
interval reflects the seed-to-seed spread, not the points' count).
"""

from __future__ import annotations

from typing import Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import optax


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


def _power_law_loss(theta: jax.Array, lx: jax.Array, ly: jax.Array,
                    w: jax.Array) -> jax.Array:
  """Weighted mean squared error in log space of t = a r^-gamma + b.

  theta = (log a, gamma, log b): a > 0 and b > 0 by construction.
  """
  log_a, gamma, log_b = theta[0], theta[1], theta[2]
  pred = jnp.logaddexp(log_a - gamma * lx, log_b)
  return jnp.sum(w * (pred - ly) ** 2) / jnp.sum(w)


def adam_minimize(loss_fn, params, steps: int, learning_rate: float):
  """`params` after `steps` full-batch Adam steps on `loss_fn(params)`, as one `lax.scan`.

  Traceable (jit it, vmap it over starts or bootstrap weights); the small
  fits of the analysis (power laws, the early-prediction classifier) use it.
  """
  tx = optax.adam(learning_rate)

  def step(carry, _):
    p, state = carry
    u, state = tx.update(jax.grad(loss_fn)(p), state, p)
    return (optax.apply_updates(p, u), state), None

  (params, _), _ = jax.lax.scan(step, (params, tx.init(params)), None,
                                length=steps)
  return params


def _fit_power_law(lx, ly, w, theta0, steps: int, learning_rate: float):
  loss = lambda theta: _power_law_loss(theta, lx, ly, w)
  theta = adam_minimize(loss, theta0, steps, learning_rate)
  return theta, loss(theta)


def power_law_fit(r: np.ndarray, t: np.ndarray, groups: np.ndarray | None = None,
                  *, num_samples: int = 500, level: float = 0.95,
                  steps: int = 3000, learning_rate: float = 0.03,
                  seed: int = 0) -> dict[str, float]:
  """Fits t(r) = a r^-gamma + b (Notsawo et al. 2023; Power et al. 2022's curve) with a seed bootstrap.

  Least squares in log space (every point weighs by its relative error: the
  times span decades), with a > 0 and b >= 0 (b = exp(log b)). Adam from the
  pure power law's log-log line, with b starting at half the smallest t and
  at 1e-4 of it (the better of the two fits is kept). The
  bootstrap draws `groups` (seeds) with replacement and refits all samples at
  once (`vmap` over the resampling weights), each from the full fit. Points with a non-finite or
  non-positive r or t (never generalized) are dropped and counted; fewer than
  three distinct r left gives NaN.

  Returns a, gamma, b, their intervals (``gamma_lo``, ``gamma_hi``, ...), the
  log-space rmse, points, dropped, groups.
  """
  r, t = np.asarray(r, np.float64), np.asarray(t, np.float64)
  groups = np.zeros(len(r), int) if groups is None else np.asarray(groups)
  ok = np.isfinite(r) & np.isfinite(t) & (r > 0) & (t > 0)
  r, t, groups = r[ok], t[ok], groups[ok]
  nan = float("nan")
  out = {"a": nan, "gamma": nan, "b": nan, "rmse_log": nan, "level": level,
         "points": int(ok.sum()), "dropped": int((~ok).sum()),
         "bootstrap_samples": 0,
         **{f"{k}_{end}": nan for k in ("a", "gamma", "b")
            for end in ("lo", "hi")}}
  if len(np.unique(r)) < 3:  # three parameters need three abscissae
    return {**out, "groups": int(len(np.unique(groups)))}
  lx, ly = jnp.asarray(np.log(r)), jnp.asarray(np.log(t))
  slope, intercept = np.polyfit(np.log(r), np.log(t), 1)
  # Two starts (an offset of half the smallest t, and almost none); the
  # better fit wins.
  starts = jnp.array([[intercept, -slope, np.log(t.min() / 2)],
                      [intercept, -slope, np.log(t.min() * 1e-4)]], lx.dtype)
  thetas, losses = jax.jit(jax.vmap(
      lambda th: _fit_power_law(lx, ly, jnp.ones_like(lx), th, steps,
                                learning_rate)))(starts)
  best = int(jnp.argmin(losses))
  theta, loss = thetas[best], losses[best]
  ids, inverse = np.unique(groups, return_inverse=True)
  rng = np.random.default_rng(seed)
  draws = rng.integers(0, len(ids), (num_samples if len(ids) > 1 else 0,
                                     len(ids)))
  counts = np.stack([np.bincount(d, minlength=len(ids)) for d in draws]
                    ) if len(draws) else np.zeros((0, len(ids)))
  weights = jnp.asarray(counts[:, inverse], lx.dtype)      # [B, N]
  keep = weights.sum(axis=1) > 0
  thetas, _ = jax.jit(jax.vmap(
      lambda w: _fit_power_law(lx, ly, w, theta, steps // 2, learning_rate)))(
          weights) if len(draws) else (jnp.zeros((0, 3)), None)
  thetas = np.asarray(thetas)[np.asarray(keep)]
  tail = 100 * (1 - level) / 2
  named = {"a": np.exp(thetas[:, 0]), "gamma": thetas[:, 1],
           "b": np.exp(thetas[:, 2])}
  out.update(a=float(np.exp(theta[0])), gamma=float(theta[1]),
             b=float(np.exp(theta[2])), rmse_log=float(np.sqrt(loss)),
             groups=int(len(ids)), bootstrap_samples=int(len(thetas)))
  for name, values in named.items():
    lo, hi = (np.percentile(values, [tail, 100 - tail]) if len(values)
              else (nan, nan))
    out[f"{name}_lo"], out[f"{name}_hi"] = float(lo), float(hi)
  return out


__all__ = ["adam_minimize", "loglog_fit", "bootstrap_loglog",
           "column_product", "power_law_fit"]
