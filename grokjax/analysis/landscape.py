"""Loss-landscape slices around a member's parameters (Li et al. 2018).

`slice_1d` evaluates L(theta + a d) along one direction, `slice_2d` L(theta +
a d1 + b d2) on a grid. The directions the seeds use are d = theta_final -
theta_t (how far along the path to the final solution the loss is convex or
blocked) and filter-normalized random directions: a Gaussian direction whose
every filter (one output unit's weights) is rescaled to the norm of the same
filter of theta, with biases and other vectors zeroed, so slices of networks
at different weight scales are comparable.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable

import jax
import jax.numpy as jnp

from grokjax.params import from_unit_rows, layer_name, unit_rows
from grokjax.settings import check_at_least, setting


@dataclasses.dataclass(frozen=True)
class LandscapeSettings:
  """The landscape measure's: its slices' points, alpha in [-0.5, 1.5]
  towards the final parameters and in [-1, 1] along a random direction."""
  landscape_points: int = setting(21, "points of each loss-landscape slice")

  def check(self) -> None:
    check_at_least(self, 2, "landscape_points")

  def alphas(self) -> tuple[jax.Array, jax.Array]:
    """(towards the final parameters, along the random direction)."""
    return (jnp.linspace(-0.5, 1.5, self.landscape_points),
            jnp.linspace(-1.0, 1.0, self.landscape_points))


def filter_normalized_direction(key: jax.Array, params: Any) -> Any:
  """A random direction like `params`, filter-normalized (Li et al. 2018).

  As their code (`normalize_direction(..., norm="filter")` with
  ignore="biasbn" in tomgoldstein/loss-landscape's net_plotter.py, the tool
  Notsawo et al. 2023 use): each output unit's row of the Gaussian
  direction (`grokjax.params.unit_rows`: a dense unit, a conv filter, a
  token's embedding, one head dimension of one attention head) is rescaled
  to the norm of the same row of the weights; vectors (biases, norm scales)
  are zeroed.
  """
  leaves_with_path, treedef = jax.tree_util.tree_flatten_with_path(params)
  keys = jax.random.split(key, len(leaves_with_path))
  out = []
  for k, (path, w) in zip(keys, leaves_with_path):
    if w.ndim < 2:
      out.append(jnp.zeros_like(w))
      continue
    name = layer_name(path)
    d = unit_rows(name, jax.random.normal(k, w.shape, jnp.float32))
    rows_w = unit_rows(name, w.astype(jnp.float32))
    scale = jnp.linalg.norm(rows_w, axis=1) / (
        jnp.linalg.norm(d, axis=1) + 1e-10)
    out.append(from_unit_rows(name, d * scale[:, None], w.shape).astype(
        w.dtype))
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
