"""The model of a linear task: the parameter vector or matrix itself (optionally factorized)."""

from __future__ import annotations

import dataclasses

import flax.linen as nn
import jax
import jax.numpy as jnp

from grokjax.settings import check_at_least, setting


@dataclasses.dataclass(frozen=True)
class LinearModelSettings:
  """--model=linear."""
  linear_depth: int = setting(1, "matrix_completion: the model is a product "
                              "of this many n x n factors (1 = the matrix "
                              "itself)")

  def check(self) -> None:
    check_at_least(self, 1, "linear_depth")


class LinearModel(nn.Module):
  """Returns a* 's estimate: a vector [n], a matrix [n, n], or a product of `depth` factors.

  The input tokens are ignored (a linear task has none); they keep the
  ``apply({"params": p}, tokens)`` signature of the other models. Every entry
  starts N(0, 1) (times the sweep's init scale, e.g. 1e-6 for Notsawo et al.
  2025's tiny init); each of `depth` > 1 factors starts N(0, 1/n), so the
  product A = W_depth ... W_1 has entries of variance ~ 1 / n^(depth - 1)
  before scaling. Regularizers act on the factors (each a 2-D leaf).
  """
  shape: tuple[int, ...]
  depth: int = 1

  @nn.compact
  def __call__(self, unused_tokens: jax.Array | None = None) -> jax.Array:
    if len(self.shape) == 1 or self.depth == 1:
      return self.param("a", nn.initializers.normal(1.0), self.shape,
                        jnp.float32)  # float32 draws, with 64-bit JAX too
    n = self.shape[-1]
    init = nn.initializers.normal(n ** -0.5)
    product = self.param("w_0", init, (n, n), jnp.float32)
    for i in range(1, self.depth):
      product = jnp.matmul(self.param(f"w_{i}", init, (n, n), jnp.float32),
                           product)
    return product
