"""Spectral signature of a loss trajectory (Notsawo et al. 2023, "Is grokking predictable?").

Every function works on the last axis of a `[..., T]` array (e.g. `[E, T]`: one
trajectory per member), in jnp, so a whole sweep is one call and the functions
compose with `jit` and `vmap`.

Conventions (used throughout and in the tests):
- Samples are `dt` apart (in steps). Frequencies are angular, in radians per
  step: omega_k = 2 pi k / (T dt) for the one-sided FFT bins k = 0 .. T // 2.
- The power spectrum is P(omega_k) = |X_k|^2 / T^2, with X = rfft(w * x) for
  a taper w (default Hann) normalized to mean(w^2) = 1; the one-sided bins
  other than 0 and the Nyquist bin count twice. So sum_k P = mean(x^2) exactly
  without a taper (Parseval) and close to it with one.
- Spectral moments m_n = sum_k omega_k^n P(omega_k) (times the constant bin
  width, which cancels in every ratio below).
- Hjorth parameters from the moments (Hjorth 1970; Notsawo et al. 2023):
  activity = m0, mobility = sqrt(m2 / m0), complexity = sqrt(m4 / m2) /
  mobility. For a sinusoid of frequency f (cycles per step), mobility = 2 pi f
  and complexity = 1; mobility is the signal's "mean frequency" and complexity
  its spread (>= 1; larger for broadband signals such as white noise). With
  the taper and no trend these hold to ~1% for a few cycles in the window;
  activity is the variance of the (detrended) signal.

Before the spectrum the trajectory is detrended (`detrend`): the loss falls by
orders of magnitude over a run, and its trend would swamp the oscillations
the signature is about.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

DETRENDS = ("none", "mean", "linear", "polynomial", "moving_average")


class Hjorth(NamedTuple):
  """Hjorth parameters, each of shape `x.shape[:-1]`."""
  activity: jax.Array
  mobility: jax.Array
  complexity: jax.Array


def _along_last(v: jax.Array, x: jax.Array) -> jax.Array:
  """A [T] vector shaped to broadcast against x [..., T]."""
  return v.reshape((1,) * (x.ndim - 1) + (-1,))


def _polynomial_trend(x: jax.Array, degree: int) -> jax.Array:
  t = jnp.linspace(-1.0, 1.0, x.shape[-1], dtype=x.dtype)
  basis = jnp.stack([t ** d for d in range(degree + 1)], axis=-1)  # [T, D]
  coef = jnp.linalg.lstsq(basis, jnp.moveaxis(x.reshape(-1, x.shape[-1]),
                                              -1, 0))[0]         # [D, N]
  return (basis @ coef).T.reshape(x.shape)


def _moving_average(x: jax.Array, window: int) -> jax.Array:
  """Centered moving average with the window shrunk at the ends (no padding bias)."""
  csum = jnp.cumsum(jnp.pad(x, [(0, 0)] * (x.ndim - 1) + [(1, 0)]), axis=-1)
  n = x.shape[-1]
  idx = jnp.arange(n)
  lo = jnp.clip(idx - window // 2, 0, n)
  hi = jnp.clip(idx + (window - 1 - window // 2) + 1, 0, n)
  return ((jnp.take(csum, hi, axis=-1) - jnp.take(csum, lo, axis=-1))
          / _along_last(hi - lo, x))


def detrend(x: jax.Array, method: str = "linear", degree: int = 2,
            window: int = 25) -> jax.Array:
  """x minus its trend over the last axis.

  method: ``none``; ``mean`` (subtract the mean); ``linear`` (least-squares
  line); ``polynomial`` (least-squares polynomial of `degree`);
  ``moving_average`` (subtract a centered moving average over `window`
  samples, a high-pass filter: keeps oscillations faster than ~window).
  """
  x = jnp.asarray(x, jnp.result_type(x, jnp.float32))
  if method == "none":
    return x
  if method == "mean":
    return x - x.mean(axis=-1, keepdims=True)
  if method == "linear":
    return x - _polynomial_trend(x, 1)
  if method == "polynomial":
    if degree < 0:
      raise ValueError(f"detrend: degree={degree} must be >= 0")
    return x - _polynomial_trend(x, degree)
  if method == "moving_average":
    if window < 1:
      raise ValueError(f"detrend: window={window} must be >= 1")
    return x - _moving_average(x, window)
  raise ValueError(f"detrend: unknown method {method!r}; use one of "
                   f"{', '.join(DETRENDS)}")


def power_spectrum(x: jax.Array, dt: float = 1.0, taper: str = "hann"
                   ) -> tuple[jax.Array, jax.Array]:
  """(omega [F], power [..., F]) of the last axis; see the module's conventions.

  taper: ``hann`` (default; low leakage, so m2 and m4 converge) or ``none``
  (a rectangular window). The input is used as is: detrend it first.
  """
  x = jnp.asarray(x, jnp.result_type(x, jnp.float32))
  n = x.shape[-1]
  if taper == "hann":
    w = 0.5 - 0.5 * jnp.cos(2 * jnp.pi * jnp.arange(n) / n)
    w = w / jnp.sqrt(jnp.mean(w ** 2))
  elif taper == "none":
    w = jnp.ones(n, x.dtype)
  else:
    raise ValueError(f"power_spectrum: unknown taper {taper!r}; use hann or "
                     "none")
  spec = jnp.abs(jnp.fft.rfft(x * _along_last(w, x), axis=-1)) ** 2 / n ** 2
  weight = jnp.full(spec.shape[-1], 2.0).at[0].set(1.0)
  if n % 2 == 0:
    weight = weight.at[-1].set(1.0)
  omega = 2 * jnp.pi * jnp.fft.rfftfreq(n, d=dt)
  return omega.astype(spec.dtype), spec * _along_last(weight, spec)


def spectral_moments(x: jax.Array, orders=(0, 2, 4), dt: float = 1.0,
                     taper: str = "hann") -> jax.Array:
  """m_n = sum_k omega_k^n P(omega_k) for each n in `orders`: shape [len(orders), ...]."""
  omega, power = power_spectrum(x, dt, taper)
  return jnp.stack([jnp.sum(_along_last(omega ** n, power) * power, axis=-1)
                    for n in orders])


def hjorth(x: jax.Array, dt: float = 1.0, detrend_method: str = "linear",
           taper: str = "hann", **detrend_kw) -> Hjorth:
  """Hjorth activity, mobility and complexity of the last axis of `x`.

  `x` is detrended first (`detrend(x, detrend_method, **detrend_kw)`), then
  the moments m0, m2, m4 of its tapered power spectrum give activity = m0,
  mobility = sqrt(m2 / m0) (radians per step / dt) and complexity =
  sqrt(m4 / m2) / mobility. A constant signal (m0 = 0) gives NaN mobility and
  complexity.
  """
  m0, m2, m4 = spectral_moments(detrend(x, detrend_method, **detrend_kw),
                                (0, 2, 4), dt, taper)
  mobility = jnp.sqrt(m2 / m0)
  return Hjorth(m0, mobility, jnp.sqrt(m4 / m2) / mobility)


def energy(x: jax.Array, dt: float = 1.0) -> jax.Array:
  """Spectral energy of the raw signal: Notsawo et al. 2023's Hjorth activity m0(L), shape `x.shape[:-1]`.

  Notsawo et al. 2023 ("Is grokking predictable?", the ICML 2023 slides in
  the seeds, and the authors' post `_posts/2023-07-25-blog-post-1.md` in
  Tikquuss/tikquuss.github.io) define m_n(L) = integral of
  omega^n |F(L)(omega)|^2 d omega on the **raw** training loss L(t) (no
  detrending, no taper) and take m0, "the surface of the power spectrum", as
  the early signal, over steps [0, 400). Discretely, with X = DFT(x) of the N
  samples `dt` steps apart, m0 = dt / N sum_k |X_k|^2 over all N bins, which
  by Parseval is dt sum_t x(t)^2: the energy of the signal (the integral of
  L(t)^2 dt). Computed here from the one-sided spectrum, so it is the same
  quantity as `spectral_moments` without a taper, times N dt.

  The loss's own level dominates it (the DC bin), so a larger early loss, a
  slower descent and larger oscillations all raise it: that is the paper's
  feature. `hjorth` with its default linear detrend and Hann taper measures
  the oscillations alone (a variant, not the paper's m0).
  """
  x = jnp.asarray(x, jnp.result_type(x, jnp.float32))
  n = x.shape[-1]
  return spectral_moments(x, (0,), dt, taper="none")[0] * n * dt


def band_energies(x: jax.Array, edges, dt: float = 1.0,
                  taper: str = "hann") -> jax.Array:
  """Fraction of the power in each band [edges[i], edges[i+1]) of omega: [len(edges)-1, ...].

  `edges` are angular frequencies (radians per step / dt); the last band
  includes its upper edge. Fractions of the total power of `x` (detrend it
  first), so they sum to 1 when the bands cover [0, pi / dt].
  """
  omega, power = power_spectrum(x, dt, taper)
  total = jnp.sum(power, axis=-1)
  edges = list(edges)
  out = []
  for i, (lo, hi) in enumerate(zip(edges[:-1], edges[1:])):
    upper = omega <= hi if i == len(edges) - 2 else omega < hi
    keep = _along_last((omega >= lo) & upper, power)
    out.append(jnp.sum(jnp.where(keep, power, 0.0), axis=-1))
  return jnp.stack(out) / total[None]


def window(x: jax.Array, start: int = 0, length: int | None = None
           ) -> jax.Array:
  """x[..., start:start + length] with a clear error when the trajectory is too short."""
  n = x.shape[-1]
  length = n - start if length is None else length
  if start < 0 or length < 2 or start + length > n:
    raise ValueError(f"spectral window [{start}, {start + length}) does not fit "
                     f"a trajectory of {n} steps: record more steps "
                     "(--record_every=1) or shorten --window")
  return x[..., start:start + length]
