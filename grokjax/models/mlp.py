"""MLP on the two operands: embeddings (concat or sum) or one-hot input, then hidden layers."""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from grokjax.models.transformer import activation_fn


class OneHotDense(nn.Module):
  """`Dense` applied to [onehot(x), onehot(y)] (2 * num_tokens inputs), as a gather.

  The kernel is the `Dense` kernel of that input (shape [2 * num_tokens,
  features], LeCun normal over fan-in 2 * num_tokens), and the output is
  kernel[x] + kernel[num_tokens + y] (+ bias): the same numbers as the matmul
  with the one-hot vectors (each output is the sum of the same two products
  by 1), without the 2 * num_tokens-wide matmul or its weight gradient.
  """
  num_tokens: int
  features: int
  use_bias: bool = True

  @nn.compact
  def __call__(self, x_B: jax.Array, y_B: jax.Array) -> jax.Array:
    kernel = self.param("kernel", nn.initializers.lecun_normal(),
                        (2 * self.num_tokens, self.features))
    h = kernel[x_B] + kernel[self.num_tokens + y_B]
    if self.use_bias:
      bias = self.param("bias", nn.initializers.zeros, (self.features,))
      h = h + bias.reshape((1,) * (h.ndim - 1) + (-1,))
    return h


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

  @nn.compact
  def __call__(self, tokens_BxL: jax.Array) -> jax.Array:
    x_B, y_B = (tokens_BxL[:, i] for i in self.operand_positions)
    act = activation_fn(self.activation)
    widths = tuple(self.hidden) + (self.num_classes,)
    names = [f"hidden_{i}" for i in range(len(self.hidden))] + ["readout"]
    if self.input == "onehot":
      h = OneHotDense(self.num_tokens, widths[0], self.use_bias,
                      name=names[0])(x_B, y_B)
      widths, names = widths[1:], names[1:]
      h = act(h) if names else h
    else:
      embed = nn.Embed(self.num_tokens, self.embed_dim, name="embed")
      if self.input == "sum":
        h = embed(x_B) + embed(y_B)
      elif self.input == "product":
        h = embed(x_B) * embed(y_B)
      else:
        h = jnp.concatenate([embed(x_B), embed(y_B)], axis=-1)
    for i, (width, name) in enumerate(zip(widths, names)):
      h = nn.Dense(width, use_bias=self.use_bias, name=name)(h)
      h = act(h) if i < len(widths) - 1 else h
    return h
