"""Fourier progress measures for tasks over Z_p (Nanda et al. 2023; Gromov 2023).

A network that groks modular addition represents a residue x by cos(w_k x) and
sin(w_k x) for a few *key frequencies* w_k = 2 pi k / p, and reads the answer
from cos(w_k (a + b - c)), i.e. from cos(w_k (a + b)) and sin(w_k (a + b))
weighted per class. These functions measure that in the weights and the
logits.

Conventions:
- Frequencies are k = 0 .. p // 2 (k and p - k are the same real frequency).
  The norm of frequency k of an embedding W [p, d] (row x = residue x) is
  ||(C_k^T W, S_k^T W)||, with C_k(x) = cos(w_k x), S_k(x) = sin(w_k x)
  normalized to unit length (the orthonormal real Fourier basis), so
  sum_k norm_k^2 = ||W||_F^2 (Parseval).
- Gini and the inverse participation ratio are taken over the norms of the
  non-constant frequencies k >= 1 (the constant direction carries no residue).
- Key frequencies, two rules:
  - `neuron_frequencies` (Nanda et al. 2023's, as their analysis notebook
    computes `key_freqs`): each MLP neuron's activation at the readout
    position over the (a, b) table, centred, is explained by one frequency k:
    the share of its energy in the 2-D Fourier terms {1, cos, sin}(w_k a) x
    {1, cos, sin}(w_k b) (`extract_freq_2d` of `helpers.py` in
    mechanistic-interpretability-grokking/progress-measures-paper); the key
    frequencies are those that some living neuron picks (`np.unique` of the
    neurons' frequencies). The measures use it for transformers.
  - `key_frequencies` (ours, for models without MLP neurons at a readout, and
    at every saved step): k >= 1 whose embedding energy norm_k^2 is at least
    `ratio` times the median energy of the non-constant frequencies and at
    least `min_share` of their total. A random embedding has all energies
    within a few tens of percent of the median (none is key); a grokked one
    has a handful far above it.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np


def fourier_basis(p: int) -> jax.Array:
  """[F, 2, p] cos/sin rows of frequencies k = 0 .. p // 2, each of unit norm.

  Rows that vanish (sin at k = 0, and at k = p / 2 for even p) are zero.
  """
  k = np.arange(p // 2 + 1)[:, None]
  x = np.arange(p)[None, :]
  angle = 2 * np.pi * k * x / p
  basis = np.stack([np.cos(angle), np.sin(angle)], axis=1)
  norms = np.linalg.norm(basis, axis=-1, keepdims=True)
  return jnp.asarray(np.where(norms > 1e-9, basis / np.maximum(norms, 1e-9),
                              0.0), jnp.float32)


def frequency_norms(w_pxd: jax.Array) -> jax.Array:
  """[..., F] norm of each frequency k = 0 .. p // 2 of embeddings [..., p, d] (rows: residues)."""
  p = w_pxd.shape[-2]
  coeffs = jnp.einsum("fcx,...xd->...fcd", fourier_basis(p),
                      w_pxd.astype(jnp.float32))
  return jnp.sqrt(jnp.sum(jnp.square(coeffs), axis=(-2, -1)))


def gini(x: jax.Array) -> jax.Array:
  """Gini coefficient of nonnegative values over the last axis.

  sum_ij |x_i - x_j| / (2 n sum_i x_i): 0 for a uniform vector, (n - 1) / n
  for a one-hot one (its maximum).
  """
  n = x.shape[-1]
  diffs = jnp.abs(x[..., :, None] - x[..., None, :])
  return jnp.sum(diffs, axis=(-2, -1)) / (2 * n * jnp.sum(x, axis=-1))


def ipr(x: jax.Array) -> jax.Array:
  """Inverse participation ratio sum_i x_i^4 / (sum_i x_i^2)^2 over the last axis.

  1 for a one-hot vector, 1 / n for a uniform one (Gromov 2023; Doshi et al.
  2024 use it on Fourier norms).
  """
  sq = jnp.square(x)
  return jnp.sum(jnp.square(sq), axis=-1) / jnp.square(jnp.sum(sq, axis=-1))


def key_frequencies(norms_F: jax.Array, ratio: float = 10.0,
                    min_share: float = 0.02) -> jax.Array:
  """bool [..., F]: the key frequencies of frequency norms (rule in the module doc); k = 0 is never key."""
  energy = jnp.square(norms_F[..., 1:])
  median = jnp.median(energy, axis=-1, keepdims=True)
  share = energy / jnp.sum(energy, axis=-1, keepdims=True)
  key = (energy >= ratio * median) & (share >= min_share)
  return jnp.concatenate([jnp.zeros_like(key[..., :1]), key], axis=-1)


def neuron_frequencies(acts_NxM: jax.Array, operands_Nx2: jax.Array, p: int,
                       dead: float = 1e-12) -> tuple[jax.Array, jax.Array]:
  """(frequency [M] int, share [M]) of each neuron: Nanda et al. 2023's rule.

  A neuron's activations over the table's rows (a, b), centred, are projected
  on the 9 functions {1, cos(w_k a), sin(w_k a)} x {1, cos(w_k b),
  sin(w_k b)} of each frequency k = 1 .. p // 2; its frequency is the k whose
  projection holds the largest share of its energy (over the full p x p grid
  these are the official code's `extract_freq_2d` terms of `fft2d` and the
  projection is the sum of their squared coefficients; over a partial table,
  the least-squares projection on the same span). A dead neuron (energy below
  `dead` per row) gets frequency -1 and share 0. The official loop runs k over
  1 .. p // 2 - 1 (`range(1, p//2)`); this one includes p // 2.
  """
  acts = acts_NxM.astype(jnp.float32)
  acts = acts - jnp.mean(acts, axis=0, keepdims=True)
  a = operands_Nx2[:, 0].astype(jnp.float32)
  b = operands_Nx2[:, 1].astype(jnp.float32)
  k = jnp.arange(1, p // 2 + 1, dtype=jnp.float32)[:, None]     # [F, 1]
  wa = 2 * jnp.pi * k * a[None] / p                             # [F, N]
  wb = 2 * jnp.pi * k * b[None] / p
  one = jnp.ones_like(wa)
  fa = jnp.stack([one, jnp.cos(wa), jnp.sin(wa)], axis=1)        # [F, 3, N]
  fb = jnp.stack([one, jnp.cos(wb), jnp.sin(wb)], axis=1)
  g = (fa[:, :, None] * fb[:, None, :]).reshape(k.shape[0], 9, -1)
  gram = jnp.einsum("fin,fjn->fij", g, g)
  # sin vanishes at k = p / 2 (even p): a tiny ridge keeps the solve defined
  gram = gram + 1e-6 * jnp.eye(9)[None] * jnp.trace(
      gram, axis1=1, axis2=2)[:, None, None] / 9
  ga = jnp.einsum("fin,nm->fim", g, acts)                        # [F, 9, M]
  coef = jnp.linalg.solve(gram, ga)
  explained = jnp.sum(coef * ga, axis=1)                         # [F, M]
  energy = jnp.sum(jnp.square(acts), axis=0)                     # [M]
  alive = energy > dead * acts.shape[0]
  share = explained / jnp.where(alive, energy, 1.0)[None]
  best = jnp.argmax(share, axis=0)
  return (jnp.where(alive, best + 1, -1),
          jnp.where(alive, jnp.max(share, axis=0), 0.0))


def key_frequencies_of_neurons(frequency_M: jax.Array, p: int) -> jax.Array:
  """bool [p // 2 + 1]: the frequencies some living neuron picks (`np.unique`)."""
  counts = jnp.zeros(p // 2 + 2, jnp.int32).at[frequency_M].add(1)  # -1: last
  return counts[: p // 2 + 1] > 0


def sparsity(norms_F: jax.Array) -> dict[str, jax.Array]:
  """Gini and IPR of the non-constant frequencies' norms [..., F]."""
  return {"gini": gini(norms_F[..., 1:]), "ipr": ipr(norms_F[..., 1:])}


def sum_directions(operands_Nx2: jax.Array, p: int,
                   coefficients: tuple[int, int]) -> jax.Array:
  """[F, 2, N] cos / sin (w_k (alpha a + beta b)) over the table's rows (a, b), k = 0 .. p // 2.

  Nanda et al. 2023 (`get_component_cos_xpy` / `get_component_sin_xpy` in
  `helpers.py` of mechanistic-interpretability-grokking/progress-measures-paper)
  project each class's logits, as a function over the (a, b) grid, on
  cos(w (a + b)) and sin(w (a + b)); x - y uses alpha a + beta b = a - b.
  """
  alpha, beta = coefficients
  k = jnp.arange(p // 2 + 1, dtype=jnp.float32)[:, None]
  s = ((alpha * operands_Nx2[:, 0] + beta * operands_Nx2[:, 1]) % p
       ).astype(jnp.float32)
  angle = 2 * jnp.pi * k * s[None] / p
  return jnp.stack([jnp.cos(angle), jnp.sin(angle)], axis=1)


def split_logits(logits_NxC: jax.Array, directions: jax.Array,
                 key_F: jax.Array) -> tuple[jax.Array, jax.Array]:
  """(restricted, excluded) logits [N, C] of Nanda et al. 2023's progress measures.

  As the official code computes them (`test_logits(..., bias_correction=True)`
  and the `get_component_*_xpy` projections in `helpers.py` of
  mechanistic-interpretability-grokking/progress-measures-paper): every
  class's column of logits over the rows is projected on the span of the key
  frequencies' cos / sin (w_k (a + b)) (`sum_directions`; 2 directions per
  frequency, each with its own coefficient per class: 2 C per frequency).
  - restricted: that projection plus each class's mean logit over the rows
    (`bias_correction`: the constant term the projection drops, which a
    per-class bias or the mean activations put there);
  - excluded: the logits minus the projection.
  Over the full p x p grid the directions are orthogonal and the projection
  is the official one's; over a partial table (a symmetric one) it is the
  least-squares projection on the same span.
  """
  logits = logits_NxC.astype(jnp.float32)
  f, two, n = directions.shape
  part = _projection(directions.reshape(f * two, n),
                     jnp.repeat(key_F.astype(bool), two), logits)
  restricted = part + jnp.mean(logits - part, axis=0, keepdims=True)
  return restricted, logits - part


def excluded_loss_by_frequency(logits_NxC: jax.Array, directions: jax.Array,
                               loss_fn) -> jax.Array:
  """[F] `loss_fn(logits)` with one frequency's cos / sin (w_k (a + b)) part
  removed from every class's logits, for each k = 0 .. p // 2.

  Nanda et al. 2023's per-frequency excluded loss (`calculate_excluded_loss`
  of their training code: one key frequency ablated at a time, the train
  loss, no bias correction; the notebook's `calculate_excluded_loss_2D` runs
  it over every frequency, as here). `split_logits`'s excluded logits remove
  all key frequencies at once (`calculate_excluded_loss_2D_full`): the curve
  of the paper's figure. k = 0 removes the constant direction.
  """
  logits = logits_NxC.astype(jnp.float32)
  every = jnp.ones(directions.shape[1], bool)
  return jax.lax.map(
      lambda u_2xN: loss_fn(logits - _projection(u_2xN, every, logits)),
      directions)


def _projection(u_KxN: jax.Array, chosen_K: jax.Array,
                logits_NxC: jax.Array) -> jax.Array:
  """[N, C] least-squares projection of every column on the chosen rows of
  u that do not vanish (sin at k = 0 and p / 2); the others get coefficient 0."""
  active = chosen_K & (jnp.sum(jnp.square(u_KxN), axis=1) > 1e-6)
  u = jnp.where(active[:, None], u_KxN, 0.0)
  gram = u @ u.T + jnp.diag(jnp.where(active, 0.0, 1.0))
  return u.T @ jnp.linalg.solve(gram, u @ logits_NxC)


__all__ = ["excluded_loss_by_frequency", "fourier_basis", "frequency_norms", "gini", "ipr",
           "key_frequencies", "key_frequencies_of_neurons",
           "neuron_frequencies", "sparsity", "sum_directions", "split_logits"]
