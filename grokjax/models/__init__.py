"""Flax Linen models (pure init/apply) and the init-scale transform."""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from grokjax.config import Config
from grokjax.models.cnn import CNN, ResNet18
from grokjax.models.linear import LinearModel
from grokjax.models.lstm import LSTMClassifier
from grokjax.models.mlp import MLP
from grokjax.models.transformer import Transformer
from grokjax.tasks import LinearTask, Task

DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16,
          "float64": jnp.float64}


def make_model(config: Config, task: Task | LinearTask) -> nn.Module:
  """The model named by `config.model`, sized for `task`."""
  if config.model == "linear":
    return LinearModel(shape=task.target_shape, depth=config.linear_depth)
  if config.model == "lstm":
    return LSTMClassifier(vocab_size=task.vocab_size,
                          num_classes=task.num_classes,
                          embed_dim=config.d_model, hidden=config.d_model)
  if config.model == "cnn":
    return CNN(image_shape=task.image_shape, num_classes=task.num_classes,
               channels=tuple(config.cnn_channels))
  if config.model == "resnet18":
    return ResNet18(image_shape=task.image_shape,
                    num_classes=task.num_classes, norm=config.resnet_norm,
                    width_factor=config.resnet_width)
  if config.model == "transformer":
    return Transformer(vocab_size=task.vocab_size,
                       num_classes=task.num_classes, seq_len=task.seq_len,
                       depth=config.depth, d_model=config.d_model,
                       num_heads=config.num_heads, d_mlp=config.d_mlp,
                       activation=config.activation,
                       layer_norm=config.layer_norm,
                       tie_embeddings=config.tie_embeddings)
  features = getattr(task, "features", False)
  return MLP(num_tokens=task.num_classes, num_classes=task.num_classes,
             operand_positions=task.operand_positions,
             hidden=tuple(config.mlp_hidden), embed_dim=config.d_model,
             input="features" if features else config.mlp_input,
             activation=config.activation, use_bias=config.mlp_bias)


def scale_init(params, alpha: jax.Array):
  """Multiplies every initial weight by alpha (Omnigrok's init scale; Kumar et al. 2024)."""
  return jax.tree.map(lambda w: w * alpha, params)


def cast_params(params, precision: str):
  """Parameters in the training dtype (`--precision`): every floating leaf.

  The models leave their computation dtype to the parameters' (flax's
  ``dtype=None``), so the forward pass, the loss and the optimizer state follow.
  """
  dtype = DTYPES[precision]
  return jax.tree.map(lambda w: w.astype(dtype)
                      if jnp.issubdtype(w.dtype, jnp.floating) else w, params)


def init_params(model: nn.Module, task: Task | LinearTask, precision: str,
                key: jax.Array, init_scale: jax.Array):
  """A member's initial parameters: `model.init`, times alpha, in the training dtype."""
  dummy = jnp.zeros((1, task.seq_len), task.inputs.dtype)
  return cast_params(scale_init(model.init(key, dummy)["params"], init_scale),
                     precision)


def abstract_params(model: nn.Module, task: Task | LinearTask,
                    precision: str):
  """The parameters' shapes and dtypes (ShapeDtypeStructs), computing nothing."""
  return jax.eval_shape(lambda: init_params(model, task, precision,
                                            jax.random.key(0), 1.0))


def readout_weights(params) -> jax.Array:
  """The last layer's weight matrix: the transformer's unembedding (its
  embedding when tied) or the MLP's readout kernel.

  Thilak et al. 2022 track its norm: slingshot cycles start with its growth.
  """
  for name, leaf in (("unembed", "kernel"), ("readout", "kernel"),
                     ("embed", "embedding")):
    if name in params:
      return params[name][leaf]
  raise ValueError(f"readout_weights: no unembed, readout or embed layer "
                   f"among {sorted(params)}")


__all__ = ["CNN", "ResNet18", "LSTMClassifier", "MLP", "Transformer", "LinearModel", "make_model", "scale_init", "init_params", "abstract_params",
           "cast_params", "readout_weights", "DTYPES"]
