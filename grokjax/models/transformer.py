"""Decoder-only transformer with a readout at the last token (Power 2022, Nanda 2023).

Only the last position is read, so the last block computes its query, attention
output and MLP for that position alone: earlier positions only provide keys and
values. Shapes: B batch, L sequence, D width, H heads, K head width, V classes.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Callable

import flax.linen as nn
import jax
import jax.numpy as jnp

from grokjax import params as params_lib
from grokjax.models.parts import Parts
from grokjax.settings import check_at_least, check_choice, setting


# --activation's choices (the transformer's and the MLP's hidden layers).
# "gelu" is Flax's default, the tanh approximation; "gelu_exact" is the erf
# form, torch.nn.GELU()'s default (Grokfast's and Power et al.'s code).
ACTIVATIONS: dict[str, Callable[[jax.Array], jax.Array]] = {
    "relu": nn.relu, "gelu": nn.gelu,
    "gelu_exact": functools.partial(nn.gelu, approximate=False),
    "quadratic": jnp.square}

# --ln_placement's choices: where a block's LayerNorms sit (Block).
LN_PLACEMENTS = ("pre", "post", "input")
# The head: one logit per answer class, or per vocabulary token (the operator
# and "=" included), as Nanda et al.'s, Grokfast's and danielmamay's code.
READOUTS = ("classes", "tokens")


@dataclasses.dataclass(frozen=True)
class TransformerSettings:
  """--model=transformer (its width --d_model and --activation, --mlp_bias
  are every model's: `grokjax.models.ModelSettings`)."""
  depth: int = setting(2, "transformer blocks")
  num_heads: int = setting(4, "attention heads")
  d_mlp: int = setting(512, "hidden width of the transformer's MLP")
  layer_norm: bool = setting(True, "LayerNorm in the transformer (placed by "
                             "--ln_placement)")
  ln_placement: str = setting("pre", "with --layer_norm: " + ", ".join(
      LN_PLACEMENTS) + " (pre: x + f(LN(x)), a final LN; post: "
      "LN(x + f(x)), Vaswani et al.; input: LN(x) + f(LN(x)) for attention, "
      "as Grokfast's Block)")
  ln_eps: float = setting(1e-6, "with --layer_norm: the LayerNorms' epsilon "
                          "(flax's default 1e-6; torch.nn.LayerNorm's, as "
                          "Grokfast's and danielmamay's code, 1e-5)")
  attn_bias: bool = setting(False, "biases in the attention projections "
                            "(torch.nn.MultiheadAttention has them)")
  tie_embeddings: bool = setting(False, "unembed with the embedding matrix")
  readout: str = setting("classes", "the transformer's head: " + ", ".join(
      READOUTS) + " (classes: one logit per answer class; tokens: "
      "one per vocabulary token, the operator and '=' included, as Nanda "
      "et al.'s, Grokfast's and danielmamay's code: a table task's answer c "
      "is token c, and a prediction of another token is wrong)")

  def check(self) -> None:
    check_at_least(self, 1, "depth", "num_heads", "d_mlp")
    check_choice("ln_placement", self.ln_placement, LN_PLACEMENTS)
    if self.ln_placement != "pre" and not self.layer_norm:
      raise ValueError(f"--ln_placement={self.ln_placement}: there is no "
                       "LayerNorm to place (--nolayer_norm); drop one flag")
    check_choice("readout", self.readout, READOUTS)
    if not self.ln_eps > 0:
      raise ValueError(f"--ln_eps={self.ln_eps}: must be > 0")
    if self.ln_eps != 1e-6 and not self.layer_norm:
      raise ValueError(f"--ln_eps={self.ln_eps}: there is no LayerNorm "
                       "(--nolayer_norm); drop one flag")

# The attention's output projection `attn.out` is a DenseGeneral over the
# (head, head width) axes: its kernel [H, K, D] has two input axes.
params_lib.register_input_axes("attn.out.kernel", 2)


def activation_fn(name: str) -> Callable[[jax.Array], jax.Array]:
  return ACTIVATIONS[name]


class Attention(nn.Module):
  """Multi-head causal self-attention (biases optional); `last_only` computes one query."""
  num_heads: int
  use_bias: bool = False

  @nn.compact
  def __call__(self, x_BxLxD: jax.Array, last_only: bool) -> jax.Array:
    d = x_BxLxD.shape[-1]
    k_width = d // self.num_heads
    proj = lambda name: nn.DenseGeneral((self.num_heads, k_width),
                                        use_bias=self.use_bias, name=name)
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
    out_BxQxD = nn.DenseGeneral(d, axis=(-2, -1), use_bias=self.use_bias,
                                name="out")(out_BxQxHxK)
    return out_BxQxD[:, 0] if last_only else out_BxQxD


class Block(nn.Module):
  """Residual attention + MLP block; LayerNorms placed by `ln_placement`.

  - ``pre`` (default): x + attn(LN(x)), then x + mlp(LN(x)); the stream itself
    is never normalized (GPT-2; Power et al.'s and Nanda's, which has none).
  - ``post``: LN(x + attn(x)), then LN(x + mlp(x)) (Vaswani et al. 2017).
  - ``input``: h = LN(x); h + attn(h), then x + mlp(LN(x)): the attention's
    residual is the normalized stream, as Grokfast's `Block.forward`
    (`x = self.ln_1(x); x = x + a`).
  """
  num_heads: int
  d_mlp: int
  activation: str
  layer_norm: bool
  ln_placement: str = "pre"
  attn_bias: bool = False
  mlp_bias: bool = True
  ln_eps: float = 1e-6

  @nn.compact
  def __call__(self, x_BxLxD: jax.Array, last_only: bool) -> jax.Array:
    norm = (lambda name: nn.LayerNorm(epsilon=self.ln_eps, name=name)
            ) if self.layer_norm else (
        lambda name: lambda x: x)
    attention = Attention(self.num_heads, self.attn_bias, name="attn")
    last = (lambda x: x[:, -1]) if last_only else (lambda x: x)
    if self.ln_placement == "post":
      x = norm("ln_attn")(last(x_BxLxD) + attention(x_BxLxD, last_only))
      return norm("ln_mlp")(x + self._mlp(x))
    h = norm("ln_attn")(x_BxLxD)
    residual = h if self.ln_placement == "input" else x_BxLxD
    x = last(residual) + attention(h, last_only)
    return x + self._mlp(norm("ln_mlp")(x))

  def _mlp(self, x: jax.Array) -> jax.Array:
    h = nn.Dense(self.d_mlp, use_bias=self.mlp_bias, name="mlp_in")(x)
    return nn.Dense(x.shape[-1], use_bias=self.mlp_bias, name="mlp_out")(
        activation_fn(self.activation)(h))


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
  ln_placement: str = "pre"
  attn_bias: bool = False
  mlp_bias: bool = True
  ln_eps: float = 1e-6  # flax's default; torch.nn.LayerNorm's is 1e-5

  @nn.compact
  def __call__(self, tokens_BxL: jax.Array) -> jax.Array:
    embed = nn.Embed(self.vocab_size, self.d_model, name="embed")
    pos_LxD = self.param("pos_embed", nn.initializers.normal(
        1 / jnp.sqrt(self.d_model)), (self.seq_len, self.d_model),
        jnp.float32)  # float32 draws as flax's layers, with 64-bit JAX too
    x = embed(tokens_BxL) + pos_LxD[None, : tokens_BxL.shape[1]]
    for i in range(self.depth):
      x = Block(self.num_heads, self.d_mlp, self.activation, self.layer_norm,
                self.ln_placement, self.attn_bias, self.mlp_bias,
                self.ln_eps, name=f"block_{i}")(x, last_only=i == self.depth - 1)
    x_BxD = x
    if self.layer_norm and self.ln_placement != "post":  # post: already normed
      x_BxD = nn.LayerNorm(epsilon=self.ln_eps, name="ln_final")(x_BxD)
    if self.tie_embeddings:
      return embed.attend(x_BxD)[:, : self.num_classes]
    return nn.Dense(self.num_classes, use_bias=False, name="unembed")(x_BxD)


def _neurons(model: Transformer, params, tokens_BxL: jax.Array) -> jax.Array:
  """[B, d_mlp] the last block's MLP activations at the readout position."""
  last = f"block_{model.depth - 1}"
  _, state = model.apply(
      {"params": params}, tokens_BxL,
      capture_intermediates=lambda m, name: (
          m.name == "mlp_in" and m.parent is not None
          and m.parent.name == last))
  (pre,) = state["intermediates"][last]["mlp_in"]["__call__"]
  return activation_fn(model.activation)(pre)


def _embedding(params) -> jax.Array:
  return params["embed"]["embedding"]


def parts(config, inputs: str) -> Parts:
  """The transformer's parts (`grokjax.models.parts`): the token embedding
  `embed`, the readout `unembed` (tied: the embedding transposed, one column
  per token, of which the head reads the first num_classes) and the last
  block's MLP neurons at the readout position (Nanda et al. 2023's).
  `inputs`: the task's input kind (the same parts for each)."""
  del inputs
  def readout(params):
    if config.tie_embeddings:
      return params["embed"]["embedding"].T
    return params["unembed"]["kernel"]
  return Parts("--model=transformer",
               embedding=_embedding, input_vectors=_embedding,
               readout=readout, neurons=_neurons)
