"""MLP on the two operands: embeddings (concat or sum) or one-hot input, then hidden layers."""

from __future__ import annotations

import dataclasses

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from grokjax.models.parts import Parts
from grokjax.settings import check_choice, setting
from grokjax.models.transformer import activation_fn


class OneHotDense(nn.Module):
  """`Dense` applied to [onehot(t_1), ..., onehot(t_P)] (P * num_tokens inputs), as a gather.

  The kernel is the `Dense` kernel of that input (shape [P * num_tokens,
  features], LeCun normal over fan-in P * num_tokens), and the output is
  sum_p kernel[p * num_tokens + t_p] (+ bias): the same numbers as the
  matmul with the one-hot vectors (each output is the sum of the same P
  products by 1), without the P * num_tokens-wide matmul or its weight
  gradient. For two operands x, y: kernel[x] + kernel[num_tokens + y].
  """
  num_tokens: int
  features: int
  use_bias: bool = True

  @nn.compact
  def __call__(self, tokens_BxP: jax.Array) -> jax.Array:
    positions = tokens_BxP.shape[-1]
    # Drawn in float32 as nn.Dense's (param_dtype): the same numbers with
    # 64-bit JAX on (--loss_dtype=float64, --precision=float64).
    kernel = self.param("kernel", nn.initializers.lecun_normal(),
                        (positions * self.num_tokens, self.features),
                        jnp.float32)
    h = kernel[tokens_BxP[..., 0]]
    for i in range(1, positions):
      h = h + kernel[i * self.num_tokens + tokens_BxP[..., i]]
    if self.use_bias:
      bias = self.param("bias", nn.initializers.zeros, (self.features,),
                        jnp.float32)
      h = h + bias.reshape((1,) * (h.ndim - 1) + (-1,))
    return h


# --mlp_input's choices (``features`` is set for image tasks, never by the flag).
MLP_INPUTS = ("concat", "sum", "product", "onehot")


@dataclasses.dataclass(frozen=True)
class MLPSettings:
  """--model=mlp (its embedding width is --d_model: `ModelSettings`)."""
  mlp_input: str = setting("concat", "MLP input: " + ", ".join(
      MLP_INPUTS) + " (concat, sum or elementwise product of the "
      "operand embeddings, or one-hot operands)")
  mlp_hidden: tuple = setting((256, 256), "MLP hidden widths",
                              kind="int_list")

  def check(self) -> None:
    check_choice("mlp_input", self.mlp_input, MLP_INPUTS)
    if any(w < 1 for w in self.mlp_hidden):
      raise ValueError(f"--mlp_hidden={self.mlp_hidden}: widths must be >= 1")


class MLP(nn.Module):
  """Tokens [B, L] -> logits [B, V] from the operands at `operand_positions`.

  `input`: ``concat`` = [E(x), E(y)] (Gromov 2023, Notsawo 2026), ``sum`` =
  E(x) + E(y) (Liu et al. 2022), ``product`` = E(x) * E(y) elementwise
  (Notsawo et al. 2025's MLP), ``onehot`` = [onehot(x), onehot(y)] with no
  embedding (Prieto et al. 2025's 226-200-200-113 MLP for p=113). With more
  than two operand positions (e.g. the bits of a parity task) each input
  mode extends to all of them. ``features``: the input is already a float
  vector [B, D] (image tasks: Omnigrok's 784-200-200-10 MLP).
  """
  num_tokens: int
  num_classes: int
  operand_positions: tuple[int, ...]
  hidden: tuple[int, ...] = (256, 256)
  embed_dim: int = 128
  input: str = "concat"
  activation: str = "relu"
  use_bias: bool = True

  @nn.compact
  def __call__(self, tokens_BxL: jax.Array) -> jax.Array:
    act = activation_fn(self.activation)
    widths = tuple(self.hidden) + (self.num_classes,)
    names = [f"hidden_{i}" for i in range(len(self.hidden))] + ["readout"]
    if self.input == "features":  # float feature vectors (images): [B, D]
      h = tokens_BxL
    elif self.input == "onehot":
      operands_BxP = tokens_BxL[:, np.asarray(self.operand_positions)]
      h = OneHotDense(self.num_tokens, widths[0], self.use_bias,
                      name=names[0])(operands_BxP)
      widths, names = widths[1:], names[1:]
      h = act(h) if names else h
    else:
      operands_BxP = tokens_BxL[:, np.asarray(self.operand_positions)]
      e_BxPxD = nn.Embed(self.num_tokens, self.embed_dim,
                         name="embed")(operands_BxP)
      if self.input == "sum":
        h = jnp.sum(e_BxPxD, axis=1)
      elif self.input == "product":
        h = jnp.prod(e_BxPxD, axis=1)
      else:
        h = e_BxPxD.reshape(e_BxPxD.shape[0], -1)
    for i, (width, name) in enumerate(zip(widths, names)):
      h = nn.Dense(width, use_bias=self.use_bias, name=name)(h)
      h = act(h) if i < len(widths) - 1 else h
    return h


def _relu_layers(model: MLP, params, tokens_BxL: jax.Array
                 ) -> tuple[jax.Array, list[tuple[jax.Array, jax.Array]]]:
  """The first linear layer's input vectors and every linear (kernel, bias)
  layer, readout last (a layer without biases gets zeros).

  The input is [E(x), E(y)] (concat), E(x) + E(y) (sum), E(x) * E(y)
  (product), the one-hot [onehot(x), onehot(y)] (onehot), or the pixel
  vector itself (features: image tasks).
  """
  if model.input == "features":
    inputs = tokens_BxL.astype(jnp.float32)
  elif model.input == "onehot":
    operands = tokens_BxL[:, np.asarray(model.operand_positions)]
    inputs = jax.nn.one_hot(operands, model.num_tokens).reshape(
        operands.shape[0], -1)
  else:
    operands = tokens_BxL[:, np.asarray(model.operand_positions)]
    e = params["embed"]["embedding"][operands]  # [B, P, D]
    inputs = {"sum": lambda: jnp.sum(e, axis=1),
              "product": lambda: jnp.prod(e, axis=1),
              "concat": lambda: e.reshape(e.shape[0], -1)}[model.input]()
  layers = []
  for name in [f"hidden_{i}" for i in range(len(model.hidden))] + ["readout"]:
    kernel = params[name]["kernel"]
    bias = params[name].get("bias", jnp.zeros(kernel.shape[-1], kernel.dtype))
    layers.append((kernel, bias))
  return inputs, layers


def parts(config, inputs: str) -> Parts:
  """The MLP's parts (`grokjax.models.parts`), for a task with `inputs`
  (`grokjax.tasks.INPUT_KINDS`): the operand embedding `embed` (the one-hot
  MLP has none; its input vectors are its first kernel's rows; images:
  neither), the readout `readout`, and with ReLU
  units every linear layer for the local complexity. No neurons part:
  the measures take the key frequencies from its embedding."""
  mode = "features" if inputs == "image" else config.mlp_input
  name = f"--model=mlp --mlp_input={mode}"
  embedding = input_vectors = None
  if mode == "onehot":  # [P * num_tokens, width], the first operand's first
    input_vectors = lambda params: params["hidden_0"]["kernel"]
  elif mode != "features":
    embedding = input_vectors = lambda params: params["embed"]["embedding"]
  relu = config.activation == "relu"
  return Parts(name if relu else f"{name} --activation={config.activation}",
               embedding=embedding, input_vectors=input_vectors,
               readout=lambda params: params["readout"]["kernel"],
               relu_layers=_relu_layers if relu else None)
