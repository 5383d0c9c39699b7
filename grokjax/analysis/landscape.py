"""Loss-landscape slices around a member's parameters (Li et al. 2018).

`slice_1d` evaluates L(theta + a d) along one direction, `slice_2d` L(theta +
a d1 + b d2) on a grid. The directions the seeds use are d = theta_final -
theta_t (how far along the path to the final solution the loss is convex or
blocked) and filter-normalized random directions: a Gaussian direction whose
every filter (a column of a weight matrix: one output unit) is rescaled to the
norm of the same filter of theta, with biases and other vectors zeroed, so
slices of networks at different weight scales are comparable.
"""

from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp


def filter_normalized_direction(key: jax.Array, params: Any) -> Any:
  """A random direction like `params`, filter-normalized (Li et al. 2018)."""
  leaves, treedef = jax.tree.flatten(params)
  keys = jax.random.split(key, len(leaves))
  out = []
  for k, w in zip(keys, leaves):
    if w.ndim < 2:
      out.append(jnp.zeros_like(w))
      continue
    d = jax.random.normal(k, w.shape, jnp.float32)
    mat_d = d.reshape(-1, w.shape[-1])
    mat_w = w.astype(jnp.float32).reshape(-1, w.shape[-1])
    scale = jnp.linalg.norm(mat_w, axis=0) / jnp.maximum(
        jnp.linalg.norm(mat_d, axis=0), 1e-12)
    out.append((mat_d * scale[None, :]).reshape(w.shape).astype(w.dtype))
  return jax.tree.unflatten(treedef, out)


def _moved(params, directions, coefficients):
  return jax.tree.map(
      lambda w, *ds: w + sum(c * d for c, d in zip(coefficients, ds)).astype(
          w.dtype), params, *directions)


def slice_1d(loss_fn: Callable[[Any], jax.Array], params: Any, direction: Any,
             alphas: jax.Array) -> jax.Array:
  """[A] loss_fn(params + a * direction) for each a in `alphas` (a = 0 is the loss at params)."""
  return jax.lax.map(lambda a: loss_fn(_moved(params, [direction], [a])),
                     alphas)


def slice_2d(loss_fn: Callable[[Any], jax.Array], params: Any, d1: Any,
             d2: Any, alphas: jax.Array, betas: jax.Array) -> jax.Array:
  """[A, B] loss_fn(params + a * d1 + b * d2) on the grid alphas x betas."""
  a, b = jnp.meshgrid(alphas, betas, indexing="ij")
  flat = jax.lax.map(lambda ab: loss_fn(_moved(params, [d1, d2], ab)),
                     jnp.stack([a.ravel(), b.ravel()], axis=-1))
  return flat.reshape(a.shape)


__all__ = ["filter_normalized_direction", "slice_1d", "slice_2d"]
