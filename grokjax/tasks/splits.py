"""Train/validation splits as fixed-shape index arrays and masks (no ragged shapes).

Each member draws a permutation of the `N` examples from its data seed; its
first ``n_train = round(fraction * N)`` rows are training rows, every other row
is validation. Shapes depend only on `N` and ``max_n_train`` (the largest
n_train in the sweep), never on a member's own fraction.
"""

from __future__ import annotations

from typing import NamedTuple, Sequence

import jax
import jax.numpy as jnp


class Split(NamedTuple):
  """One member's split (a leading [E] axis when batched).

  train_idx: ``int32[M]`` the first ``M = max_n_train`` rows of the permutation.
  train_weight: ``float32[M]`` 1 for the member's own ``n_train`` rows, else 0.
  is_train: ``bool[N]`` train membership of every example.
  table: ``int32[]`` the label table the member learns (a task with several
    tables, e.g. a sweep over algebras, has labels [A, N]; else 0).
  is_val: ``bool[N]`` the validation rows: every row not trained on, or a
    task's fixed test set.
  """
  train_idx: jax.Array
  train_weight: jax.Array
  is_train: jax.Array
  table: jax.Array
  is_val: jax.Array


def num_train(fraction: float, num_examples: int) -> int:
  """Exact training-set size: round(fraction * N), as Python rounds."""
  return int(round(fraction * num_examples))


def member_labels(labels: jax.Array, split: Split) -> jax.Array:
  """[N] the labels a member learns: its own table's row when there are several."""
  return labels if labels.ndim == 1 else labels[split.table]


def make_split(key: jax.Array, n_train: jax.Array, num_examples: int,
               max_n_train: int, table: jax.Array | int = 0,
               num_pool: int | None = None,
               validate_pool: bool = False) -> Split:
  """Split of one member; `n_train` may be traced (it is a swept value).

  With `num_pool`, train rows come from rows [0, num_pool) only and the
  validation rows are the fixed test set [num_pool, N), or, with
  `validate_pool`, every row the member does not train on (the test set and
  the pool rows it did not draw).
  """
  pool = num_examples if num_pool is None else num_pool
  perm = jax.random.permutation(key, pool)
  train_idx = perm[:max_n_train].astype(jnp.int32)
  train_weight = (jnp.arange(max_n_train) < n_train).astype(jnp.float32)
  # Rows outside the pool (a fixed test set) rank last: never trained on.
  rank = jnp.full(num_examples, num_examples, jnp.int32).at[perm].set(
      jnp.arange(pool, dtype=jnp.int32))
  is_train = rank < n_train
  is_val = (~is_train if num_pool is None or validate_pool
            else jnp.arange(num_examples) >= pool)
  return Split(train_idx, train_weight, is_train,
               jnp.asarray(table, jnp.int32), is_val)


def max_num_train(fractions: Sequence[float], num_examples: int) -> int:
  return max(num_train(f, num_examples) for f in fractions)
