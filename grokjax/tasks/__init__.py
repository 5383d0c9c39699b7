"""Datasets: every task as device-ready arrays, and per-member split masks.

`FAMILIES` is the registry: each `TaskFamily` names the task strings it owns,
what kind of inputs it has (which models can read them), its objective
(classification or regression), its own checks and its builder. A new task is
one module with ``check(config)`` and ``build(config)`` plus one line here;
`Config.validate` and `Config.build_task` find it by name, and the flag help
lists its names.

    make_task("x/y", p=97)       # Power et al. 2022's table
    make_task("s5:x*y")          # S_5 products
"""

from __future__ import annotations

import dataclasses
import types
from typing import Callable

from grokjax.tasks import algebra as algebra_lib
from grokjax.tasks import linear as linear_lib
from grokjax.tasks.algebra import algebra_task, check_algebras
from grokjax.tasks.base import DataError, Task, table_task, with_label_noise
from grokjax.tasks.holdout import HOLDOUT_EVAL, holdout_mask, with_holdout
from grokjax.tasks.images import IMAGE_TASKS, image_task
from grokjax.tasks.linear import (ERROR_NORMS, LINEAR_TASKS, LinearTask,
                                  Problem, check_linear_task)
from grokjax.tasks.modular import OPERATORS, is_prime, modular_task, needs_prime
from grokjax.tasks.parity import check_parity, parity_task
from grokjax.tasks.permutation import PRODUCTS, permutation_task
from grokjax.tasks.splits import Split, make_split, max_num_train, num_train
from grokjax.tasks.text import text_task

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
  check: (config) -> None; ValueError naming the flag and the fix.
  build: (config) -> Task | LinearTask.
  num_tables: label tables per task (a sweep over them is --task_index).
  """
  family: str
  names: tuple[str, ...]
  matches: Callable[[str], bool]
  inputs: str
  objective: str
  check: Callable[[object], None]
  build: Callable[[object], Task | LinearTask]
  num_tables: Callable[[object], int] = lambda config: 1


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
                                      y_offset=c.operand_offset)),
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
               num_tables=lambda c: len(c.algebra)),
    TaskFamily("parity", ("parity",), lambda n: n == "parity", "table",
               "classification",
               lambda c: check_parity(c.parity_n, c.parity_k, c.num_samples),
               lambda c: parity_task(c.parity_n, c.parity_k, c.num_samples,
                                     seed=c.task_seed)),
    TaskFamily("images", IMAGE_TASKS, lambda n: n in IMAGE_TASKS, "image",
               "classification", lambda c: None,
               lambda c: image_task(c.task, c.data_dir)),
    TaskFamily("text", ("text",), lambda n: n == "text", "sequence",
               "classification", lambda c: _check_text(c),
               lambda c: text_task(c.data_dir, c.text_vocab, c.text_max_len)),
    TaskFamily("linear", LINEAR_TASKS, lambda n: n in LINEAR_TASKS, "linear",
               "regression", linear_lib.check_config, linear_lib.build),
)


def _check_text(c) -> None:
  for name in ("text_vocab", "text_max_len"):
    if getattr(c, name) < 1:
      raise ValueError(f"--{name}={getattr(c, name)}: must be >= 1")


def task_names() -> list[str]:
  return [n for f in FAMILIES for n in f.names]


def family_of(name: str) -> TaskFamily:
  """The registry row that owns task `name`; ValueError naming --task if none."""
  for family in FAMILIES:
    if family.matches(name):
      return family
  raise ValueError(f"--task={name}: unknown task; choose one of "
                   f"{', '.join(task_names())} (or s<n>:<product>)")


def is_image_task(name: str) -> bool:
  return family_of(name).inputs == "image"


def is_regression(name: str) -> bool:
  """Whether the task's objective is regression (linear tasks)."""
  return family_of(name).objective == "regression"


def _spec(name: str, p: int, *, op_token: bool, symmetric: bool,
          linear_dim: int, linear_k: int, algebra, dim: int, parity,
          seed: int, data_dir: str, text, exclude_y0: bool = False
          ) -> types.SimpleNamespace:
  """The settings `make_task`'s keywords stand for, named as Config's fields."""
  return types.SimpleNamespace(
      task=name, p=p, op_token=op_token, symmetric=symmetric,
      exclude_y0=exclude_y0, operand_offset=0,
      linear_dim=linear_dim, linear_k=linear_k, algebra=tuple(algebra),
      dim=dim, parity_n=parity[0], parity_k=parity[1],
      num_samples=parity[2], task_seed=seed, data_dir=data_dir,
      text_vocab=text[0], text_max_len=text[1], linear_depth=1,
      loss="cross_entropy", batch_size=0, regression_error="relative",
      regularizer="none", reg_mask="all")


def check_task(name: str, p: int, *, algebra=("complex",), dim: int = 2,
               parity=(40, 3, 2000)) -> None:
  """Raises ValueError naming the flag when (task, p) cannot be built."""
  family = family_of(name)
  family.check(_spec(name, p, op_token=True, symmetric=False, linear_dim=100,
                     linear_k=5, algebra=algebra, dim=dim, parity=parity,
                     seed=0, data_dir="", text=(10000, 128)))


def make_task(name: str, p: int = 97, *, op_token: bool = True,
              symmetric: bool = False, linear_dim: int = 100,
              linear_k: int = 5, algebra=("complex",),
              dim: int = 2, parity=(40, 3, 2000),
              seed: int = 0, data_dir: str = "",
              text=(10000, 128), exclude_y0: bool = False
              ) -> Task | LinearTask:
  """Builds a task by name: a modular operator (with `p`), `s<n>:<product>`, `algebra` (the `algebra` tables over F_p), `parity` ((n, k, num_samples), drawn from `seed`), images, text, or a linear task."""
  spec = _spec(name, p, op_token=op_token, symmetric=symmetric,
               linear_dim=linear_dim, linear_k=linear_k, algebra=algebra,
               dim=dim, parity=parity, seed=seed, data_dir=data_dir,
               text=text, exclude_y0=exclude_y0)
  family = family_of(name)
  family.check(spec)
  return family.build(spec)


__all__ = ["Task", "LinearTask", "Problem", "LINEAR_TASKS", "ERROR_NORMS",
           "FAMILIES", "INPUT_KINDS", "TaskFamily", "family_of",
           "is_regression", "Split", "make_task", "check_task", "task_names",
           "make_split", "num_train", "max_num_train", "OPERATORS", "PRODUCTS",
           "is_prime", "algebra_task", "parity_task", "with_label_noise",
           "image_task", "is_image_task", "DataError", "IMAGE_TASKS",
           "with_holdout", "holdout_mask", "HOLDOUT_EVAL", "text_task", "table_task",
           "algebra_lib", "parse_permutation_task", "check_linear_task"]
