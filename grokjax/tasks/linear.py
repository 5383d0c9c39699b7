"""Linear grokking tasks of Notsawo et al. 2025: sparse recovery and matrix completion.

With f = g + beta * h minimized by (sub)gradient descent at learning rate alpha,
g fits the measurements within ~1/alpha steps (memorization), and the
regularizer h then drifts the solution inside g's zero set towards the sparse
(l1) or low-rank (nuclear norm) ground truth, which takes Theta(1/(alpha*beta))
steps (generalization).

Each member draws its own problem from its data seed inside the vmapped
initialization, so ``--data_seed`` sweeps problems while every shape stays
static. ``--train_fraction`` sets the number of measurements: for sparse
recovery N = round(fraction * n) Gaussian measurements (the compressed-sensing
ratio delta = N/n); for matrix completion N = round(fraction * n^2) observed
entries, chosen like a classification task's training rows (`make_split`).
Rows beyond a member's own N carry weight 0.
"""

from __future__ import annotations

import dataclasses
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from grokjax.settings import check_choice, check_positive, setting
from grokjax.tasks.splits import make_split

LINEAR_TASKS = ("sparse_recovery", "matrix_completion")
ERROR_NORMS = ("relative", "absolute", "max")



@dataclasses.dataclass(frozen=True)
class LinearSettings:
  """Linear inverse problems: their size and the errors that define t_mem and
  t_gen (the model's depth is --linear_depth, the linear model's own)."""
  linear_dim: int = setting(100, "linear tasks: dimension n of a* "
                            "(sparse_recovery) or side of the n x n matrix "
                            "(matrix_completion)")
  linear_k: int = setting(5, "linear tasks: non-zeros s of a* "
                          "(sparse_recovery) or rank r (matrix_completion)")
  mem_error: float = setting(1e-3, "linear tasks: train error that defines "
                             "t_mem")
  gen_error: float = setting(1e-3, "linear tasks: test error that defines "
                             "t_gen")
  regression_error: str = setting("relative", "linear tasks' errors: relative "
                                  "(||Xa - y|| / ||y||, ||a - a*|| / ||a*||), "
                                  "absolute (the norms) or max (largest "
                                  "entry of |Xa - y|, |a - a*|)")

  def check(self) -> None:
    check_choice("regression_error", self.regression_error, ERROR_NORMS)
    check_positive(self, "mem_error", "gen_error")

class Problem(NamedTuple):
  """One member's linear inverse problem (a leading [E] axis when batched).

  design: ``float32[M, n]`` measurement rows X (sparse recovery) or
    ``int32[M]`` indices of the observed entries of the flattened matrix.
  y: ``float32[M]`` the measurements of the ground truth.
  weight: ``float32[M]`` 1 for the member's own N measurements, else 0.
  target: the ground truth: ``a*`` [n] or the matrix ``M`` [n, n].
  """
  design: jax.Array
  y: jax.Array
  weight: jax.Array
  target: jax.Array

  def measure(self, a: jax.Array) -> jax.Array:
    """Measurements [M] of a parameter vector / matrix shaped like `target`."""
    flat = a.reshape(-1)
    if self.design.ndim == 2:
      return self.design @ flat
    return flat[self.design]


def error(diff: jax.Array, reference: jax.Array, norm: str) -> jax.Array:
  """||diff|| / ||reference|| (relative), ||diff|| (absolute) or max |diff| (max)."""
  if norm == "max":
    return jnp.max(jnp.abs(diff))
  size = jnp.sqrt(jnp.sum(jnp.square(diff)))
  if norm == "absolute":
    return size
  return size / jnp.sqrt(jnp.sum(jnp.square(reference)))


@dataclasses.dataclass(frozen=True)
class LinearTask:
  """A family of linear inverse problems; each member samples one.

  Attributes:
    name: ``sparse_recovery`` or ``matrix_completion``.
    n: dimension of a* (sparse recovery) or side of the n x n matrix.
    k: non-zeros s of a* (sparse recovery) or rank r of the matrix.
    num_examples: candidate measurements the training fraction counts: n
      Gaussian rows (so fraction = N/n) or the n^2 entries.
  """
  name: str
  n: int
  k: int

  # The model of a linear task takes no input: one dummy token row keeps the
  # models' (params, tokens) signature.
  inputs = np.zeros((1, 1), np.int32)
  labels = np.zeros((1,), np.int32)

  @property
  def num_examples(self) -> int:
    return self.n if self.name == "sparse_recovery" else self.n * self.n

  @property
  def seq_len(self) -> int:
    return 1

  @property
  def target_shape(self) -> tuple[int, ...]:
    return (self.n,) if self.name == "sparse_recovery" else (self.n, self.n)

  def sample(self, key: jax.Array, n_train: jax.Array, max_n_train: int,
             dtype=jnp.float32) -> Problem:
    """One member's problem in `dtype`; `n_train` (its N) may be traced.

    Random numbers are always drawn in float32 (64-bit JAX would draw other
    ones), so a data seed is the same problem at every --precision.

    Sparse recovery: a* has `k` non-zeros at uniformly random positions with
    N(0, 1/n) values; X has i.i.d. N(0, 1/N) entries (the setup of Notsawo et
    al. 2025's code: `create_signal`, `get_measures(variance=1/N)`). The
    candidate rows are drawn for all n at once, so a member's problem does not
    depend on the other members' N. Matrix completion: M = U V^T / sqrt(r) with
    U, V [n, r] i.i.d. N(0, 1) (entries of unit variance); the observed entries
    are a uniformly random subset of size N.
    """
    k_support, k_values, k_design = jax.random.split(key, 3)
    normal = lambda k, shape: jax.random.normal(k, shape, jnp.float32).astype(
        dtype)
    weight = (jnp.arange(max_n_train) < n_train).astype(dtype)
    if self.name == "sparse_recovery":
      support = jax.random.permutation(k_support, self.n)[: self.k]
      values = normal(k_values, (self.k,)) / np.sqrt(self.n)
      target = jnp.zeros(self.n, dtype).at[support].set(values)
      rows = normal(k_design, (self.n, self.n))[:max_n_train]
      design = rows / jnp.sqrt(jnp.maximum(n_train, 1).astype(dtype))
      return Problem(design, design @ target, weight, target)
    u = normal(k_support, (self.n, self.k))
    v = normal(k_values, (self.n, self.k))
    target = u @ v.T / np.sqrt(self.k)
    observed = make_split(k_design, n_train, self.n * self.n, max_n_train)
    return Problem(observed.train_idx, target.reshape(-1)[observed.train_idx],
                   weight, target)

  def device_arrays(self) -> tuple[jax.Array, jax.Array]:
    return jax.device_put(self.inputs), jax.device_put(self.labels)


def check_config(config) -> None:
  """A linear task's own settings; ValueError naming the flag and the fix.
  (Its rules on the loss, the batch, the regularizer and the model's depth
  are `Config.validate`'s: they read other owners' settings.)"""
  check_linear_task(config.task, config.linear_dim, config.linear_k)


def build(config) -> "LinearTask":
  return LinearTask(config.task, config.linear_dim, config.linear_k)


def check_linear_task(name: str, n: int, k: int) -> None:
  """Raises ValueError naming the flag when the problem is ill-posed."""
  if n < 2:
    raise ValueError(f"--linear_dim={n}: must be >= 2")
  if not 1 <= k <= n:
    what = "non-zeros of a*" if name == "sparse_recovery" else "the rank"
    raise ValueError(f"--linear_k={k}: {what} must be in [1, --linear_dim={n}]")
