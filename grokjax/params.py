"""Each parameter leaf as the linear map it applies: the one place that knows the kernels' layouts.

Flax stores a kernel with its input axes first and its output axes last:
- `nn.Dense` [n_in, n_out] and `nn.Embed` [vocab, d] (a row per token);
- the attention's query / key / value `nn.DenseGeneral((H, k))` [d, H, k]:
  one input axis, the map is [d, H * k];
- its output projection `nn.DenseGeneral(d, axis=(-2, -1))` [H, k, d]: two
  input axes, the map is [H * k, d] (read as [H, k * d], as a naive unfolding
  does, its rank could not exceed H); a 3-D leaf has one input axis unless
  the model that owns it says otherwise (`register_input_axes`; the
  transformer registers "attn.out.kernel" when grokjax.models is imported,
  which importing grokjax does);
- `nn.Conv` [kh, kw, c_in, c_out]: every axis but the last is an input axis
  (the im2col matrix [kh * kw * c_in, c_out]).

`as_matrix` gives that [fan_in, fan_out] matrix; the weight measures (norms,
nuclear norm, effective rank) and the nuclear-norm regularizers use it, so a
3-D or 4-D kernel is measured and penalized as the map it is.
"""

from __future__ import annotations

import math

import jax

# Leaves (by the end of their name) whose kernel has more than one input
# axis, declared by the model that owns the layer (`register_input_axes`:
# the transformer's attention output projection).
_INPUT_AXES: dict[str, int] = {}


def register_input_axes(suffix: str, axes: int) -> None:
  """A model declares that its leaves named ``*suffix`` (ndim 3) have `axes`
  leading input axes; every other 3-D leaf has one (`input_axes`)."""
  if _INPUT_AXES.get(suffix, axes) != axes:
    raise ValueError(f"register_input_axes: {suffix!r} is registered with "
                     f"{_INPUT_AXES[suffix]} input axes, not {axes}")
  _INPUT_AXES[suffix] = axes


def layer_name(path) -> str:
  """'block_0.attn.query.kernel' for a flax parameter path."""
  return ".".join(str(getattr(k, "key", k)) for k in path)


def input_axes(name: str, ndim: int) -> int:
  """How many leading axes of the leaf `name` (ndim >= 2) are the map's inputs."""
  if ndim == 3:
    for suffix, axes in _INPUT_AXES.items():
      if name.endswith(suffix):
        return axes
  if ndim == 4:  # a convolution kernel
    return 3
  return 1


def as_matrix(name: str, leaf: jax.Array) -> jax.Array:
  """The leaf (ndim >= 2) as its linear map [fan_in, fan_out] (see the module doc)."""
  if leaf.ndim < 2:
    raise ValueError(f"{name}: shape {leaf.shape} is not a linear map "
                     "(it needs 2 or more axes)")
  if leaf.ndim == 2:
    return leaf
  k = input_axes(name, leaf.ndim)
  return leaf.reshape(math.prod(leaf.shape[:k]), -1)


def unit_rows(name: str, leaf: jax.Array) -> jax.Array:
  """The leaf (ndim >= 2) as [units, fan]: one row per output unit (a filter, a neuron, a token's embedding).

  Li et al. 2018's filter normalization rescales each of these rows (their
  code iterates over a PyTorch weight's first axis, its output units; an
  `nn.Embedding`'s first axis is the token). A flax `Embed` [vocab, d] is
  already a row per token; a kernel is the transpose of `as_matrix`, so the
  attention's query [d, H, k] has H * k units (not k pooled over heads).
  `from_unit_rows` undoes it.
  """
  if name.endswith("embedding"):
    return leaf
  return as_matrix(name, leaf).T


def from_unit_rows(name: str, rows: jax.Array, shape) -> jax.Array:
  """Inverse of `unit_rows`: rows [units, fan] back to the leaf's shape."""
  if name.endswith("embedding"):
    return rows.reshape(shape)
  return rows.T.reshape(shape)


__all__ = ["layer_name", "input_axes", "register_input_axes", "as_matrix", "unit_rows",
           "from_unit_rows"]
