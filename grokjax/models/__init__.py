"""Flax Linen models (pure init/apply) and the init-scale transform."""

from __future__ import annotations

import dataclasses
from typing import Any, Callable

import flax.linen as nn
import jax
import jax.numpy as jnp

from grokjax.models import cnn, lstm, mlp, transformer
from grokjax.models.cnn import CNN, ResNet18
from grokjax.models.init import INIT_PRESETS, apply_init_preset
from grokjax.models.linear import LinearModel
from grokjax.models.lstm import LSTMClassifier
from grokjax.models.mlp import MLP, MLP_INPUTS
from grokjax.models.parts import PARTS, NotOffered, Parts, check_parts
from grokjax.models.transformer import (ACTIVATIONS, LN_PLACEMENTS, READOUTS,
                                        Transformer)
from grokjax.tasks import LinearTask, Task, family_of

RESNET_NORMS = ("none", "group")

DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16,
          "float64": jnp.float64}


@dataclasses.dataclass(frozen=True)
class ModelSpec:
  """One registry row: a model name, the task input kinds it reads
  (`tasks.INPUT_KINDS`), its builder from (config, task), its own checks,
  and its parts (config, input kind) -> `Parts`: where it keeps what the
  measures read (`grokjax.models.parts`; the model's own module names its
  layers, nobody else does)."""
  name: str
  inputs: tuple[str, ...]
  help: str
  build: Callable[[Any, Any], nn.Module]
  check: Callable[[Any], None] = lambda config: None
  parts: Callable[[Any, str], Parts] = lambda config, inputs: Parts(
      f"--model={config.model}")


def _transformer(c, task) -> nn.Module:
  # --readout=tokens: one logit per token; answer c is token c (table tasks)
  outputs = task.vocab_size if c.readout == "tokens" else task.num_classes
  return Transformer(vocab_size=task.vocab_size, num_classes=outputs,
                     seq_len=task.seq_len, depth=c.depth, d_model=c.d_model,
                     num_heads=c.num_heads, d_mlp=c.d_mlp,
                     activation=c.activation, layer_norm=c.layer_norm,
                     tie_embeddings=c.tie_embeddings,
                     ln_placement=c.ln_placement, attn_bias=c.attn_bias,
                     ln_eps=c.ln_eps,
                     mlp_bias=c.mlp_bias)


def _mlp(c, task) -> nn.Module:
  # Operands are elements of the table, which are also its classes.
  return MLP(num_tokens=task.num_classes, num_classes=task.num_classes,
             operand_positions=task.operand_positions,
             hidden=tuple(c.mlp_hidden), embed_dim=c.d_model,
             input="features" if getattr(task, "float_inputs", False)
             else c.mlp_input,
             activation=c.activation, use_bias=c.mlp_bias)


def _check_mlp(c) -> None:
  if c.mlp_input not in MLP_INPUTS:
    raise ValueError(f"--mlp_input={c.mlp_input}: choose one of "
                     f"{', '.join(MLP_INPUTS)}")
  if any(w < 1 for w in c.mlp_hidden):
    raise ValueError(f"--mlp_hidden={c.mlp_hidden}: widths must be >= 1")


def _check_cnn(c) -> None:
  if any(ch < 1 for ch in c.cnn_channels):
    raise ValueError(f"--cnn_channels={c.cnn_channels}: must be positive")


def _check_resnet(c) -> None:
  if c.resnet_norm not in RESNET_NORMS:
    raise ValueError(f"--resnet_norm={c.resnet_norm}: choose one of "
                     f"{', '.join(RESNET_NORMS)}")
  if c.resnet_width <= 0:
    raise ValueError(f"--resnet_width={c.resnet_width}: must be positive")


MODELS = {m.name: m for m in (
    ModelSpec("transformer", ("table", "sequence"),
              "decoder-only, readout at the last token (--depth, --d_model, "
              "--num_heads, --d_mlp)", _transformer,
              parts=transformer.parts),
    ModelSpec("mlp", ("table", "image"),
              "operand embeddings (--mlp_input) or pixels through "
              "--mlp_hidden", _mlp, _check_mlp, mlp.parts),
    ModelSpec("linear", ("linear",),
              "the parameter vector/matrix of a linear task",
              lambda c, task: LinearModel(shape=task.target_shape,
                                          depth=c.linear_depth)),
    ModelSpec("cnn", ("image",), "3x3 convolutions + 2x2 average pooling "
              "(--cnn_channels)",
              lambda c, task: CNN(image_shape=task.image_shape,
                                  num_classes=task.num_classes,
                                  channels=tuple(c.cnn_channels)),
              _check_cnn, cnn.parts),
    ModelSpec("resnet18", ("image",), "ResNet-18 without BatchNorm "
              "(--resnet_norm, --resnet_width)",
              lambda c, task: ResNet18(image_shape=task.image_shape,
                                       num_classes=task.num_classes,
                                       norm=c.resnet_norm,
                                       width_factor=c.resnet_width),
              _check_resnet, cnn.parts),
    ModelSpec("lstm", ("table", "sequence"), "one LSTM layer of width "
              "--d_model over the tokens",
              lambda c, task: LSTMClassifier(vocab_size=task.vocab_size,
                                             num_classes=task.num_classes,
                                             embed_dim=c.d_model,
                                             hidden=c.d_model),
              parts=lstm.parts),
)}


def check_model(config, inputs: str) -> None:
  """--model exists, reads the task's `inputs` kind, and its own settings are valid."""
  if config.model not in MODELS:
    raise ValueError(f"--model={config.model}: choose one of "
                     f"{', '.join(MODELS)}")
  if inputs not in MODELS[config.model].inputs:
    fits = [m.name for m in MODELS.values() if inputs in m.inputs]
    raise ValueError(f"--model={config.model}: --task={config.task} has "
                     f"{inputs} inputs; use --model={' or '.join(fits)}")
  if config.activation not in ACTIVATIONS:
    raise ValueError(f"--activation={config.activation}: choose one of "
                     f"{', '.join(ACTIVATIONS)}")
  MODELS[config.model].check(config)


def make_model(config, task) -> nn.Module:
  """The model named by `config.model`, sized for `task`."""
  return MODELS[config.model].build(config, task)


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
                key: jax.Array, init_scale: jax.Array, preset: str = "flax"):
  """A member's initial parameters: `model.init` (redrawn by an `--init` preset), times alpha, in the training dtype."""
  dummy = jnp.zeros((1, task.seq_len), task.inputs.dtype)
  params = model.init(key, dummy)["params"]
  if preset != "flax":  # flax: the key stream is unchanged
    params = apply_init_preset(params, preset, jax.random.fold_in(key, 1))
  return cast_params(scale_init(params, init_scale), precision)


def abstract_params(model: nn.Module, task: Task | LinearTask,
                    precision: str):
  """The parameters' shapes and dtypes (ShapeDtypeStructs), computing nothing."""
  return jax.eval_shape(lambda: init_params(model, task, precision,
                                            jax.random.key(0), 1.0))


def parts_of(config) -> Parts:
  """The parts `config`'s model offers the measures (`grokjax.models.parts`)."""
  return MODELS[config.model].parts(config, family_of(config.task).inputs)


__all__ = ["MODELS", "ModelSpec", "check_model", "ACTIVATIONS", "MLP_INPUTS",
           "CNN", "ResNet18", "LSTMClassifier", "MLP", "Transformer", "LinearModel", "make_model", "scale_init", "init_params", "abstract_params",
           "cast_params", "parts_of", "Parts", "PARTS", "NotOffered", "check_parts", "DTYPES", "INIT_PRESETS", "LN_PLACEMENTS", "READOUTS",
           "apply_init_preset"]
