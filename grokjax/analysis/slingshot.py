"""Slingshot cycles (Thilak et al. 2022) in per-step training records.

Adam without weight decay trains in cycles. Thilak et al. (arXiv:2206.04817,
figure 1): "Each Slingshot Effect is characterized by a period of rapid
growth of the last layer weights, an ensuing training loss spike, and a norm
plateau"; grokking tends to happen at a slingshot's onset.
`slingshot_onsets` finds the cycles by a documented rule on the per-step
training loss and the last-layer norm (history.npz's `step_train_loss` and
`step_last_layer_norm`), for every member of a sweep.

The rule, on l_t = log(max(loss_t, loss_floor)) and the log norm m_t, with W
= `window` samples:
1. spike: l_t - min(l over the previous W steps) > log(spike_factor); the
   onset is the first such step, and another onset needs W quiet steps first
   (a spike spans many steps);
2. growth before it: over the W samples ending at the onset, m grows by more
   than log(1 + min_growth) (1% by default);
3. a plateau after it: over the W samples after the spike's own window
   ([t + W, t + 2W]), m grows by less than `plateau_ratio` (1/4) of that
   growth. A norm that drifts up at a steady rate through the spike has no
   plateau and does not count; a spike a run ends before 2W samples after
   is not judged;
4. recovery: within W steps the loss falls by more than spike_factor below
   the spike's peak (the peak being the largest l in the first tenth of that
   window): the spike is transient, not a divergence.
A spike without the growth before it (noise, a learning-rate bump), without
the plateau or without the recovery (divergence) is not a slingshot.
`loss_floor` (1e-7 by default, about the smallest non-zero float32
cross-entropy) keeps exact zeros (softmax collapse) and losses at float32
resolution from reading as huge jumps when they move between 0 and 1e-9. The
thresholds are this library's (the paper describes the cycles in figures,
without a numerical rule); the order (growth, then the spike, then the
plateau) is its figure 1's.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

# Rule 2's and rule 3's defaults (this library's thresholds).
MIN_GROWTH = 0.01
PLATEAU_RATIO = 0.25


def slingshot_onsets(steps_T: np.ndarray, loss_ExT: np.ndarray,
                     norm_ExT: np.ndarray, *, window: int = 100,
                     spike_factor: float = 10.0,
                     min_growth: float = MIN_GROWTH,
                     plateau_ratio: float = PLATEAU_RATIO,
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
    m = np.log(np.maximum(n, 1e-30))
    onsets, quiet_until = [], 0
    if end <= window:
      out.append(onsets)
      continue
    # min(l[t - window:t]) for every t in [window, end), at once.
    recent_min = sliding_window_view(l[:-1], window).min(axis=-1)
    for t in window + np.flatnonzero(l[window:] - recent_min > threshold):
      if t < quiet_until:
        continue
      quiet_until = t + window
      if t + 2 * window >= end:
        break                                   # no room to see a plateau
      before = m[t] - m[t - window]
      after = m[t + 2 * window] - m[t + window]
      grew = before > np.log1p(min_growth)
      plateau = after < plateau_ratio * before
      peak = l[t:t + 1 + window // 10].max()
      recovered = (l[t + 1:t + 1 + window] < peak - threshold).any()
      if grew and plateau and recovered:
        onsets.append(int(steps[t]))
    out.append(onsets)
  return out


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
