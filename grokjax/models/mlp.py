"""MLP on the two operands: embeddings (concat or sum) or one-hot input, then hidden layers."""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from grokjax.models.transformer import activation_fn


class MLP(nn.Module):
  """Tokens [B, L] -> logits [B, V] from the operands at `operand_positions`.

  `input`: ``concat`` = [E(x), E(y)] (Gromov 2023, Notsawo 2026), ``sum`` =
  E(x) + E(y) (Liu et al. 2022), ``product`` = E(x) * E(y) elementwise
  (Notsawo et al. 2025's MLP), ``onehot`` = [onehot(x), onehot(y)] with no
  embedding (Prieto et al. 2025's 226-200-200-113 MLP for p=113).
  """
  num_tokens: int
  num_classes: int
  operand_positions: tuple[int, int]
  hidden: tuple[int, ...] = (256, 256)
  embed_dim: int = 128
  input: str = "concat"
  activation: str = "relu"
  use_bias: bool = True
  dtype: Any = None  # of the one-hot input (--precision); layers follow params

  @nn.compact
  def __call__(self, tokens_BxL: jax.Array) -> jax.Array:
    x_B, y_B = (tokens_BxL[:, i] for i in self.operand_positions)
    if self.input == "onehot":
      dtype = self.dtype or jnp.float32
      h = jnp.concatenate([jax.nn.one_hot(x_B, self.num_tokens, dtype=dtype),
                           jax.nn.one_hot(y_B, self.num_tokens, dtype=dtype)],
                          axis=-1)
    else:
      embed = nn.Embed(self.num_tokens, self.embed_dim, name="embed")
      if self.input == "sum":
        h = embed(x_B) + embed(y_B)
      elif self.input == "product":
        h = embed(x_B) * embed(y_B)
      else:
        h = jnp.concatenate([embed(x_B), embed(y_B)], axis=-1)
    act = activation_fn(self.activation)
    for i, width in enumerate(self.hidden):
      h = act(nn.Dense(width, use_bias=self.use_bias, name=f"hidden_{i}")(h))
    return nn.Dense(self.num_classes, use_bias=self.use_bias, name="readout")(h)
