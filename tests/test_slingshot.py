"""Slingshot detection (Thilak et al. 2022) on synthetic cycles with known onsets."""

import numpy as np

from grokjax import analysis


def _cycles(spikes, jump=True, recover=True, T=1000):
  """Loss decaying on plateaus with spikes at `spikes`; last-layer norm
  jumping by 20% over the 30 steps around each spike (else flat)."""
  t = np.arange(T)
  loss = np.full(T, 1e-3) * np.exp(-t / 2000)
  norm = np.full(T, 10.0)
  for s in spikes:
    loss[s:s + 20] *= 1e3                 # spike: x1000 for 20 steps
    if not recover:
      loss[s:] = np.maximum(loss[s:], 1.0)
    if jump:
      norm[s - 10:s + 20] *= np.linspace(1.0, 1.2, 30)
      norm[s + 20:] *= 1.2
  return t, loss, norm


def test_finds_the_onsets_of_a_norm_jump_with_a_spike_then_plateau():
  t, loss, norm = _cycles([300, 700])
  onsets = analysis.slingshot_onsets(t, loss[None], norm[None], window=100)
  assert onsets == [[300, 700]]


def test_a_norm_drift_without_a_jump_is_not_a_slingshot():
  """Thilak et al.: the norm jumps together with the spike.

  The same spikes on a norm that grows at a steady 0.2% a step (22% per
  100-step window, more than the 5% minimum) are not slingshots: the
  growth across the spike is no faster than before it. The former rule
  (the norm at the onset above its value a window earlier) counted both.
  """
  t, loss, _ = _cycles([300, 700], jump=False)
  drift = 10.0 * 1.002 ** t
  assert analysis.slingshot_onsets(t, loss[None], drift[None]) == [[]]
  old_rule = [s for s in (300, 700) if drift[s] > drift[s - 100]]
  assert old_rule == [300, 700]
  # A jump on top of the drift is found.
  _, _, jump = _cycles([300, 700])
  assert analysis.slingshot_onsets(t, loss[None], (drift * jump / 10)[None]
                                   ) == [[300, 700]]
  # Growth long before the spike (over the window before it, then flat)
  # is not a jump with it.
  early = np.full(t.size, 10.0)
  early[150:250] *= np.linspace(1.0, 1.2, 100)
  early[250:] *= 1.2
  assert analysis.slingshot_onsets(t, loss[None], early[None]) == [[]]


def test_spikes_without_norm_growth_or_recovery_are_not_slingshots():
  t, loss, norm = _cycles([300, 700], jump=False)
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
  # A real spike out of a collapsed stretch, with its norm jump, is still
  # found.
  loss[600:620] = 0.5
  norm[590:620] *= np.linspace(1.0, 1.2, 30)
  norm[620:] *= 1.2
  assert analysis.slingshot_onsets(t, loss[None], norm[None]) == [[600]]
