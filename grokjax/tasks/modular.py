"""Binary operations modulo p: every operator of Power et al. 2022."""

from __future__ import annotations

import dataclasses
from typing import Callable

import numpy as np

from grokjax.settings import setting
from grokjax.tasks.base import Task, table_task

# name -> (z(x, y, p), needs a field (p prime), y must be nonzero).
_Op = tuple[Callable[[np.ndarray, np.ndarray, int], np.ndarray], bool, bool]


@dataclasses.dataclass(frozen=True)
class ModularSettings:
  """x op y mod p: the table's own settings (--p is the tasks' own)."""
  exclude_y0: bool = setting(False, "modular tasks: drop the pairs with y = 0 "
                             "(Grokfast's x*y table, 0 < y < p)")
  operand_offset: int = setting(0, "modular tasks: element e of the second "
                                "operand is token operand_offset + e (Gu et "
                                "al.'s str.py: 60, so x and y share only the "
                                "tokens where the ranges overlap); 0: one "
                                "vocabulary for both")

  def check(self) -> None:
    if self.operand_offset < 0:
      raise ValueError(f"--operand_offset={self.operand_offset}: must be "
                       ">= 0")


def _inverse(y: np.ndarray, p: int) -> np.ndarray:
  """Multiplicative inverse mod a prime p by Fermat: y^(p-2)."""
  return np.array([pow(int(v), p - 2, p) for v in y.ravel()],
                  np.int64).reshape(y.shape)


def _div(x, y, p):
  return x * _inverse(y, p) % p


def _div_if_odd_else_sub(x, y, p):
  odd = y % 2 == 1
  out = (x - y) % p
  out[odd] = _div(x[odd], y[odd], p)
  return out


OPERATORS: dict[str, _Op] = {
    "x+y": (lambda x, y, p: (x + y) % p, False, False),
    "x-y": (lambda x, y, p: (x - y) % p, False, False),
    "x*y": (lambda x, y, p: (x * y) % p, False, False),
    "x/y": (_div, True, True),
    "x/y_if_y_odd_else_x-y": (_div_if_odd_else_sub, True, False),
    "x^2+y^2": (lambda x, y, p: (x**2 + y**2) % p, False, False),
    "x^2+xy+y^2": (lambda x, y, p: (x**2 + x * y + y**2) % p, False, False),
    "x^2+xy+y^2+x": (lambda x, y, p: (x**2 + x * y + y**2 + x) % p, False,
                     False),
    "x^3+xy": (lambda x, y, p: (x**3 + x * y) % p, False, False),
    "x^3+xy^2+y": (lambda x, y, p: (x**3 + x * y**2 + y) % p, False, False),
}


def is_prime(n: int) -> bool:
  if n < 2:
    return False
  return all(n % d for d in range(2, int(n**0.5) + 1))


def needs_prime(op: str) -> bool:
  return OPERATORS[op][1]


def modular_task(op: str, p: int, *, op_token: bool = True,
                 symmetric: bool = False, exclude_y0: bool = False,
                 y_offset: int = 0) -> Task:
  """All pairs (x, y) in [0, p)^2 (y != 0 for division) with z = x op y mod p.

  `exclude_y0` drops the pairs with y = 0 for every operator, as Grokfast's
  code builds its x*y table (0 <= x < p, 0 < y < p: p(p-1) rows).
  """
  fn, field, nonzero_y = OPERATORS[op]
  nonzero_y = nonzero_y or exclude_y0
  if p < 2:
    raise ValueError(f"--p={p}: the modulus must be >= 2")
  if field and not is_prime(p):
    raise ValueError(f"--p={p} is not prime; {op} needs a field: use a prime "
                     "p (e.g. 97)")
  x, y = (a.ravel().astype(np.int64) for a in np.meshgrid(
      np.arange(p), np.arange(p), indexing="ij"))
  if nonzero_y:
    keep = y != 0
    x, y = x[keep], y[keep]
  z = fn(x, y, p)
  table = np.full((p, p), -1, np.int64)
  table[x, y] = z
  commutative = bool(np.array_equal(table, table.T))
  return table_task(op, x, y, z, p, op_token=op_token, symmetric=symmetric,
                    commutative=commutative, y_offset=y_offset)
