"""Weight statistics per layer and of the embedding (pure jnp on one member's params).

- Norms per weight matrix: l1 (sum |w|), l2 (Frobenius), nuclear (sum of
  singular values), and the effective rank exp(H(sigma / sum sigma)) of Roy &
  Vetterli 2007 (1 for rank one, n for n equal singular values): the measures
  of Notsawo et al. 2025 (l1 / nuclear-norm regularization) and Omnigrok's
  weight norm (Liu et al. 2023).
- Distance from initialization ||theta_t - theta_0|| (Kumar et al. 2024's
  lazy-to-rich transition).
- Embedding uniformity MED = mean_i ||E(i + 1) - E(i)|| (Gu et al. 2025, over
  i = 0 .. p - 3 as their code's slices run) and
  the representation quality index RQI of Liu et al. 2022.

A "matrix" is a parameter leaf with 2 or more axes, read as the linear map it
applies, [fan_in, fan_out] (`grokjax.params.as_matrix`: the attention output
projection [H, k, d] is [H * k, d], a convolution kernel its im2col matrix).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp

from grokjax.params import as_matrix, layer_name
from grokjax.settings import check_positive, setting


@dataclasses.dataclass(frozen=True)
class RQISettings:
  """The embedding measure's RQI (x+y only)."""
  rqi_threshold: float = setting(0.01, "the embedding measure's RQI (Liu "
                                 "et al. 2022): a parallelogram is present "
                                 "when its mean squared defect is below "
                                 "this (their code's threshold_P)")

  def check(self) -> None:
    check_positive(self, "rqi_threshold")


def matrices(params: Any) -> dict[str, jax.Array]:
  """Every weight matrix of a member's params by layer name, as its 2-D float32 linear map."""
  out = {}
  for path, leaf in jax.tree_util.tree_leaves_with_path(params):
    if leaf.ndim >= 2:
      name = layer_name(path)
      out[name] = as_matrix(name, leaf).astype(jnp.float32)
  return out


def effective_rank(w: jax.Array) -> jax.Array:
  """exp of the entropy of the normalized singular values (Roy & Vetterli 2007)."""
  s = jnp.linalg.svd(w, compute_uv=False)
  q = s / jnp.sum(s)
  entropy = -jnp.sum(jnp.where(q > 0, q * jnp.log(jnp.where(q > 0, q, 1.0)),
                               0.0))
  return jnp.exp(entropy)


def matrix_stats(w: jax.Array) -> dict[str, jax.Array]:
  s = jnp.linalg.svd(w, compute_uv=False)
  return {"l1_norm": jnp.sum(jnp.abs(w)), "l2_norm": jnp.linalg.norm(w),
          "nuclear_norm": jnp.sum(s), "effective_rank": effective_rank(w)}


def weight_stats(params: Any) -> dict[str, jax.Array]:
  """Per-matrix stats as '<stat>.<layer>' plus whole-network totals.

  Totals: ``l1_norm`` and ``l2_norm`` over every parameter (biases included),
  ``nuclear_norm`` summed over the matrices and ``effective_rank`` averaged
  over them.
  """
  out = {}
  per = {name: matrix_stats(w) for name, w in matrices(params).items()}
  for name, stats in per.items():
    for stat, value in stats.items():
      out[f"{stat}.{name}"] = value
  leaves = [x.astype(jnp.float32) for x in jax.tree.leaves(params)]
  out["l1_norm"] = sum(jnp.sum(jnp.abs(x)) for x in leaves)
  out["l2_norm"] = jnp.sqrt(sum(jnp.sum(jnp.square(x)) for x in leaves))
  out["nuclear_norm"] = sum(s["nuclear_norm"] for s in per.values())
  out["effective_rank"] = sum(s["effective_rank"] for s in per.values()) / max(
      len(per), 1)
  return out


def flat(params: Any) -> jax.Array:
  """All of a member's parameters as one float32 vector (leaf order of the pytree)."""
  return jnp.concatenate([x.astype(jnp.float32).ravel()
                          for x in jax.tree.leaves(params)])


def distance(params_a: Any, params_b: Any) -> jax.Array:
  """||theta_a - theta_b||_2 over every parameter."""
  return jnp.linalg.norm(flat(params_a) - flat(params_b))


def cosine_distance(params_a: Any, params_b: Any) -> jax.Array:
  """1 - cos(theta_a, theta_b): ~0 between saved steps of lazy training, larger in rich phases."""
  a, b = flat(params_a), flat(params_b)
  return 1.0 - jnp.dot(a, b) / (jnp.linalg.norm(a) * jnp.linalg.norm(b))


def med(embed_pxd: jax.Array, y_embed_pxd: jax.Array | None = None
        ) -> jax.Array:
  """Gu et al. 2025's main embedding diff MED = mean_i ||E(i + 1) - E(i)||, as their code computes it.

  Grokking-Insight's ``transformer/base.py`` logs
  ``calculate_embedding_diff(W_E, 0, p - 1, d, d + p - 1)``: the mean over
  ``W_E[:, a + 1:b] - W_E[:, a:b - 1]`` of each column's norm, for the x
  tokens [0, p - 1) and the y tokens [d, d + p - 1), averaged. The slices
  end at token p - 2, so the mean runs over the p - 2 differences
  i = 0 .. p - 3: the last one, E(p - 1) - E(p - 2), is not in it. With one
  vocabulary for both operands (their d = 0, as in grokjax) both ranges are
  the same and MED is that one mean. `embed_pxd` is the residues' rows
  [p, d], residue order; with the y operand's own rows `y_embed_pxd` (their
  str.py, d = 60: --operand_offset) MED is the average of the two means.
  """
  if y_embed_pxd is not None:
    return 0.5 * (med(embed_pxd) + med(y_embed_pxd))
  e = embed_pxd.astype(jnp.float32)[:-1]
  return jnp.mean(jnp.linalg.norm(e[1:] - e[:-1], axis=-1))


def rqi(embed_pxd: jax.Array, threshold: float = 0.01) -> jax.Array:
  """Representation quality index of Liu et al. 2022 ("Towards understanding grokking") for addition.

  As the official code computes it (ejmichaud/grokking-squared,
  `toy/train_add.py`, `train_add`): each embedding dimension is z-scored over
  the p residues (mean 0, unbiased standard deviation 1, as torch's `std`);
  the ideal parallelograms are the quadruples i < j <= m < n with
  i + n = j + m (over the integers; every pair of distinct unordered pairs
  {i, n} != {j, m} with equal sums, once); one is present when the mean over
  dimensions of (E_i + E_n - E_j - E_m)^2 is below `threshold` (the code's
  `threshold_P` = 0.01); RQI = present / ideal. 1 for a linear
  representation, ~0 for a random one. A dimension that is constant over the
  residues (where the official code divides by zero and every parallelogram
  fails) is taken as z = 0: it separates nothing, so it adds 0 to every
  difference and still counts in the mean.

  A network that groks addition mod p places residues on circles (Nanda et al.
  2023), on which E_i + E_n depends on i - n too: the index stays low there
  by construction, and the Fourier measures are the ones that see that
  structure.
  """
  e = embed_pxd.astype(jnp.float32)
  e = e - jnp.mean(e, axis=0, keepdims=True)
  std = jnp.std(e, axis=0, ddof=1, keepdims=True)
  z = jnp.where(std > 0, e / jnp.where(std > 0, std, 1.0), 0.0)
  p, d = e.shape
  s = jnp.arange(2 * p - 1)[:, None]
  i = jnp.arange(p)[None, :]
  j = s - i
  valid = (j >= 0) & (j < p) & (i <= j)  # one row per unordered pair {i, j}
  jc = jnp.clip(j, 0, p - 1)
  sums_SxPxD = z[jnp.broadcast_to(i, jc.shape)] + z[jc]
  sq_SxP = jnp.sum(jnp.square(sums_SxPxD), axis=-1)
  d2_SxPxP = (sq_SxP[:, :, None] + sq_SxP[:, None, :]
              - 2 * jnp.einsum("sad,sbd->sab", sums_SxPxD, sums_SxPxD))
  # Each unordered pair of pairs once: row index a < b (a strict order on the
  # smaller member of each pair, as i < j in the official enumeration).
  pair = (valid[:, :, None] & valid[:, None, :]
          & (i[0][:, None] < i[0][None, :])[None])
  good = pair & (d2_SxPxP / d < threshold)
  return jnp.sum(good) / jnp.maximum(jnp.sum(pair), 1)


__all__ = ["layer_name", "matrices", "effective_rank", "matrix_stats",
           "weight_stats", "flat", "distance", "cosine_distance", "med", "rqi"]
