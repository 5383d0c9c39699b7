"""Flax Linen models (pure init/apply) and the init-scale transform.

`MODELS` is the registry: each `ModelSpec` names the task input kinds it
reads, its builder, its own checks, its parts (`grokjax.models.parts`) and
the settings blocks it reads beside `ModelSettings` (`grokjax.settings`);
each of those gets a `View` of exactly those settings.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable

import flax.linen as nn
import jax
import jax.numpy as jnp

from grokjax import settings as settings_lib
from grokjax.models import cnn, lstm, mlp, transformer
from grokjax.models.cnn import (CNN, RESNET_NORMS, CNNSettings, ResNet18,
                                ResNetSettings)
from grokjax.models.init import INIT_PRESETS, apply_init_preset
from grokjax.models.linear import LinearModel, LinearModelSettings
from grokjax.models.lstm import LSTMClassifier
from grokjax.models.mlp import MLP, MLP_INPUTS, MLPSettings
from grokjax.models.parts import PARTS, NotOffered, Parts, check_parts
from grokjax.models.transformer import (ACTIVATIONS, LN_PLACEMENTS, READOUTS,
                                        Transformer, TransformerSettings)
from grokjax.settings import check_at_least, check_choice, setting
from grokjax.tasks import LinearTask, Task, family_of

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
  settings: tuple[type, ...] = ()

  def view(self, config) -> settings_lib.View:
    """What this row may read of `config`: `ModelSettings` and its blocks."""
    return settings_lib.View(config, (ModelSettings,) + self.settings,
                             f"model {self.name}")


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


MODELS = {m.name: m for m in (
    ModelSpec("transformer", ("table", "sequence"),
              "decoder-only, readout at the last token (--depth, --d_model, "
              "--num_heads, --d_mlp)", _transformer,
              parts=transformer.parts, settings=(TransformerSettings,)),
    ModelSpec("mlp", ("table", "image"),
              "operand embeddings (--mlp_input) or pixels through "
              "--mlp_hidden", _mlp, parts=mlp.parts,
              settings=(MLPSettings,)),
    ModelSpec("linear", ("linear",),
              "the parameter vector/matrix of a linear task",
              lambda c, task: LinearModel(shape=task.target_shape,
                                          depth=c.linear_depth),
              settings=(LinearModelSettings,)),
    ModelSpec("cnn", ("image",), "3x3 convolutions + 2x2 average pooling "
              "(--cnn_channels)",
              lambda c, task: CNN(image_shape=task.image_shape,
                                  num_classes=task.num_classes,
                                  channels=tuple(c.cnn_channels)),
              parts=cnn.parts, settings=(CNNSettings,)),
    ModelSpec("resnet18", ("image",), "ResNet-18 without BatchNorm "
              "(--resnet_norm, --resnet_width)",
              lambda c, task: ResNet18(image_shape=task.image_shape,
                                       num_classes=task.num_classes,
                                       norm=c.resnet_norm,
                                       width_factor=c.resnet_width),
              parts=cnn.parts, settings=(ResNetSettings,)),
    ModelSpec("lstm", ("table", "sequence"), "one LSTM layer of width "
              "--d_model over the tokens",
              lambda c, task: LSTMClassifier(vocab_size=task.vocab_size,
                                             num_classes=task.num_classes,
                                             embed_dim=c.d_model,
                                             hidden=c.d_model),
              parts=lstm.parts),
)}


@dataclasses.dataclass(frozen=True)
class ModelSettings:
  """Every model's: which model, its width, activation, initial weights and
  MLP biases (a model's own settings are its row's blocks)."""
  model: str = setting("transformer", "; ".join(
      f"{m.name}: {m.help}" for m in MODELS.values()))
  d_model: int = setting(128, "transformer width; also the MLP's embedding "
                         "width and the LSTM's width")
  activation: str = setting("relu", ", ".join(ACTIVATIONS))
  init: str = setting("flax", "initial weights drawn as in: " + ", ".join(
      INIT_PRESETS) + " (Flax's defaults; torch.nn's, as Power et "
      "al.'s code; torch.nn's with Grokfast's nn.MultiheadAttention; Nanda "
      "et al. 2023's transformer; Gu et al. 2025's: Nanda's with W_U "
      "N(0, 1/d_model)), then times --init_scale")
  mlp_bias: bool = setting(True, "biases in the MLP model and in the "
                           "transformer's MLP")

  def check(self) -> None:
    check_at_least(self, 1, "d_model")
    check_choice("activation", self.activation, ACTIVATIONS)
    check_choice("init", self.init, INIT_PRESETS)


def check_model(config, inputs: str) -> None:
  """--model exists, reads the task's `inputs` kind, and its own settings are valid."""
  if config.model not in MODELS:
    raise ValueError(f"--model={config.model}: choose one of "
                     f"{', '.join(MODELS)}")
  if inputs not in MODELS[config.model].inputs:
    fits = [m.name for m in MODELS.values() if inputs in m.inputs]
    raise ValueError(f"--model={config.model}: --task={config.task} has "
                     f"{inputs} inputs; use --model={' or '.join(fits)}")
  spec = MODELS[config.model]
  spec.check(spec.view(config))


def make_model(config, task) -> nn.Module:
  """The model named by `config.model`, sized for `task`."""
  spec = MODELS[config.model]
  return spec.build(spec.view(config), task)


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
  spec = MODELS[config.model]
  return spec.parts(spec.view(config), family_of(config.task).inputs)


__all__ = ["MODELS", "ModelSpec", "check_model", "ACTIVATIONS", "MLP_INPUTS",
           "CNN", "ResNet18", "LSTMClassifier", "MLP", "Transformer", "LinearModel", "make_model", "scale_init", "init_params", "abstract_params",
           "cast_params", "parts_of", "Parts", "PARTS", "NotOffered", "check_parts", "DTYPES", "INIT_PRESETS", "LN_PLACEMENTS", "READOUTS",
           "apply_init_preset", "ModelSettings", "TransformerSettings",
           "MLPSettings", "CNNSettings", "ResNetSettings",
           "LinearModelSettings", "RESNET_NORMS"]
