"""Slingshot detection (Thilak et al. 2022) on synthetic cycles with known onsets.

Thilak et al.'s figure 1: "a period of rapid growth of the last layer
weights, an ensuing training loss spike, and a norm plateau". The synthetic
norm grows by 20% over the 100 steps before each spike, then stays flat.
"""

import numpy as np

from grokjax import analysis


def _cycles(spikes, grow=True, recover=True, T=1000):
  """Loss decaying on plateaus with spikes at `spikes`; last-layer norm
  growing by 20% over the 100 steps before each spike (else flat)."""
  t = np.arange(T)
  loss = np.full(T, 1e-3) * np.exp(-t / 2000)
  norm = np.full(T, 10.0)
  for s in spikes:
    loss[s:s + 20] *= 1e3                 # spike: x1000 for 20 steps
    if not recover:
      loss[s:] = np.maximum(loss[s:], 1.0)
    if grow:
      norm[s - 100:s] *= np.linspace(1.0, 1.2, 100)
      norm[s:] *= 1.2
  return t, loss, norm


def test_finds_the_onsets_of_norm_growth_then_a_spike_then_a_plateau():
  t, loss, norm = _cycles([300, 700])
  onsets = analysis.slingshot_onsets(t, loss[None], norm[None], window=100)
  assert onsets == [[300, 700]]


def test_a_norm_drift_through_the_spike_is_not_a_slingshot():
  """Without a plateau after the spike there is no cycle.

  The same spikes on a norm that grows at a steady 0.2% a step (22% per
  100-step window, above the 1% minimum) are not slingshots: the growth
  after the spike equals the growth before it, above plateau_ratio (1/4) of
  it. The first rule (the norm at the onset above its value a window
  earlier) counted both.
  """
  t, loss, _ = _cycles([300, 700], grow=False)
  drift = 10.0 * 1.002 ** t
  assert analysis.slingshot_onsets(t, loss[None], drift[None]) == [[]]
  old_rule = [s for s in (300, 700) if drift[s] > drift[s - 100]]
  assert old_rule == [300, 700]
  # On a slow drift (0.02% a step): growth before log(1.2) + 0.02 = 0.20,
  # after 0.02, a ratio of 0.10 < 1/4: the cycles are found.
  _, _, cycles = _cycles([300, 700])
  slow = cycles * 1.0002 ** t
  assert analysis.slingshot_onsets(t, loss[None], slow[None]) == [[300, 700]]
  # On the fast drift: log(1.2) + 0.2 = 0.38 before, 0.2 after, a ratio of
  # 0.52: not found.
  fast = cycles * 1.002 ** t
  assert analysis.slingshot_onsets(t, loss[None], fast[None]) == [[]]


def test_growth_must_end_at_the_spike():
  # Growth a window and more before the spike, then flat: nothing grows over
  # the 100 steps before it.
  t, loss, _ = _cycles([300], grow=False)
  early = np.full(t.size, 10.0)
  early[100:190] *= np.linspace(1.0, 1.2, 90)
  early[190:] *= 1.2
  assert analysis.slingshot_onsets(t, loss[None], early[None]) == [[]]
  # 0.5% growth over the window (below the 1% minimum) is not "rapid".
  slight = np.full(t.size, 10.0)
  slight[200:300] *= np.linspace(1.0, 1.005, 100)
  slight[300:] *= 1.005
  assert analysis.slingshot_onsets(t, loss[None], slight[None]) == [[]]
  assert analysis.slingshot_onsets(t, loss[None], slight[None],
                                   min_growth=0.004) == [[300]]


def test_spikes_without_growth_or_recovery_are_not_slingshots():
  t, loss, norm = _cycles([300, 700], grow=False)
  assert analysis.slingshot_onsets(t, loss[None], norm[None]) == [[]]
  t, loss, norm = _cycles([300], recover=False)
  assert analysis.slingshot_onsets(t, loss[None], norm[None]) == [[]]
  # A smooth decay has none; members are independent; NaN ends a member.
  t, smooth, flat = _cycles([])
  t, loss, norm = _cycles([500])
  nan = loss.copy()
  nan[400:] = np.nan
  got = analysis.slingshot_onsets(t, np.stack([smooth, loss, nan]),
                                  np.stack([flat, norm, norm]))
  assert got == [[], [500], []]
  # A spike less than two windows before the end has no plateau to judge.
  t, loss, norm = _cycles([850])
  assert analysis.slingshot_onsets(t, loss[None], norm[None]) == [[]]
  assert analysis.slingshot_onsets(t, loss[None], norm[None],
                                   window=50) == [[850]]


def test_grokking_at_onsets():
  onsets = [[300, 700], [300], [], [300]]
  t_gen = np.array([750.0, 900.0, 500.0, np.nan])
  got = analysis.grokking_at_onsets(onsets, t_gen, tolerance=100)
  np.testing.assert_array_equal(got[:2], [1.0, 0.0])
  assert np.isnan(got[2]) and np.isnan(got[3])


def test_exact_zero_losses_are_not_spikes():
  # Softmax collapse: the float32 loss sits at exactly 0, then at 1e-9 (a
  # factor of "infinity" in log space): below loss_floor, not a slingshot.
  t, loss, norm = _cycles([])
  loss[200:400] = 0.0
  loss[400:600] = 1e-9
  norm = norm + np.linspace(0, 5, t.size)   # growing all along
  assert analysis.slingshot_onsets(t, loss[None], norm[None]) == [[]]
  # A real spike out of a collapsed stretch, after the norm's growth and
  # with a plateau after it, is still found.
  loss[600:620] = 0.5
  norm = np.full(t.size, 10.0)
  norm[500:600] *= np.linspace(1.0, 1.2, 100)
  norm[600:] *= 1.2
  assert analysis.slingshot_onsets(t, loss[None], norm[None]) == [[600]]
