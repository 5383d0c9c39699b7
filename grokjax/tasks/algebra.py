"""Finite-dimensional algebras over F_p (Notsawo et al. 2026): their product tables as tasks.

An algebra of dimension n over F_p is F_p^n with the bilinear product given by
a structure tensor C in F_p^{n x n x n}:

    (u * v)_k = sum_ij u_i v_j C[i, j, k]   (mod p)

Its q = p^n elements are the tokens (element index = sum_i v_i p^i, the
little-endian base-p digits), and the task is the whole q x q product table,
like x*y mod p (which is the algebra F_p itself, n = 1, C = [[[1]]]).

Constructors (``--algebra`` names):
- ``complex``: F_p[i] / (i^2 + 1), basis (1, i);
- ``dual``: dual numbers F_p[e] / (e^2), basis (1, e);
- ``poly:c0_c1_..._c{n-1}``: F_p[x] / (f) with the monic f = x^n +
  c_{n-1} x^{n-1} + ... + c0, basis (1, x, ..., x^{n-1}) (``poly:1_0`` is
  ``complex``);
- ``group:z<m>``: the group algebra F_p[Z_m] of the cyclic group (basis: the
  group elements), ``group:v4`` of the Klein four-group, ``group:s3`` of S_3;
- ``m2``: 2 x 2 matrices M_2(F_p), basis E11, E12, E21, E22;
- ``ut2``: upper-triangular 2 x 2 matrices UT_2(F_p), basis E11, E12, E22;
- ``zero``: the zero product on F_p^dim;
- ``random:<seed>``: a structure tensor with entries uniform in F_p from the
  seed (dimension ``--dim``).

`properties(algebra)` reports what the paper sorts algebras by: associative,
commutative, unital (and the unit), the category code, the ranks of C's three
unfoldings over F_p (its mode-k ranks), and its sparsity.
"""

from __future__ import annotations

import dataclasses
import itertools

import numpy as np

from grokjax.settings import setting
from grokjax.tasks.base import Task, table_task
from grokjax.tasks.modular import is_prime

# The most table rows an algebra task builds (q^2, q = p^n).
@dataclasses.dataclass(frozen=True)
class AlgebraSettings:
  """--task=algebra: which algebras over F_p (--p)."""
  algebra: tuple = setting(("complex",), "--task=algebra: the algebras over "
                           "F_p whose product tables are learned (complex, "
                           "dual, m2, ut2, zero, poly:<c0>_..._<c{n-1}>, "
                           "group:z<m>|v4|s3, random:<seed>); several of one "
                           "dimension sweep as --task_index", kind="str_list")
  dim: int = setting(2, "--task=algebra: dimension n of random:<seed> and "
                     "zero algebras")


MAX_TABLE_ROWS = 1 << 22
FIXED_DIMS = {"complex": 2, "dual": 2, "m2": 4, "ut2": 3}


@dataclasses.dataclass(frozen=True)
class Algebra:
  """An n-dimensional algebra over F_p given by its structure tensor C [n, n, n]."""
  name: str
  p: int
  tensor: np.ndarray

  @property
  def n(self) -> int:
    return int(self.tensor.shape[0])

  @property
  def q(self) -> int:
    return self.p ** self.n

  def multiply(self, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Products of coordinate vectors u, v [..., n] (mod p)."""
    return np.einsum("...i,...j,ijk->...k", u, v, self.tensor) % self.p

  def elements(self) -> np.ndarray:
    """[q, n] the coordinate vectors of elements 0 .. q - 1 (base-p digits)."""
    return elements(self.n, self.p)

  def index(self, v: np.ndarray) -> np.ndarray:
    """Element indices of coordinate vectors [..., n]."""
    return (v * self.p ** np.arange(self.n)).sum(-1)

  def table(self) -> np.ndarray:
    """[q, q] the index of x * y for every pair of element indices."""
    e = self.elements()
    return self.index(self.multiply(e[:, None, :], e[None, :, :]))


def elements(n: int, p: int) -> np.ndarray:
  q = p ** n
  return (np.arange(q)[:, None] // p ** np.arange(n)[None, :]) % p


def _basis_tensor(n: int, products: dict[tuple[int, int], dict[int, int]],
                  p: int) -> np.ndarray:
  c = np.zeros((n, n, n), np.int64)
  for (i, j), out in products.items():
    for k, coef in out.items():
      c[i, j, k] = coef % p
  return c


def polynomial_quotient(p: int, coefficients: list[int], name: str) -> Algebra:
  """F_p[x] / (x^n + c_{n-1} x^{n-1} + ... + c0), basis 1, x, ..., x^{n-1}."""
  n = len(coefficients)
  # x^n = -(c0 + c1 x + ... ): reduce x^m for m < 2n - 1 by that rule.
  powers = []
  for m in range(2 * n - 1):
    v = np.zeros(n, np.int64)
    if m < n:
      v[m] = 1
    else:
      prev = powers[m - 1]
      v[1:] = prev[:-1]  # times x
      v = (v - prev[-1] * np.asarray(coefficients)) % p
    powers.append(v % p)
  c = np.zeros((n, n, n), np.int64)
  for i, j in itertools.product(range(n), range(n)):
    c[i, j] = powers[i + j]
  return Algebra(name, p, c)


def _group_table(group: str) -> np.ndarray:
  """[m, m] the multiplication table of a small group (element indices)."""
  if group.startswith("z") and group[1:].isdigit():
    m = int(group[1:])
    if m < 1:
      raise ValueError(f"--algebra=group:{group}: the cyclic group Z_m needs "
                       "m >= 1 (e.g. group:z3)")
    return (np.arange(m)[:, None] + np.arange(m)[None, :]) % m
  if group == "v4":
    return np.arange(4)[:, None] ^ np.arange(4)[None, :]
  if group == "s3":
    perms = list(itertools.permutations(range(3)))
    index = {g: i for i, g in enumerate(perms)}
    return np.array([[index[tuple(a[b[k]] for k in range(3))] for b in perms]
                     for a in perms])
  raise ValueError(f"--algebra=group:{group}: unknown group; use z<m>, v4 or "
                   "s3")


def group_algebra(p: int, group: str, name: str) -> Algebra:
  table = _group_table(group)
  m = table.shape[0]
  c = np.zeros((m, m, m), np.int64)
  for i, j in itertools.product(range(m), range(m)):
    c[i, j, table[i, j]] = 1
  return Algebra(name, p, c)


def matrix_algebra(p: int, upper_triangular: bool, name: str) -> Algebra:
  """M_2(F_p) (basis E11, E12, E21, E22) or UT_2(F_p) (E11, E12, E22): E_ab E_cd = [b == c] E_ad."""
  units = ([(0, 0), (0, 1), (1, 1)] if upper_triangular
           else [(0, 0), (0, 1), (1, 0), (1, 1)])
  pos = {u: k for k, u in enumerate(units)}
  n = len(units)
  c = np.zeros((n, n, n), np.int64)
  for (i, (a, b)), (j, (cc, d)) in itertools.product(enumerate(units),
                                                     repeat=2):
    if b == cc:
      c[i, j, pos[(a, d)]] = 1
  return Algebra(name, p, c)


def make_algebra(spec: str, p: int, dim: int = 2) -> Algebra:
  """The algebra an ``--algebra`` name gives over F_p (see the module doc)."""
  if not is_prime(p):
    raise ValueError(f"--p={p} is not prime; an algebra over F_p needs a prime "
                     "p (e.g. 7)")
  head, _, arg = spec.partition(":")
  if spec == "complex":
    return polynomial_quotient(p, [1, 0], spec)
  if spec == "dual":
    return polynomial_quotient(p, [0, 0], spec)
  if spec in ("m2", "ut2"):
    return matrix_algebra(p, spec == "ut2", spec)
  if spec == "zero":
    return Algebra(spec, p, np.zeros((dim, dim, dim), np.int64))
  if head == "poly" and arg:
    try:
      coefficients = [int(c) for c in arg.split("_")]
    except ValueError:
      coefficients = []
    if coefficients:
      return polynomial_quotient(p, coefficients, spec)
  if head == "group" and arg:
    return group_algebra(p, arg, spec)
  if head == "random" and arg.isdigit():
    rng = np.random.default_rng(int(arg))
    return Algebra(spec, p, rng.integers(0, p, (dim, dim, dim)))
  raise ValueError(f"--algebra={spec}: unknown algebra; use complex, dual, m2, "
                   "ut2, zero, poly:<c0>_..._<c{n-1}>, group:z<m>|v4|s3 or "
                   "random:<seed>")


# ---------------------------------------------------------------- properties


def _row_reduce(a: np.ndarray, p: int, cols: int) -> tuple[np.ndarray,
                                                           list[int]]:
  """Reduced row echelon form over F_p of `a`, pivoting on its first `cols` columns; (form, pivot columns)."""
  a = np.array(a, np.int64) % p
  pivots, rows = [], a.shape[0]
  for col in range(cols):
    r0 = len(pivots)
    pivot = next((r for r in range(r0, rows) if a[r, col]), None)
    if pivot is None:
      continue
    a[[r0, pivot]] = a[[pivot, r0]]
    a[r0] = a[r0] * pow(int(a[r0, col]), p - 2, p) % p
    others = [r for r in range(rows) if r != r0 and a[r, col]]
    a[others] = (a[others] - a[others, col:col + 1] * a[r0]) % p
    pivots.append(col)
    if len(pivots) == rows:
      break
  return a, pivots


def rank_mod_p(matrix: np.ndarray, p: int) -> int:
  """Rank of an integer matrix over F_p (Gaussian elimination)."""
  return len(_row_reduce(matrix, p, np.shape(matrix)[1])[1])


def solve_mod_p(a: np.ndarray, b: np.ndarray, p: int) -> np.ndarray | None:
  """One solution x of a x = b over F_p, or None if there is none."""
  n = a.shape[1]
  aug, pivots = _row_reduce(np.concatenate(
      [np.asarray(a, np.int64), np.asarray(b, np.int64)[:, None]], axis=1),
      p, n)
  if aug[len(pivots):, n].any():
    return None
  x = np.zeros(n, np.int64)
  for r, col in enumerate(pivots):
    x[col] = aug[r, n]
  return x


def is_associative(alg: Algebra) -> bool:
  """(e_i e_j) e_k == e_i (e_j e_k) for every basis triple (enough: bilinear)."""
  c = alg.tensor
  left = np.einsum("ijm,mkl->ijkl", c, c) % alg.p
  right = np.einsum("jkm,iml->ijkl", c, c) % alg.p
  return bool(np.array_equal(left, right))


def is_commutative(alg: Algebra) -> bool:
  return bool(np.array_equal(alg.tensor, alg.tensor.transpose(1, 0, 2)))


def unit(alg: Algebra) -> np.ndarray | None:
  """The two-sided identity u (u x = x u = x for all x), or None.

  Linear in u: sum_i u_i C[i, j, k] = delta_jk and sum_i u_i C[j, i, k] =
  delta_jk for all j, k; solved over F_p (a two-sided unit is unique).
  """
  n, c = alg.n, alg.tensor
  left = c.reshape(n, n * n).T           # rows (j, k): sum_i u_i C[i, j, k]
  right = c.transpose(1, 0, 2).reshape(n, n * n).T
  eye = np.eye(n, dtype=np.int64).ravel()
  return solve_mod_p(np.concatenate([left, right]),
                     np.concatenate([eye, eye]), alg.p)


def category(associative: bool, commutative: bool, unital: bool) -> str:
  """The paper's code: a, c, u, each overlined (U+0304) when the property fails."""
  bar = "\u0304"
  return "".join(ch if ok else ch + bar for ch, ok in (
      ("a", associative), ("c", commutative), ("u", unital)))


def properties(alg: Algebra) -> dict:
  """associative, commutative, unital, unit, category (and an ASCII form), mode ranks, sparsity."""
  a, c = is_associative(alg), is_commutative(alg)
  u = unit(alg)
  n, t = alg.n, alg.tensor
  ranks = tuple(rank_mod_p(np.moveaxis(t, k, 0).reshape(n, n * n), alg.p)
                for k in range(3))
  return {"name": alg.name, "p": alg.p, "dim": n, "size": alg.q,
          "associative": a, "commutative": c, "unital": u is not None,
          "unit": None if u is None else u.tolist(),
          "category": category(a, c, u is not None),
          "category_ascii": "".join(ch if ok else "~" + ch for ch, ok in (
              ("a", a), ("c", c), ("u", u is not None))),
          "mode_ranks": ranks, "sparsity": float(np.mean(t == 0))}


# ---------------------------------------------------------------- the task


def check_algebras(specs, p: int, dim: int) -> list[Algebra]:
  """The algebras of an ``--algebra`` list; ValueError naming the flag if they cannot share one task."""
  if not specs:
    raise ValueError("--algebra: give at least one algebra (e.g. complex)")
  algebras = [make_algebra(s, p, dim) for s in specs]
  sizes = {a.n for a in algebras}
  if len(sizes) > 1:
    raise ValueError(f"--algebra={','.join(specs)}: a sweep over algebras "
                     "needs one dimension (same table shape); these have "
                     f"dimensions {sorted(sizes)}")
  q = algebras[0].q
  if q * q > MAX_TABLE_ROWS:
    raise ValueError(f"--p={p}: an algebra of dimension {algebras[0].n} has "
                     f"{q} elements and {q * q} table rows (at most "
                     f"{MAX_TABLE_ROWS}); use a smaller --p or --dim")
  return algebras


def algebra_task(specs, p: int, dim: int = 2, *, op_token: bool = True,
                 symmetric: bool = False) -> Task:
  """The product table of each algebra: labels [N] for one, [A, N] for several (same rows)."""
  algebras = check_algebras(specs, p, dim)
  q = algebras[0].q
  x, y = (v.ravel() for v in np.meshgrid(np.arange(q), np.arange(q),
                                         indexing="ij"))
  tables = [a.table()[x, y] for a in algebras]
  commutative = all(is_commutative(a) for a in algebras)
  name = "algebra:" + ",".join(specs)
  tasks = [table_task(name, x, y, z, q, op_token=op_token,
                      symmetric=symmetric, commutative=commutative)
           for z in tables]
  if len(tasks) == 1:
    return tasks[0]
  return dataclasses.replace(tasks[0], labels=np.stack([t.labels
                                                        for t in tasks]))


__all__ = ["Algebra", "make_algebra", "properties", "is_associative",
           "is_commutative", "unit", "category", "rank_mod_p", "solve_mod_p",
           "algebra_task", "check_algebras", "elements", "MAX_TABLE_ROWS"]
