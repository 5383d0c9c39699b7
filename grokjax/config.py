"""The run config: every owner's settings composed into one flat, frozen Config.

Settings are owned by the code that uses them (`grokjax.settings`): each task
family, model, optimizer, loss and chain transform declares a small frozen
dataclass (a block) beside its code and names it in its registry row. This
module owns the run's own blocks (training, running, the analysis thresholds
and the swept axes: their readers, the train loop and the analysis, sit above
it) and composes every block into `Config`: one field and one flag per
setting, flat (`config.d_model`, `--d_model`, a flat config.json). Registry
rows are handed a `View` of their own blocks; each block checks its own
values (its `check`), and the checks that read more than one owner's
settings are `Config.validate`'s.

Static fields change shapes or the compiled program (task, model, steps, batch
size); one sweep compiles once for them. Swept fields are tuples of values; the
grid is their Cartesian product, flattened to `E` members in `itertools.product`
order over `SWEPT` (the first axis varies slowest).
"""

from __future__ import annotations

import collections
import dataclasses
import math
from typing import Any, Sequence

import numpy as np

from grokjax import models, rules, tasks
from grokjax import settings as settings_lib
from grokjax.optim import chain
from grokjax.optim.losses import LossSettings
from grokjax.settings import (ConfigError, check_at_least, check_choice,
                              setting)
from grokjax.settings import show as _show

# Old flag names that still work (flagfiles, stored config.json): old -> new.
ALIASES = {"keep_checkpoints": "snapshot_count"}

# A swept field's `swept=` names its values' range (checked by validate).
SWEPT_RANGES = {
    "index": (lambda v: int(v) == v and 0 <= v < 2**31,
              "must be an integer in [0, 2^31)"),
    "fraction": (lambda v: 0 < v <= 1, "must be in (0, 1]"),
    "positive": (lambda v: v > 0, "must be > 0"),
    "nonnegative": (lambda v: v >= 0, "must be >= 0"),
}

PRECISIONS = ("float32", "bfloat16", "float64")
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


@dataclasses.dataclass(frozen=True)
class TrainingSettings:
  """The training run: steps, batches, dtype, evaluation and what is kept
  (read by `grokjax.objective` and `grokjax.train`)."""
  steps: int = setting(10000, "optimizer updates")
  batch_size: int = setting(0, "0 = full batch over the member's train rows; "
                            "else minibatches drawn from them")
  data_order: str = setting("random", "minibatches: random (B distinct rows "
                            "drawn afresh every step) or epoch (a new "
                            "permutation each epoch, cut into batches, the "
                            "last one short: a shuffling PyTorch DataLoader)")
  precision: str = setting("float32", "dtype of parameters, optimizer state "
                           "and activations: float32, bfloat16 or float64 "
                           "(needs 64-bit JAX: the CLI turns it on)")
  eval_every: int = setting(100, "steps between evaluations (linear "
                            "schedule), or the number of points (log "
                            "schedule)")
  eval_schedule: str = setting("linear", "linear or log")
  eval_sets: str = setting("train+val", "what an evaluation measures: "
                           "train+val (every row) or val (the validation "
                           "rows only, as Grokfast's code does; the eval "
                           "records' train fields are then NaN and t_mem is "
                           "not measured)")
  train_metrics_from_step: bool = setting(
      True, "full-batch classification: an evaluation's train loss, "
      "accuracy and train_zero_loss are those of the step's own forward pass "
      "on the same parameters (the same quantities, one forward pass over "
      "the train rows fewer), and the evaluation's forward pass covers the "
      "validation rows only; false: evaluate the train rows again")
  chunk_steps: int = setting(500, "steps per compiled chunk between host "
                             "syncs")
  record_every: int = setting(1, "keep the per-step train loss of every k-th "
                              "step in history.npz (0 = none; long runs)")
  stop_when_generalized: bool = setting(False, "stop once every member has "
                                        "generalized")
  snapshot_count: int = setting(0, "parameter snapshots of every member kept "
                                "at this many log-spaced steps (plus step 0 "
                                "and the last) under <workdir>/snapshots, "
                                "for the progress measures (0 = none)")
  snapshot_every: int = setting(0, "also keep a parameter snapshot every N "
                                "steps (0 = none)")

  def check(self) -> None:
    check_choice("precision", self.precision, PRECISIONS)
    check_choice("data_order", self.data_order, DATA_ORDERS)
    check_choice("eval_schedule", self.eval_schedule, EVAL_SCHEDULES)
    check_choice("eval_sets", self.eval_sets, EVAL_SETS)
    check_at_least(self, 1, "steps", "eval_every", "chunk_steps")
    check_at_least(self, 0, "batch_size", "record_every", "snapshot_count",
                   "snapshot_every")
    if self.data_order == "epoch" and self.batch_size == 0:
      raise ConfigError("--data_order=epoch: with --batch_size=0 (full "
                        "batch) every step already sees each train row once; "
                        "drop the flag or set --batch_size")


@dataclasses.dataclass(frozen=True)
class RunningSettings:
  """How the run is carried out; none of these changes a result, so a
  resumed run may change them (`RUN_ONLY`)."""
  checkpoint_every: int = setting(1000, "steps between resume checkpoints "
                                  "(saved at the end of the chunk that "
                                  "crosses a multiple; 0 = only at the end "
                                  "and on SIGTERM/SIGINT)")
  tensorboard: bool = setting(True, "write TensorBoard event files (a run "
                              "per member, the HParams dashboard) under "
                              "<workdir>/tensorboard after every chunk")
  members_per_group: int = setting(0, "members trained at once; the rest "
                                   "wait for the next group (0 = as many as "
                                   "fit in device memory)")
  bucket_by_size: bool = setting(True, "full-batch sweeps: train members "
                                 "with the same training-set size together, "
                                 "each bucket on its own rows (no padding to "
                                 "the largest fraction; one compiled program "
                                 "per size); see grokjax/layout.py")
  memory_limit_gb: float = setting(0.0, "device memory budget per device in "
                                   "GiB (0 = what the device reports; the "
                                   "CPU: RAM / CPU devices)")
  host_memory_limit_gb: float = setting(0.0, "host memory budget in GiB for "
                                        "the sweep's histories and states "
                                        "(0 = what the OS reports available)")

  def check(self) -> None:
    check_at_least(self, 0, "checkpoint_every", "members_per_group")
    for name in ("memory_limit_gb", "host_memory_limit_gb"):
      value = getattr(self, name)
      if not math.isfinite(value) or value < 0:
        raise ConfigError(f"--{name}={value}: must be >= 0 (0 = detect)")


@dataclasses.dataclass(frozen=True)
class AnalysisSettings:
  """The thresholds that define t_mem, t_gen and Liu et al.'s phases (linear
  tasks': `tasks.LinearSettings`)."""
  mem_threshold: float = setting(0.99, "train accuracy that defines t_mem")
  gen_threshold: float = setting(0.99, "validation accuracy that defines "
                                 "t_gen")
  phase_threshold: float = setting(0.9, "accuracy for the phases of Liu et "
                                   "al.")
  phase_gap: int = setting(1000, "steps between train and val reaching "
                           "phase_threshold beyond which a run is "
                           "'grokking'")

  def check(self) -> None:
    for name in ("mem_threshold", "gen_threshold", "phase_threshold"):
      if not 0 < getattr(self, name) <= 1:
        raise ConfigError(f"--{name}={getattr(self, name)}: must be in (0, 1]")
    check_at_least(self, 0, "phase_gap")


@dataclasses.dataclass(frozen=True)
class SweptSettings:
  """The swept axes: lists and ranges on the command line; the grid is their
  product, in this order (the first varies slowest). A new swept value is one
  field here (with `swept=` its range) and its consumer reading
  `hypers.<name>`: SWEPT, the grid and Hypers follow."""
  seed: tuple = setting((0,), "model-init and batch seeds, e.g. 0:8",
                        swept="index")
  data_seed: tuple = setting((), "split seeds (empty: follow --seed)",
                             swept="index", optional=True)
  train_fraction: tuple = setting((0.5,), "fractions of all pairs used for "
                                  "training, in (0, 1]", swept="fraction")
  learning_rate: tuple = setting((1e-3,), "peak learning rates",
                                 swept="positive")
  weight_decay: tuple = setting((1.0,), "weight decay (AdamW) or L2 "
                                "coefficient", swept="nonnegative")
  init_scale: tuple = setting((1.0,), "multiplier alpha of every initial "
                              "weight", swept="positive")
  reg_strength: tuple = setting((0.0,), "strength beta of --regularizer",
                                swept="nonnegative")
  task_index: tuple = setting((), "which of the task's tables a member "
                              "learns (--task=algebra: an index into "
                              "--algebra; empty: every one)", swept="index",
                              optional=True)


# Every block, in the order of Config's fields and of --help: each registry's
# common block, then its rows' own (in registry order), then the run's.
BLOCKS = tuple(dict.fromkeys(
    (tasks.TaskSettings, tasks.HoldoutSettings)
    + tuple(b for f in tasks.FAMILIES for b in f.settings)
    + (models.ModelSettings,)
    + tuple(b for m in models.MODELS.values() for b in m.settings)
    + (chain.OptimizerSettings, LossSettings, chain.ChainSettings)
    + tuple(b for t in chain.TRANSFORMS for b in t.settings)
    + (TrainingSettings, RunningSettings, AnalysisSettings, SweptSettings)))

# Fields a resumed run may change (they never change a result).
RUN_ONLY = settings_lib.names_of(RunningSettings)


class _ConfigMethods:
  """Config's methods (its fields are the blocks', composed below)."""

  def __post_init__(self):
    # Swept fields accept any sequence (range, list, array) or a single number.
    for name in SWEPT + LIST_FIELDS:
      value = getattr(self, name)
      if isinstance(value, (int, float, np.number)):
        value = (value,)
      object.__setattr__(self, name, tuple(
          v.item() if isinstance(v, np.generic) else v for v in value))

  def replace(self, **kw) -> "Config":
    return dataclasses.replace(self, **kw)

  def section(self, block: type):
    """This config's values of `block` (one owner's settings), as a `block`."""
    return block(**{n: getattr(self, n)
                    for n in settings_lib.names_of(block)})

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
      family.check_settings(self)
      task = family.build(family.view(self))
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
      family = tasks.family_of(self.task)
    except ValueError:  # an unknown task: validate() names it
      return 1
    return family.num_tables(family.view(self))

  def swept_values(self) -> dict[str, tuple]:
    """Each swept axis with its values (an empty data_seed follows seed; an empty task_index is every table)."""
    values = {name: getattr(self, name) for name in SWEPT}
    values["task_index"] = self.task_index or tuple(range(self.num_tables))
    return values

  def validate(self) -> None:
    """Raises ConfigError (one line naming the flag and the fix) for bad settings.

    The task's and the model's row checks (`tasks.FAMILIES`,
    `models.MODELS`), every block's own `check`, then the rules that read
    more than one owner's settings (`grokjax.rules`) and the swept values.
    """
    try:
      family = tasks.family_of(self.task)
      family.check(family.view(self))
      models.check_model(self, family.inputs)
      settings_lib.check_blocks(self, BLOCKS)
    except ValueError as e:
      raise ConfigError(str(e)) from None
    rules.check_across(self, family)
    self._validate_swept()

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


def _compose(blocks: Sequence[type]) -> type:
  """`Config`: one frozen dataclass with every block's fields, flat."""
  fields, owner = [], {}
  for block in blocks:
    for f in dataclasses.fields(block):
      if f.name in owner:
        raise TypeError(f"setting {f.name} is declared by both "
                        f"{owner[f.name].__name__} and {block.__name__}")
      owner[f.name] = block
      copy = (dataclasses.field(default_factory=f.default_factory,
                                metadata=f.metadata)
              if f.default is dataclasses.MISSING else
              dataclasses.field(default=f.default, metadata=f.metadata))
      fields.append((f.name, f.type, copy))
  cls = dataclasses.make_dataclass(
      "Config", fields, bases=(_ConfigMethods,), frozen=True,
      namespace={"__module__": __name__, "OWNER": owner,
                 "__doc__": "Everything that defines a sweep: every "
                 "block's settings (`BLOCKS`), one field each. Every field "
                 "is also a flag of `experiments/sweep.py`; `OWNER` maps "
                 "it to its block."})
  return cls


Config = _compose(BLOCKS)
# Tuple-valued settings that are not swept (lists on the command line).
LIST_FIELDS = tuple(f.name for f in dataclasses.fields(Config)
                    if f.metadata.get("kind") in ("int_list", "str_list"))


# Swept axes in grid order (the first varies slowest); integer ones.
SWEPT = tuple(f.name for f in dataclasses.fields(Config)
              if f.metadata.get("swept"))
INT_AXES = tuple(f.name for f in dataclasses.fields(Config)
                 if f.metadata.get("swept") == "index")


