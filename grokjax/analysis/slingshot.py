"""Slingshot cycles (Thilak et al. 2022) in per-step training records.

Adam without weight decay trains in cycles: the last layer's weight norm
grows, then the training loss spikes, then the loss falls back to a new
plateau; grokking tends to happen at a slingshot's onset. `slingshot_onsets`
finds the cycles by a documented rule on the per-step training loss and the
last-layer norm (history.npz's `step_train_loss` and `step_last_layer_norm`),
for every member of a sweep.

The rule, on l_t = log(max(loss_t, loss_floor)) and the log norm m_t:
1. spike: l_t - min(l over the previous `window` steps) > log(spike_factor);
   the onset is the first such step, and another onset needs `window` quiet
   steps first (a spike spans many steps);
2. the norm jumps with it (Thilak et al.: the last layer's norm grows
   together with the loss spike, then plateaus at a new level): over the
   `window` samples centred on the onset, m grows by more than
   log(1 + min_growth) (5% by default) beyond what it grew over the same
   length just before (its drift). A norm that drifts up at a steady rate,
   or had its growth long before the spike, does not count;
3. recovery after it: within `window` steps the loss falls by more than
   spike_factor below the spike's peak (the peak being the largest l in the
   first tenth of that window): the spike is transient, not a divergence.
A spike without the norm jump (noise, a learning-rate bump) or without the
recovery (divergence) is not a slingshot. `loss_floor` (1e-7 by default,
about the smallest non-zero float32 cross-entropy) keeps exact zeros (softmax
collapse) and losses at float32 resolution from reading as huge jumps when
they move between 0 and 1e-9. The thresholds are this library's (the paper
describes the cycles in figures, without a numerical rule).
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view


def slingshot_onsets(steps_T: np.ndarray, loss_ExT: np.ndarray,
                     norm_ExT: np.ndarray, *, window: int = 100,
                     spike_factor: float = 10.0, min_growth: float = 0.05,
                     loss_floor: float = 1e-7) -> list[list[int]]:
  """Per member, the steps where a slingshot cycle starts (see the module's rule).

  `steps_T` are the recorded steps (history.npz's `record_step`, evenly
  spaced); `window` is in samples. NaN samples (a diverged member, or steps a
  member never trained) end that member's search.
  """
  steps = np.asarray(steps_T)
  loss = np.asarray(loss_ExT, np.float64)
  norm = np.asarray(norm_ExT, np.float64)
  log_loss = np.log(np.maximum(loss, loss_floor))
  threshold = np.log(spike_factor)
  out = []
  for e in range(loss.shape[0]):
    finite = np.isfinite(log_loss[e]) & np.isfinite(norm[e])
    end = int(np.argmin(finite)) if not finite.all() else len(finite)
    l, n = log_loss[e, :end], norm[e, :end]
    onsets, quiet_until = [], 0
    if end <= window:
      out.append(onsets)
      continue
    # min(l[t - window:t]) for every t in [window, end), at once.
    recent_min = sliding_window_view(l[:-1], window).min(axis=-1)
    for t in window + np.flatnonzero(l[window:] - recent_min > threshold):
      if t < quiet_until:
        continue
      grew = _norm_jumps(np.log(np.maximum(n, 1e-30)), t, window,
                         np.log1p(min_growth))
      peak = l[t:t + 1 + window // 10].max()
      after = l[t + 1:t + 1 + window]
      recovered = after.size > 0 and (after < peak - threshold).any()
      if grew and recovered:
        onsets.append(int(steps[t]))
      quiet_until = t + window
    out.append(onsets)
  return out


def _norm_jumps(m: np.ndarray, t: int, window: int,
                min_log_growth: float) -> bool:
  """Rule 2 on the log norm m: growth over [t - window/2, t + window/2] beyond the drift before it."""
  half = window // 2
  lo, hi = t - half, min(t + half, len(m) - 1)
  jump = m[hi] - m[lo]
  start = max(lo - (hi - lo), 0)
  drift = (m[lo] - m[start]) * (hi - lo) / max(lo - start, 1)
  return bool(jump - max(drift, 0.0) > min_log_growth)


def grokking_at_onsets(onsets: list[list[int]], t_gen: np.ndarray,
                       tolerance: int) -> np.ndarray:
  """Per member: True when its t_gen comes within `tolerance` steps after one of its onsets.

  False when it generalized away from every onset, NaN when it never
  generalized (t_gen NaN) or had no slingshot.
  """
  out = np.full(len(onsets), np.nan)
  for e, (ons, t) in enumerate(zip(onsets, np.asarray(t_gen, np.float64))):
    if np.isfinite(t) and ons:
      out[e] = float(any(0 <= t - o <= tolerance for o in ons))
  return out
