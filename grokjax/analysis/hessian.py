"""Extreme eigenvalues of the training-loss Hessian by Lanczos on Hessian-vector products.

The Hessian is never formed: `hvp` is forward-over-reverse (jax.jvp of
jax.grad), one gradient's cost per product. `lanczos` runs m steps with full
reorthogonalization (exact arithmetic would not need it; float32 does) and
returns the Ritz values, whose extremes converge first to the Hessian's
largest and smallest eigenvalues. `hessian_extremes` reports those and their
ratio |lambda_max| / |lambda_min| (the conditioning of the extremes; the
Hessian of an overparameterized network is indefinite and nearly singular,
so this is not the inverse-of-smallest-magnitude condition number).
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree


def hvp(loss_fn: Callable[[Any], jax.Array], params: Any, v: Any) -> Any:
  """H v for the Hessian H of loss_fn at params (forward-over-reverse)."""
  return jax.jvp(jax.grad(loss_fn), (params,), (v,))[1]


def lanczos(matvec: Callable[[jax.Array], jax.Array], dim: int, steps: int,
            key: jax.Array) -> jax.Array:
  """[steps] Ritz values (ascending) of a symmetric operator on R^dim.

  With steps >= dim they are its eigenvalues (up to round-off).
  """
  steps = min(steps, dim)
  v0 = jax.random.normal(key, (dim,), jnp.float32)
  v0 = v0 / jnp.linalg.norm(v0)

  def body(i, carry):
    basis, alphas, betas = carry
    v = basis[i]
    w = matvec(v)
    alpha = jnp.dot(w, v)
    # Full reorthogonalization against every vector so far (twice: stable).
    mask = (jnp.arange(steps) <= i).astype(jnp.float32)[:, None]
    for _ in range(2):
      w = w - (mask * basis).T @ ((mask * basis) @ w)
    beta = jnp.linalg.norm(w)
    nxt = jnp.where(beta > 1e-10, w / jnp.maximum(beta, 1e-10), 0.0)
    basis = basis.at[jnp.minimum(i + 1, steps - 1)].set(
        jnp.where(i + 1 < steps, nxt, basis[steps - 1]))
    return basis, alphas.at[i].set(alpha), betas.at[i].set(beta)

  basis = jnp.zeros((steps, dim), jnp.float32).at[0].set(v0)
  _, alphas, betas = jax.lax.fori_loop(
      0, steps, body, (basis, jnp.zeros(steps), jnp.zeros(steps)))
  tridiag = (jnp.diag(alphas) + jnp.diag(betas[:-1], 1)
             + jnp.diag(betas[:-1], -1))
  return jnp.linalg.eigvalsh(tridiag)


class HessianExtremes(NamedTuple):
  max: jax.Array
  min: jax.Array
  condition: jax.Array


def hessian_extremes(loss_fn: Callable[[Any], jax.Array], params: Any,
                     steps: int = 30, key: jax.Array | None = None
                     ) -> HessianExtremes:
  """Largest and smallest Hessian eigenvalues of loss_fn at params, and |max| / |min|."""
  key = jax.random.key(0) if key is None else key
  flat, unravel = ravel_pytree(jax.tree.map(
      lambda x: x.astype(jnp.float32), params))
  matvec = lambda v: ravel_pytree(hvp(lambda q: loss_fn(unravel(q)), flat,
                                      v))[0]
  ritz = lanczos(matvec, flat.shape[0], steps, key)
  lo, hi = ritz[0], ritz[-1]
  return HessianExtremes(hi, lo, jnp.abs(hi) / jnp.maximum(jnp.abs(lo), 1e-30))


__all__ = ["hvp", "lanczos", "HessianExtremes", "hessian_extremes"]
