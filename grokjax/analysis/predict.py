"""Early prediction of grokking from the first steps of the training loss (Notsawo et al. 2023).

`early_features` turns each member's per-step training loss over a window of
the first steps into features: the paper's spectral signature (the energy
m0 of the raw loss, Hjorth's activity), Hjorth's mobility and complexity on
a detrended (high-passed) window under their own names, and two non-spectral
baselines: the loss level at the window's end and its relative drop. `spearman` and `roc_auc` score a feature against the
outcome, and `logistic_cv` trains a small logistic-regression classifier in
jnp/optax with cross-validation over groups (held-out seeds), so a score never
comes from a member whose seed was seen in training. Past the paper:
`unseen_cv` and `t_gen_regression` are judged only on members whose seed
AND grid region (`grid_regions`) were never seen in training.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import optax

from grokjax.analysis import spectral
from grokjax.analysis.scaling import adam_minimize

# Bands (radians per step) of the high-pass variant's band energies: slow,
# middle, fast.
BANDS = (0.0, np.pi / 16, np.pi / 4, np.pi)

# What each feature of `early_features` is (prediction.json carries this).
FEATURES = {
    "energy": "Notsawo et al. 2023's spectral energy: Hjorth's activity m0 = "
              "integral of |F(L)(w)|^2 dw of the raw training loss L over the "
              "window = dt * sum_t L(t)^2 (Parseval)",
    "log_energy": "log10 of energy",
    "highpass_activity": "variant: variance of log(loss) minus its moving "
                         "average (the oscillations only; Hann taper)",
    "highpass_log_activity": "variant: log10 of highpass_activity",
    "highpass_mobility": "variant: Hjorth mobility of the high-passed "
                         "log(loss)",
    "highpass_complexity": "variant: Hjorth complexity of the high-passed "
                           "log(loss)",
    "highpass_band_slow": "variant: fraction of the high-passed log(loss)'s "
                          "power in [0, pi/16) rad/step",
    "highpass_band_mid": "variant: fraction in [pi/16, pi/4) rad/step",
    "highpass_band_fast": "variant: fraction in [pi/4, pi] rad/step",
    "final_log_loss": "baseline, not spectral: mean log(loss) over the "
                      "window's last tenth",
    "relative_drop": "baseline, not spectral: 1 - L(end) / L(0), the raw "
                     "loss's relative drop over the window",
}
# The paper's feature (Notsawo et al. 2023: the energy m0 of the raw training
# loss over the early window): what the classifier uses by default. Hjorth's
# mobility and complexity of the raw, decaying loss are not offered: a DFT of
# a decaying window sees mostly its trend, so across members they ranked
# exactly as the relative drop did (Spearman 1.000 in the CPU prediction run)
# and the raw complexity varies 4.6x over five curves with the same
# oscillation and different decays (tests/test_predict);
# on a detrended window they are the highpass_* variants.
PAPER_FEATURES = ("log_energy",)


def early_features(loss_ExT: np.ndarray, dt: float = 1.0,
                   detrend_method: str = "moving_average", window: int = 25,
                   degree: int = 2) -> dict[str, np.ndarray]:
  """Features [E] of each row of a loss trajectory [E, T] (already cut to the early window).

  The paper's (Notsawo et al. 2023, see `spectral.energy`), on the raw loss
  L(t) sampled `dt` steps apart, with no detrending and no taper:
  ``energy`` = m0 = dt sum_t L(t)^2, ``log_energy`` (log10).
  A variant kept under its own names (``highpass_*``): Hjorth's activity,
  mobility and complexity (Hjorth 1970) of log(loss) detrended by
  `detrend_method` (``moving_average``
  over `window` samples: a high-pass filter that keeps only the step-to-step
  oscillations; slow components, the paper's, are removed) with a Hann taper,
  and that signal's band energies over `BANDS`. And two non-spectral
  baselines: ``final_log_loss``, the mean log loss over the window's last
  tenth, and ``relative_drop`` = 1 - L(end) / L(0). See
  `FEATURES`. A non-finite loss (a diverged member) makes every feature NaN;
  a loss of exactly 0 in the window (softmax collapse) makes the log-loss
  ones NaN (the raw loss's are defined).
  """
  loss = np.asarray(loss_ExT, np.float64)
  finite = np.isfinite(loss).all(axis=-1)
  positive = finite & (loss > 0).all(axis=-1)
  raw = jnp.asarray(np.where(finite[:, None], loss, 1.0), jnp.float32)
  log_loss = jnp.log(jnp.asarray(np.where(positive[:, None], loss, 1.0),
                                 jnp.float32))
  energy = spectral.energy(raw, dt)
  detrended = spectral.detrend(log_loss, detrend_method, degree=degree,
                               window=window)
  h = spectral.hjorth(detrended, dt=dt, detrend_method="mean")
  bands = spectral.band_energies(detrended - detrended.mean(-1, keepdims=True),
                                 [b / dt for b in BANDS], dt=dt)
  tail = max(1, loss.shape[-1] // 10)
  out = {"energy": energy, "log_energy": jnp.log10(energy),
         "highpass_activity": h.activity,
         "highpass_log_activity": jnp.log10(h.activity),
         "highpass_mobility": h.mobility, "highpass_complexity": h.complexity,
         "highpass_band_slow": bands[0], "highpass_band_mid": bands[1],
         "highpass_band_fast": bands[2],
         "final_log_loss": log_loss[:, -tail:].mean(-1),
         "relative_drop": 1.0 - raw[:, -1] / raw[:, 0]}
  return {k: np.where(finite if k in ("energy", "log_energy", "relative_drop")
                      else positive, np.asarray(v, np.float64), np.nan)
          for k, v in out.items()}


def spearman(x: Sequence[float], y: Sequence[float]) -> float:
  """Spearman rank correlation over the pairs where both are finite (NaN if < 3 or constant).

  scipy.stats.spearmanr (average ranks for ties), guarded so that too few
  pairs or a constant side is NaN without a warning.
  """
  x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
  ok = np.isfinite(x) & np.isfinite(y)
  if ok.sum() < 3 or np.ptp(x[ok]) == 0 or np.ptp(y[ok]) == 0:
    return float("nan")
  # imported here: scipy.stats and sklearn take ~1.5 s to import, which
  # every command line (and its one-line refusal of a bad flag) would pay
  import scipy.stats  # pylint: disable=import-outside-toplevel
  return float(scipy.stats.spearmanr(x[ok], y[ok]).statistic)


def roc_auc(scores: Sequence[float], labels: Sequence[bool]) -> float:
  """Area under the ROC curve: P(score of a positive > score of a negative), ties counting 1/2.

  sklearn.metrics.roc_auc_score; NaN when either class is empty.
  Non-finite scores are dropped.
  """
  s, y = np.asarray(scores, np.float64), np.asarray(labels, bool)
  ok = np.isfinite(s)
  s, y = s[ok], y[ok]
  if y.all() or not y.any():
    return float("nan")
  import sklearn.metrics  # pylint: disable=import-outside-toplevel
  return float(sklearn.metrics.roc_auc_score(y, s))


def _fit_logistic(x: jax.Array, y: jax.Array, l2: float, steps: int,
                  learning_rate: float) -> tuple[jax.Array, jax.Array]:
  """Weights and bias of an l2-regularized logistic regression, full-batch Adam."""
  params = (jnp.zeros(x.shape[1], x.dtype), jnp.zeros([], x.dtype))

  def loss(p):
    logits = x @ p[0] + p[1]
    return (optax.sigmoid_binary_cross_entropy(logits, y).mean()
            + l2 * jnp.sum(p[0] ** 2))

  return adam_minimize(loss, params, steps, learning_rate)


def _standardized(x: np.ndarray, train: np.ndarray, test: np.ndarray):
  mu, sd = x[train].mean(0), x[train].std(0)
  sd = np.where(sd > 0, sd, 1.0)
  return (x[train] - mu) / sd, (x[test] - mu) / sd


def _logistic_folds(x: np.ndarray, y: np.ndarray, ok: np.ndarray, folds, *,
                    l2: float, steps: int, learning_rate: float) -> np.ndarray:
  """Out-of-fold probabilities over (test, train) masks (NaN where no fold tests a row)."""
  prob = np.full(len(y), np.nan)
  fit = jax.jit(_fit_logistic, static_argnums=(3,))
  for test, train in folds:
    test, train = ok & test, ok & train
    if not train.any() or not test.any():
      continue
    rate = y[train].mean()
    if rate in (0.0, 1.0):
      prob[test] = rate
      continue
    xtr, xte = _standardized(x, train, test)
    w, b = fit(jnp.asarray(xtr, jnp.float32), jnp.asarray(y[train],
                                                          jnp.float32),
               l2, steps, learning_rate)
    z = jnp.asarray(xte, jnp.float32) @ w + b
    prob[test] = np.asarray(jax.nn.sigmoid(z), np.float64)
  return prob


def _scores(prob: np.ndarray, y: np.ndarray) -> dict:
  done = np.isfinite(prob)
  majority = y[done].mean() >= 0.5 if done.any() else True
  return {"accuracy": float(((prob[done] >= 0.5) == y[done]).mean())
                      if done.any() else float("nan"),
          "auc": roc_auc(prob[done], y[done]),
          "majority_accuracy": float((y[done] == majority).mean())
                               if done.any() else float("nan"),
          "rows": int(done.sum())}


def _matrix(features) -> tuple[np.ndarray, np.ndarray]:
  x = np.asarray(features, np.float64)
  x = x[:, None] if x.ndim == 1 else x
  return x, np.isfinite(x).all(axis=1)


def logistic_cv(features: np.ndarray, labels: np.ndarray, groups: np.ndarray,
                *, l2: float = 1e-2, steps: int = 500,
                learning_rate: float = 0.1) -> dict:
  """Leave-one-group-out logistic regression: out-of-fold probabilities, accuracy and AUC.

  features [N, F] (rows with a non-finite feature are left out and counted),
  labels [N] (bool), groups [N] (e.g. the seed: each fold holds out every
  member of one group). Features are standardized on each fold's training
  rows. A fold whose training rows hold one class predicts that class's
  frequency. Returns accuracy (threshold 0.5), auc, the base rate's accuracy
  (always the majority class) for comparison, folds, rows, dropped, and the
  out-of-fold ``probability`` per row (NaN for dropped rows).
  """
  x, ok = _matrix(features)
  y = np.asarray(labels, bool)
  g = np.asarray(groups)
  names = sorted(set(g[ok].tolist()))
  prob = _logistic_folds(x, y, ok, [(g == f, g != f) for f in names],
                         l2=l2, steps=steps, learning_rate=learning_rate)
  return {**_scores(prob, y), "folds": len(names),
          "dropped": int((~ok).sum()), "probability": prob}


def grid_regions(points: np.ndarray, blocks: int = 2) -> np.ndarray:
  """[N] region ids: the grid of swept values cut into `blocks` contiguous blocks per axis.

  points [N, A]: each member's values on the swept axes other than the seed.
  Along each axis the sorted distinct values are split into `blocks`
  contiguous runs (low / high learning rates, ...); a region is one
  combination, so neighbouring grid points share a region.
  """
  points = np.asarray(points, np.float64)
  points = points[:, None] if points.ndim == 1 else points
  region = np.zeros(len(points), np.int64)
  for a in range(points.shape[1]):
    values = np.unique(points[:, a])
    index = np.searchsorted(values, points[:, a])
    region = region * blocks + index * min(blocks, len(values)) // len(values)
  return region


def _unseen_folds(seeds: np.ndarray, regions: np.ndarray):
  """(test, train) per (seed, region): train on the members of other seeds AND other regions."""
  return [((seeds == s) & (regions == r), (seeds != s) & (regions != r))
          for s in np.unique(seeds) for r in np.unique(regions)]


def unseen_cv(features: np.ndarray, labels: np.ndarray, seeds: np.ndarray,
              regions: np.ndarray, *, l2: float = 1e-2, steps: int = 500,
              learning_rate: float = 0.1) -> dict:
  """Logistic regression judged only on members whose seed AND grid region it never saw.

  One fold per (seed, region): it trains on every member of another seed
  in another region (`grid_regions`), so neither the seed's own randomness
  nor neighbouring grid points, which share outcomes, leak into the score.
  Returns what `logistic_cv` does.
  """
  x, ok = _matrix(features)
  y = np.asarray(labels, bool)
  folds = _unseen_folds(np.asarray(seeds), np.asarray(regions))
  prob = _logistic_folds(x, y, ok, folds, l2=l2, steps=steps,
                         learning_rate=learning_rate)
  return {**_scores(prob, y), "folds": len(folds),
          "dropped": int((~ok).sum()), "probability": prob}


def t_gen_regression(features: np.ndarray, t_gen: np.ndarray, budget: float,
                     seeds: np.ndarray, regions: np.ndarray,
                     l2: float = 1.0) -> dict:
  """Ridge regression of log t_gen on the features, judged on unseen seeds and regions.

  A member that never generalized is censored at the run's length
  (`budget`: its t_gen is at least that). The score is the Spearman
  correlation of the out-of-fold predictions with the measured (censored)
  t_gen; ``predicted`` holds them (NaN where no fold tests a row).
  """
  x, ok = _matrix(features)
  t = np.where(np.isfinite(t_gen), np.asarray(t_gen, np.float64), budget)
  target = np.log(np.maximum(t, 1.0))
  pred = np.full(len(t), np.nan)
  for test, train in _unseen_folds(np.asarray(seeds), np.asarray(regions)):
    test, train = ok & test, ok & train
    if train.sum() < 2 or not test.any():
      continue
    xtr, xte = _standardized(x, train, test)
    mean = target[train].mean()
    a = xtr.T @ xtr + l2 * np.eye(x.shape[1])
    w = np.linalg.solve(a, xtr.T @ (target[train] - mean))
    pred[test] = np.exp(xte @ w + mean)
  return {"spearman": spearman(pred, t), "rows": int(np.isfinite(pred).sum()),
          "censored": int((~np.isfinite(t_gen)).sum()), "predicted": pred}


def feature_scores(features: Mapping[str, np.ndarray], final_val: np.ndarray,
                   generalized: np.ndarray, groups: np.ndarray | None = None,
                   num_samples: int = 1000, seed: int = 0
                   ) -> dict[str, dict[str, float]]:
  """Per feature: Spearman with the final validation accuracy and AUC for `generalized`, with group-bootstrap intervals.

  With `groups` (e.g. each member's seed), ``spearman_lo/hi`` and
  ``auc_lo/hi`` are the 2.5% and 97.5% percentiles over `num_samples`
  resamplings of the groups with replacement (every member of a drawn group
  comes along: members sharing a seed are not independent); NaN draws
  (one class only, constant ranks) are left out. With a single group the
  intervals are NaN: every resampling of one seed is that seed, and a
  zero-width interval would claim a certainty the run cannot give.
  """
  final_val = np.asarray(final_val, np.float64)
  generalized = np.asarray(generalized, bool)
  draws = []
  if groups is not None and len(np.unique(groups)) > 1:
    groups = np.asarray(groups)
    ids = np.unique(groups)
    members = [np.flatnonzero(groups == g) for g in ids]
    rng = np.random.default_rng(seed)
    draws = [np.concatenate([members[i] for i in rng.integers(0, len(ids),
                                                              len(ids))])
             for _ in range(num_samples)]
  out = {}
  for name, values in features.items():
    values = np.asarray(values, np.float64)
    auc = roc_auc(values, generalized)
    row = {"spearman": spearman(values, final_val), "auc": auc,
           # A feature may predict through low values: max(auc, 1 - auc).
           "auc_either_sign": (max(auc, 1 - auc) if np.isfinite(auc)
                               else float("nan"))}
    if groups is not None and not draws:
      for key in ("spearman", "auc"):
        row[f"{key}_lo"] = row[f"{key}_hi"] = float("nan")
    if draws:
      for key, fn in (("spearman", lambda i: spearman(values[i],
                                                      final_val[i])),
                      ("auc", lambda i: roc_auc(values[i], generalized[i]))):
        boot = np.array([fn(i) for i in draws])
        boot = boot[np.isfinite(boot)]
        lo, hi = (np.percentile(boot, [2.5, 97.5]) if boot.size
                  else (np.nan, np.nan))
        row[f"{key}_lo"], row[f"{key}_hi"] = float(lo), float(hi)
    out[name] = row
  return out
