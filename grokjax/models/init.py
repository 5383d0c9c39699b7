"""Initialization presets: draw a model's initial parameters as another codebase does.

Grokking is sensitive to the initial weights (Omnigrok: the init scale alone
turns it on and off), and the peers' codebases differ from Flax's defaults,
so a reproduction that misses may be an initialization difference. `--init`
redraws the weights flax's `init` made (same shapes, same parameter names)
with the preset's distributions, then `--init_scale` multiplies them:

- ``flax`` (default): Flax's own: Dense / DenseGeneral / Conv kernels
  LeCun normal (truncated normal, variance 1 / fan_in), biases 0,
  `nn.Embed` N(0, 1 / d) (its default `variance_scaling(1, "fan_in",
  "normal", out_axis=0)` counts the d features as the fan-in: std
  1/sqrt(d), where torch.nn's Embedding has std 1), LayerNorm scale 1 and
  bias 0 (the positional embedding: grokjax's transformer's own).
- ``pytorch``: torch.nn's defaults, as in Power et al.'s (openai/grok) and
  Grokfast's (ironjr/grokfast) codebases: every kernel (`nn.Linear`,
  `nn.Conv2d`: `kaiming_uniform_(a=sqrt(5))`) U(-1/sqrt(fan_in),
  1/sqrt(fan_in)), its bias U(-1/sqrt(fan_in), 1/sqrt(fan_in)), embeddings
  (`nn.Embedding`, the positional one too) N(0, 1), LayerNorm 1 / 0.
  (`nn.MultiheadAttention` draws its packed in-projection xavier-uniform
  with zero bias; grokjax's attention has separate projections, drawn here
  as `nn.Linear`s.)
- ``grokfast``: ``pytorch`` with Grokfast's attention, a
  `torch.nn.MultiheadAttention` (ironjr/grokfast `main.py`): its packed
  in-projection [3d, d] `xavier_uniform_`, so query, key and value kernels
  U(-sqrt(6 / (d + 3d)), +sqrt(6 / (d + 3d))), and its in-projection and
  out-projection biases 0 (with `--attn_bias`).
- ``nanda``: Nanda et al. 2023's transformer
  (mechanistic-interpretability-grokking/progress-measures-paper,
  `transformers.py`): W_E, W_pos, W_Q, W_K, W_V, W_O, W_in and W_out
  N(0, 1 / d_model), W_U N(0, 1 / d_vocab) with d_vocab = p + 1 (the
  classes and "="), MLP biases 0. Transformers only.
- ``gu``: Gu et al. 2025's transformer (Qihuai27/Grokking-Insight,
  ``transformer/base.py``, ``rec.py``, ``str.py``), Nanda et al.'s with one
  difference: W_U is N(0, 1 / d_model) too (``randn(d_model, p) /
  sqrt(d_model)``). Every other weight is drawn as ``nanda`` draws it, from
  the same keys. Transformers only.

fan_in is that of the weight's linear map (`grokjax.params.as_matrix`).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from grokjax.params import as_matrix, layer_name

INIT_PRESETS = ("flax", "pytorch", "grokfast", "nanda", "gu")


def _uniform(key, shape, bound):
  return jax.random.uniform(key, shape, jnp.float32, -bound, bound)


def _normal(key, shape, std):
  return std * jax.random.normal(key, shape, jnp.float32)


def _fan_in(name: str, kernel) -> int:
  return as_matrix(name, kernel).shape[0]


def _pytorch(name: str, w, key, siblings: dict) -> jax.Array | None:
  if name.endswith("embedding") or name == "pos_embed":
    return _normal(key, w.shape, 1.0)
  if name.endswith("kernel"):
    return _uniform(key, w.shape, _fan_in(name, w) ** -0.5)
  if name.endswith("bias") and "kernel" in siblings:
    kernel_name = name[:-len("bias")] + "kernel"
    return _uniform(key, w.shape,
                    _fan_in(kernel_name, siblings["kernel"]) ** -0.5)
  return None  # LayerNorm scale / bias: the same in both


def _grokfast(name: str, w, key, siblings: dict) -> jax.Array | None:
  if name.endswith(("attn.query.kernel", "attn.key.kernel",
                    "attn.value.kernel")):
    d = w.shape[0]  # [d, H, k]: the packed in_proj_weight is [3d, d]
    return _uniform(key, w.shape, (6 / (d + 3 * d)) ** 0.5)
  if ".attn." in f".{name}" and name.endswith("bias"):
    return jnp.zeros(w.shape, jnp.float32)
  return _pytorch(name, w, key, siblings)


def _nanda(name: str, w, key, d_model: int, unembed_std: float | None = None
           ) -> jax.Array | None:
  if name == "unembed.kernel":  # Nanda: 1/sqrt(d_vocab), d_vocab = p + 1
    return _normal(key, w.shape, unembed_std or (w.shape[1] + 1) ** -0.5)
  if (name in ("embed.embedding", "pos_embed") or name.endswith(
      ("attn.query.kernel", "attn.key.kernel", "attn.value.kernel",
       "attn.out.kernel", "mlp_in.kernel", "mlp_out.kernel"))):
    return _normal(key, w.shape, d_model ** -0.5)
  if name.endswith(("mlp_in.bias", "mlp_out.bias")):
    return jnp.zeros(w.shape, jnp.float32)
  return None


def apply_init_preset(params: Any, preset: str, key: jax.Array) -> Any:
  """The params redrawn by `preset` (see the module doc); ``flax`` returns them unchanged."""
  if preset == "flax":
    return params
  if preset not in INIT_PRESETS:
    raise ValueError(f"--init={preset}: unknown; choose from "
                     f"{', '.join(INIT_PRESETS)}")
  if preset in ("nanda", "gu"):
    if "embed" not in params or "unembed" not in params:
      raise ValueError(f"--init={preset}: this initialization is a "
                       "transformer's (embed, unembed); use --model="
                       "transformer or another --init")
    d_model = params["embed"]["embedding"].shape[1]
  flat, treedef = jax.tree_util.tree_flatten_with_path(params)
  keys = jax.random.split(key, len(flat))
  out = []
  for k, (path, w) in zip(keys, flat):
    name = layer_name(path)
    parent = params
    for p in path[:-1]:
      parent = parent[getattr(p, "key", p)]
    siblings = parent if isinstance(parent, dict) else {}
    if preset in ("nanda", "gu"):
      new = _nanda(name, w, k, d_model,
                   d_model ** -0.5 if preset == "gu" else None)
    else:
      new = (_pytorch if preset == "pytorch" else _grokfast)(name, w, k,
                                                             siblings)
    out.append(w if new is None else new.astype(w.dtype))
  return jax.tree_util.tree_unflatten(treedef, out)


__all__ = ["INIT_PRESETS", "apply_init_preset"]
