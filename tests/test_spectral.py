"""Spectral signature (grokjax.analysis.spectral) against closed forms."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from grokjax.analysis import spectral


def _sine(f, n=400, dt=1.0, amp=1.5, phase=0.3):
  t = np.arange(n) * dt
  return amp * np.sin(2 * np.pi * f * t + phase)


@pytest.mark.parametrize("f, dt", [(0.05, 1.0), (0.0437, 1.0), (0.3, 0.25)])
def test_hjorth_of_a_sine(f, dt):
  # mobility = 2 pi f (radians per unit of dt), complexity = 1, activity =
  # variance = amp^2 / 2; also for a non-integer number of cycles (taper).
  h = spectral.hjorth(jnp.asarray(_sine(f, dt=dt)), dt=dt,
                      detrend_method="mean")
  assert float(h.mobility) == pytest.approx(2 * np.pi * f, rel=0.01)
  assert float(h.complexity) == pytest.approx(1.0, rel=0.01)
  assert float(h.activity) == pytest.approx(1.5 ** 2 / 2, rel=0.03)


def test_hjorth_of_white_noise_matches_a_flat_spectrum():
  # Flat power on [0, pi]: m2/m0 = pi^2/3, m4/m2 = 3 pi^2/5, so mobility =
  # pi/sqrt(3) and complexity = sqrt(9/5); activity = the variance.
  x = jax.random.normal(jax.random.key(0), (16, 4096)) * 2.0
  h = spectral.hjorth(x, detrend_method="mean")
  assert float(jnp.median(h.mobility)) == pytest.approx(np.pi / np.sqrt(3),
                                                        rel=0.02)
  assert float(jnp.median(h.complexity)) == pytest.approx(np.sqrt(9 / 5),
                                                          rel=0.02)
  assert float(jnp.median(h.activity)) == pytest.approx(4.0, rel=0.03)


def test_a_smooth_decay_is_low_frequency_and_detrending_removes_it():
  t = np.arange(400.0)
  decay = jnp.asarray(np.exp(-t / 80.0))
  raw = spectral.hjorth(decay, detrend_method="mean")
  # Almost all the power of a smooth decay sits in the lowest bins.
  assert float(raw.mobility) < 2 * np.pi * 3 / 400
  # Over one time constant a quadratic is a close fit: what is left is the
  # P3 Legendre component of exp(-s), s in [0, 1], about 0.005, i.e. ~1e-4 of
  # the variance 0.033 (a bit more under the taper). An oscillation on top of
  # a faster decay comes out of a moving-average detrend with its frequency.
  slow = jnp.asarray(np.exp(-t / 400.0))
  resid = spectral.hjorth(slow, detrend_method="polynomial", degree=2)
  assert float(resid.activity) < 1e-3 * float(
      spectral.hjorth(slow, detrend_method="mean").activity)
  wiggle = decay + 0.01 * jnp.asarray(_sine(0.1, amp=1.0))
  h = spectral.hjorth(wiggle, detrend_method="moving_average", window=25)
  assert float(h.mobility) == pytest.approx(2 * np.pi * 0.1, rel=0.03)


def test_detrend_removes_exact_trends():
  t = jnp.linspace(0.0, 3.0, 101)
  np.testing.assert_allclose(spectral.detrend(2 + 3 * t, "linear"), 0,
                             atol=1e-5)
  np.testing.assert_allclose(
      spectral.detrend(1 - t + 0.5 * t ** 2, "polynomial", degree=2), 0,
      atol=1e-5)
  np.testing.assert_allclose(
      spectral.detrend(jnp.full((3, 50), 7.0), "moving_average", window=9), 0,
      atol=1e-5)
  with pytest.raises(ValueError, match="unknown method"):
    spectral.detrend(t, "wavelet")


def test_members_at_once_equal_one_at_a_time_and_vmap():
  x = jnp.stack([jnp.asarray(_sine(f)) + 0.1 * jax.random.normal(
      jax.random.key(i), (400,)) for i, f in enumerate([0.02, 0.05, 0.2])])
  batched = spectral.hjorth(x)
  single = [spectral.hjorth(row) for row in x]
  mapped = jax.jit(jax.vmap(spectral.hjorth))(x)
  for name in spectral.Hjorth._fields:
    want = np.array([getattr(s, name) for s in single])
    np.testing.assert_allclose(getattr(batched, name), want, rtol=1e-5)
    np.testing.assert_allclose(getattr(mapped, name), want, rtol=1e-4)


def test_band_energies_partition_the_power():
  x = jnp.asarray(_sine(0.05) + _sine(0.3, amp=0.5))
  edges = [0.0, 2 * np.pi * 0.15, np.pi]
  bands = spectral.band_energies(x, edges)
  assert float(bands.sum()) == pytest.approx(1.0, abs=1e-5)
  # Powers 1.5^2/2 and 0.5^2/2: 90% and 10%.
  np.testing.assert_allclose(bands, [0.9, 0.1], atol=0.01)


def test_window_too_long_is_a_clear_error():
  with pytest.raises(ValueError, match="does not fit a trajectory of 100"):
    spectral.window(jnp.zeros((2, 100)), 0, 400)
  assert spectral.window(jnp.zeros((2, 100)), 10, 50).shape == (2, 50)
