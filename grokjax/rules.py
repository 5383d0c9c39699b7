"""Config.validate's rules across owners: the checks that read more than one
owner's settings (a task's against the objective and the model, the
transformer's against the model, a linear task's against the loss, the batch,
the regularizer and the model's depth). Each block checks its own values
(`grokjax.settings`); nothing else here belongs to one owner.
"""

from __future__ import annotations

from grokjax.optim import chain
from grokjax.settings import ConfigError, show

# Task families whose answer c is the element token c (`tasks.table_task`).
TABLE_FAMILIES = ("modular", "permutation", "algebra")


def check_across(config, family) -> None:
  """ConfigError (one line naming the flag and the fix) where one owner's
  setting contradicts another's; `family` is the task's registry row."""
  _data(config, family)
  _model(config, family)
  if family.objective == "regression":
    _linear(config)
  if config.regularizer == "none" and any(config.reg_strength):
    raise ConfigError(f"--reg_strength={show(config.reg_strength)}: has no "
                      "effect without --regularizer; choose one of "
                      f"{', '.join(chain.choices('regularizer')[1:])}")


def _data(config, family) -> None:
  """The task's settings against the objective, the tables and the model."""
  if config.loss_dtype != "precision" and family.objective != "classification":
    raise ConfigError(f"--loss_dtype={config.loss_dtype}: --task={config.task} "
                      "trains on 1/2 ||X a - y||^2 in --precision; drop "
                      "the flag")
  if config.label_noise and family.objective != "classification":
    raise ConfigError(f"--label_noise={config.label_noise}: needs a "
                      f"classification task, not {config.task}")
  for t in config.task_index:
    if int(t) != t or not 0 <= t < config.num_tables:
      raise ConfigError(
          f"--task_index={t}: the task has {config.num_tables} table(s) "
          f"({', '.join(config.algebra) if config.task == 'algebra' else config.task}); "
          f"use 0..{config.num_tables - 1} or leave it empty")
  if config.symmetric:
    if family.inputs != "table":
      raise ConfigError(f"--symmetric: --task={config.task} is not a table "
                        "of two operands; drop --symmetric")
    task = family.build(family.view(config.replace(symmetric=False)))
    if not task.commutative:
      raise ConfigError(f"--symmetric: --task={config.task} is not "
                        "commutative; drop --symmetric")
  if config.operand_offset and (
      family.family != "modular" or
      (config.model == "mlp" and config.mlp_input == "onehot")):
    raise ConfigError(f"--operand_offset={config.operand_offset}: only "
                      "modular tasks read by token embeddings have a "
                      "vocabulary to offset (one-hot inputs already have "
                      "a block per operand); drop the flag")
  if config.exclude_y0 and family.family != "modular":
    raise ConfigError(f"--exclude_y0: only modular tasks (x+y, x*y, ...) "
                      f"have a y operand to drop, not --task={config.task}")


def _model(config, family) -> None:
  """The transformer's settings against the model and the task."""
  if config.readout != "classes" and (
      config.model != "transformer" or family.family not in TABLE_FAMILIES):
    raise ConfigError(f"--readout={config.readout}: only --model=transformer "
                      "on a table task (" + ", ".join(TABLE_FAMILIES) +
                      ") reads answers as tokens; drop the flag")
  for flag, default in (("ln_placement", "pre"), ("attn_bias", False),
                        ("ln_eps", 1e-6)):
    if config.model != "transformer" and getattr(config, flag) != default:
      raise ConfigError(f"--{flag}={show(getattr(config, flag))}: only "
                        "--model=transformer has attention blocks, not "
                        f"--model={config.model}; drop the flag")
  if config.init in ("nanda", "gu") and config.model != "transformer":
    who = {"nanda": "Nanda et al.'s", "gu": "Gu et al.'s"}[config.init]
    raise ConfigError(f"--init={config.init}: {who} initialization is a "
                      f"transformer's, not --model={config.model}'s; use "
                      "--init=pytorch or --init=flax")
  if config.d_model % config.num_heads:
    raise ConfigError(f"--num_heads={config.num_heads}: must divide "
                      f"--d_model={config.d_model}")


def _linear(config) -> None:
  """A linear task against the model's depth, the loss, the batch and the
  regularizer."""
  sparse = config.task == "sparse_recovery"
  if sparse and config.linear_depth != 1:
    raise ConfigError(f"--linear_depth={config.linear_depth}: "
                      "sparse_recovery learns the vector itself; use "
                      "--linear_depth=1 (or --task=matrix_completion)")
  if config.loss != "cross_entropy":
    raise ConfigError(f"--loss={config.loss}: linear tasks train on 1/2 "
                      "||X a - y||^2; drop --loss")
  if config.batch_size:
    raise ConfigError(f"--batch_size={config.batch_size}: linear tasks train "
                      "by full-batch (sub)gradient descent; use "
                      "--batch_size=0")
  if sparse and config.regularizer.startswith("nuclear"):
    raise ConfigError(f"--regularizer={config.regularizer}: sparse_recovery "
                      "learns a vector; use l1/l1_prox, or --task="
                      "matrix_completion")
  if sparse and config.regularizer != "none" and config.reg_mask != "all":
    raise ConfigError(f"--reg_mask={config.reg_mask}: the sparse_recovery "
                      "parameter is a vector (1-D), which this mask "
                      "excludes; use --reg_mask=all")


__all__ = ["check_across", "TABLE_FAMILIES"]
