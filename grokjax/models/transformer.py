"""Decoder-only transformer with a readout at the last token (Power 2022, Nanda 2023).

Only the last position is read, so the last block computes its query, attention
output and MLP for that position alone: earlier positions only provide keys and
values. Shapes: B batch, L sequence, D width, H heads, K head width, V classes.
"""

from __future__ import annotations

from typing import Callable

import flax.linen as nn
import jax
import jax.numpy as jnp


# --activation's choices (the transformer's and the MLP's hidden layers).
ACTIVATIONS: dict[str, Callable[[jax.Array], jax.Array]] = {
    "relu": nn.relu, "gelu": nn.gelu, "quadratic": jnp.square}


def activation_fn(name: str) -> Callable[[jax.Array], jax.Array]:
  return ACTIVATIONS[name]


class Attention(nn.Module):
  """Multi-head causal self-attention without biases; `last_only` computes one query."""
  num_heads: int

  @nn.compact
  def __call__(self, x_BxLxD: jax.Array, last_only: bool) -> jax.Array:
    d = x_BxLxD.shape[-1]
    k_width = d // self.num_heads
    proj = lambda name: nn.DenseGeneral((self.num_heads, k_width),
                                        use_bias=False, name=name)
    q_in = x_BxLxD[:, -1:] if last_only else x_BxLxD
    q_BxQxHxK = proj("query")(q_in)
    k_BxLxHxK = proj("key")(x_BxLxD)
    v_BxLxHxK = proj("value")(x_BxLxD)
    logits_BxHxQxL = jnp.einsum("bqhk,blhk->bhql", q_BxQxHxK,
                                k_BxLxHxK) / jnp.sqrt(k_width).astype(x_BxLxD.dtype)
    if not last_only:  # the last query sees every key; others are causal.
      length = x_BxLxD.shape[1]
      causal_QxL = jnp.tril(jnp.ones((length, length), bool))
      logits_BxHxQxL = jnp.where(causal_QxL, logits_BxHxQxL,
                                 jnp.finfo(logits_BxHxQxL.dtype).min)
    weights_BxHxQxL = jax.nn.softmax(logits_BxHxQxL, axis=-1)
    out_BxQxHxK = jnp.einsum("bhql,blhk->bqhk", weights_BxHxQxL, v_BxLxHxK)
    out_BxQxD = nn.DenseGeneral(d, axis=(-2, -1), use_bias=False,
                                name="out")(out_BxQxHxK)
    return out_BxQxD[:, 0] if last_only else out_BxQxD


class Block(nn.Module):
  """Residual attention + MLP block, optionally pre-LayerNorm."""
  num_heads: int
  d_mlp: int
  activation: str
  layer_norm: bool

  @nn.compact
  def __call__(self, x_BxLxD: jax.Array, last_only: bool) -> jax.Array:
    norm = (lambda name: nn.LayerNorm(name=name)) if self.layer_norm else (
        lambda name: lambda x: x)
    h = norm("ln_attn")(x_BxLxD)
    residual = x_BxLxD[:, -1] if last_only else x_BxLxD
    x = residual + Attention(self.num_heads, name="attn")(h, last_only)
    h = norm("ln_mlp")(x)
    h = nn.Dense(self.d_mlp, name="mlp_in")(h)
    h = nn.Dense(x.shape[-1], name="mlp_out")(activation_fn(self.activation)(h))
    return x + h


class Transformer(nn.Module):
  """Tokens [B, L] -> logits [B, V] read at the last position."""
  vocab_size: int
  num_classes: int
  seq_len: int
  depth: int = 2
  d_model: int = 128
  num_heads: int = 4
  d_mlp: int = 512
  activation: str = "relu"
  layer_norm: bool = True
  tie_embeddings: bool = False

  @nn.compact
  def __call__(self, tokens_BxL: jax.Array) -> jax.Array:
    embed = nn.Embed(self.vocab_size, self.d_model, name="embed")
    pos_LxD = self.param("pos_embed", nn.initializers.normal(
        1 / jnp.sqrt(self.d_model)), (self.seq_len, self.d_model))
    x = embed(tokens_BxL) + pos_LxD[None, : tokens_BxL.shape[1]]
    for i in range(self.depth):
      x = Block(self.num_heads, self.d_mlp, self.activation, self.layer_norm,
                name=f"block_{i}")(x, last_only=i == self.depth - 1)
    x_BxD = x
    if self.layer_norm:
      x_BxD = nn.LayerNorm(name="ln_final")(x_BxD)
    if self.tie_embeddings:
      return embed.attend(x_BxD)[:, : self.num_classes]
    return nn.Dense(self.num_classes, use_bias=False, name="unembed")(x_BxD)
