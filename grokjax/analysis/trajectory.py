"""The parameter trajectory across saved steps: principal components and step-to-step turning.

Notsawo et al. 2023 ("Is grokking predictable?") find that the flattened
parameters of a grokking run move in a very low-dimensional subspace: the
first two principal components of the trajectory explain > 98% of its
variance. `trajectory_pca` measures that for any member from its snapshots.
"""

from __future__ import annotations

import dataclasses

import jax.numpy as jnp

from grokjax.settings import check_at_least, setting


@dataclasses.dataclass(frozen=True)
class PCASettings:
  """The pca (trajectory) measure's."""
  pca_components: int = setting(5, "principal components of the trajectory "
                                "measure")

  def check(self) -> None:
    check_at_least(self, 1, "pca_components")


def trajectory_pca(points_SxP: jnp.ndarray, k: int = 5) -> jnp.ndarray:
  """[k] explained-variance ratios of the first k principal components of S points in R^P.

  The points are centered over S; the ratios are sigma_i^2 / sum sigma^2 of
  the centered matrix's singular values (at most min(S - 1, P) are
  nonzero; missing components are 0). Their running sum is the share of the
  trajectory's variance that the first components explain.
  """
  x = points_SxP.astype(jnp.float32)
  x = x - jnp.mean(x, axis=0, keepdims=True)
  # The S x S Gram matrix has the same nonzero spectrum and stays small.
  eig = jnp.linalg.eigvalsh(x @ x.T)[::-1]
  eig = jnp.clip(eig, 0.0, None)
  ratios = eig / jnp.maximum(jnp.sum(eig), 1e-30)
  out = jnp.zeros(k, jnp.float32)
  n = min(k, ratios.shape[0])
  return out.at[:n].set(ratios[:n])


__all__ = ["trajectory_pca"]
