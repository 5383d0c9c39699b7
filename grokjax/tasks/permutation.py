"""Products in the symmetric group S_n (Power et al. 2022 use S_5)."""

from __future__ import annotations

import itertools

import numpy as np

from grokjax.tasks.base import Task, table_task

# Products of permutations: `a*b` composes as (a*b)(i) = a(b(i)).
PRODUCTS = ("x*y", "x*y*x^-1", "x*y*x")


def permutations(n: int) -> np.ndarray:
  """All n! permutations of range(n), in lexicographic order: int[n!, n]."""
  return np.array(list(itertools.permutations(range(n))), np.int64)


def _compose(a: np.ndarray, b: np.ndarray) -> np.ndarray:
  """(a*b)[k, i] = a[k, b[k, i]] for batches of permutations."""
  return np.take_along_axis(a, b, axis=1)


def _invert(a: np.ndarray) -> np.ndarray:
  inv = np.empty_like(a)
  np.put_along_axis(inv, a, np.arange(a.shape[1])[None].repeat(len(a), 0),
                    axis=1)
  return inv


def permutation_task(n: int, product: str, *, op_token: bool = True,
                     symmetric: bool = False) -> Task:
  """Every pair (x, y) of S_n with z = product(x, y), elements indexed lexicographically."""
  if product not in PRODUCTS:
    raise ValueError(f"--task=s{n}:{product}: unknown product; choose one of "
                     f"{', '.join(PRODUCTS)}")
  if not 2 <= n <= 6:
    raise ValueError(f"--task=s{n}:{product}: n must be in 2..6 (S_6 already "
                     "has 720^2 = 518400 pairs)")
  perms = permutations(n)
  q = len(perms)
  index = {tuple(p): i for i, p in enumerate(perms)}
  x, y = (a.ravel() for a in np.meshgrid(np.arange(q), np.arange(q),
                                         indexing="ij"))
  a, b = perms[x], perms[y]
  if product == "x*y":
    c = _compose(a, b)
  elif product == "x*y*x^-1":
    c = _compose(_compose(a, b), _invert(a))
  else:
    c = _compose(_compose(a, b), a)
  z = np.array([index[tuple(row)] for row in c], np.int64)
  commutative = bool(np.array_equal(z.reshape(q, q), z.reshape(q, q).T))
  return table_task(f"s{n}:{product}", x, y, z, q, op_token=op_token,
                    symmetric=symmetric, commutative=commutative)
