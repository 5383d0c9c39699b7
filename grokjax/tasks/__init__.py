"""Datasets: algorithmic tasks as device arrays, and per-member split masks.

`make_task("x/y", p=97)` builds the table of Power et al. 2022;
`make_task("s5:x*y")` the S_5 products.
"""

from __future__ import annotations

from grokjax.tasks.algebra import algebra_task, check_algebras
from grokjax.tasks.base import Task, with_label_noise
from grokjax.tasks.holdout import holdout_mask, with_holdout
from grokjax.tasks.images import IMAGE_TASKS, DataError, image_task
from grokjax.tasks.parity import check_parity, parity_task
from grokjax.tasks.text import text_task
from grokjax.tasks.linear import (ERROR_NORMS, LINEAR_TASKS, LinearTask,
                                  Problem, check_linear_task)
from grokjax.tasks.modular import OPERATORS, is_prime, modular_task, needs_prime
from grokjax.tasks.permutation import PRODUCTS, permutation_task
from grokjax.tasks.splits import Split, make_split, max_num_train, num_train


def task_names() -> list[str]:
  return (list(OPERATORS) + [f"s5:{p}" for p in PRODUCTS]
          + ["algebra", "parity", "text"] + list(IMAGE_TASKS)
          + list(LINEAR_TASKS))


def is_image_task(name: str) -> bool:
  return name in IMAGE_TASKS


def is_regression(name: str) -> bool:
  """Linear tasks (sparse recovery, matrix completion) train on squared error."""
  return name in LINEAR_TASKS


def parse_permutation_task(name: str) -> tuple[int, str] | None:
  """`"s5:x*y"` -> (5, "x*y"); None when `name` is not an S_n task."""
  head, sep, product = name.partition(":")
  if sep and head[:1] == "s" and head[1:].isdigit():
    return int(head[1:]), product
  return None


def check_task(name: str, p: int, *, algebra=("complex",), dim: int = 2,
               parity=(40, 3, 2000)) -> None:
  """Raises ValueError naming the flag when (task, p) cannot be built."""
  if name == "algebra":
    check_algebras(algebra, p, dim)
    return
  if name == "parity":
    check_parity(*parity)
    return
  if name in IMAGE_TASKS or name == "text":
    return
  perm = parse_permutation_task(name)
  if perm is not None:
    n, product = perm
    if product not in PRODUCTS or not 2 <= n <= 6:
      raise ValueError(f"--task={name}: use s<n>:<product> with n in 2..6 and "
                       f"product one of {', '.join(PRODUCTS)}")
    return
  if name in LINEAR_TASKS:
    return
  if name not in OPERATORS:
    raise ValueError(f"--task={name}: unknown task; choose one of "
                     f"{', '.join(task_names())} (or s<n>:<product>)")
  if p < 2:
    raise ValueError(f"--p={p}: the modulus must be >= 2")
  if needs_prime(name) and not is_prime(p):
    raise ValueError(f"--p={p} is not prime; --task={name} needs a field: use "
                     "a prime p (e.g. 97)")


def make_task(name: str, p: int = 97, *, op_token: bool = True,
              symmetric: bool = False, linear_dim: int = 100,
              linear_k: int = 5, algebra=("complex",),
              dim: int = 2, parity=(40, 3, 2000),
              seed: int = 0, data_dir: str = "",
              text=(10000, 128)) -> Task | LinearTask:
  """Builds a task by name: a modular operator (with `p`), `s<n>:<product>`, `algebra` (the `algebra` tables over F_p), `parity` ((n, k, num_samples), drawn from `seed`), or a linear task."""
  check_task(name, p, algebra=algebra, dim=dim, parity=parity)
  if name == "parity":
    return parity_task(*parity, seed=seed)
  if name in IMAGE_TASKS:
    return image_task(name, data_dir)
  if name == "text":
    return text_task(data_dir, *text)
  if name == "algebra":
    return algebra_task(algebra, p, dim, op_token=op_token,
                        symmetric=symmetric)
  if name in LINEAR_TASKS:
    check_linear_task(name, linear_dim, linear_k)
    return LinearTask(name, linear_dim, linear_k)
  perm = parse_permutation_task(name)
  if perm is not None:
    return permutation_task(*perm, op_token=op_token, symmetric=symmetric)
  return modular_task(name, p, op_token=op_token, symmetric=symmetric)


__all__ = ["Task", "LinearTask", "Problem", "LINEAR_TASKS", "ERROR_NORMS",
           "is_regression", "Split", "make_task", "check_task", "task_names",
           "make_split", "num_train", "max_num_train", "OPERATORS", "PRODUCTS",
           "is_prime", "algebra_task", "parity_task", "with_label_noise",
           "image_task", "is_image_task", "DataError", "IMAGE_TASKS",
           "with_holdout", "holdout_mask", "text_task"]
