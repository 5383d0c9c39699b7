"""The member axis: each member's swept values, its random keys and its split.

A sweep's grid (`grid.Grid`) flattens to `E` members. Every member is
described by its `Hypers` (the swept values plus its derived training-set
size); its keys come from its seeds and its train/validation split from its
data seed. Training, run directories and analyses all rebuild a member from
these alone, so they live below all of them.
"""

from __future__ import annotations

import collections

import jax
import numpy as np

from grokjax.config import SWEPT, Config, ConfigError
from grokjax.grid import Grid
from grokjax.tasks import Split, Task, make_split, num_train


# A member's swept values (arrays [E] in a sweep, in SWEPT order) plus its
# derived training-set size n_train: one field per swept Config field.
Hypers = collections.namedtuple("Hypers", SWEPT + ("n_train",))


def make_hypers(grid: Grid, task: Task, train_size: int = 0) -> Hypers:
  """Host-side [E] arrays of every member's values; checks n_train >= 1.

  n_train = round(train_fraction * pool) (the pool: every row, or an image
  task's training pool), or `train_size` rows when it is > 0.
  """
  columns = grid.columns()
  pool = getattr(task, "pool_size", task.num_examples)
  if train_size > pool:
    raise ConfigError(f"--train_size={train_size}: the task has {pool} rows "
                      f"to train on; use at most {pool}")
  n_train = np.array([train_size or num_train(f, pool)
                      for f in columns["train_fraction"]], np.int32)
  if n_train.min() < 1:
    bad = float(columns["train_fraction"][n_train.argmin()])
    raise ConfigError(f"--train_fraction={bad}: gives 0 training rows out of "
                      f"{pool}; use a fraction >= {0.5 / pool:.2g}")
  return Hypers(**{k: columns[k] for k in SWEPT}, n_train=n_train)


def member_keys(hypers: Hypers) -> tuple[jax.Array, jax.Array, jax.Array]:
  """(init, batch, split) keys of one member: init and batches from `seed`, the split from `data_seed`.

  Optimizer noise uses ``fold_in(key(seed), 2)`` (see `optim.make_optimizer`).
  """
  init_key, batch_key = jax.random.split(jax.random.key(hypers.seed))
  split_key = jax.random.fold_in(jax.random.key(hypers.data_seed), 1)
  return init_key, batch_key, split_key


def member_split(task: Task, max_n_train: int, hypers: Hypers) -> Split:
  """One member's train/validation split (vmap it over a sweep's Hypers)."""
  return make_split(member_keys(hypers)[2], hypers.n_train, task.num_examples,
                    max_n_train, hypers.task_index, task.num_pool,
                    task.validate_pool)


def member_splits(config: Config, task: Task, members) -> Split:
  """The train/validation splits of some members of the config's grid ([len(members)]).

  The same split each member trained on (from its data seed and fraction).
  """
  hypers = make_hypers(Grid.from_config(config), task, config.train_size)
  max_n = int(hypers.n_train.max())
  rows = jax.tree.map(lambda x: x[np.asarray(members, np.int64)], hypers)
  return jax.jit(jax.vmap(lambda h: member_split(task, max_n, h)))(rows)


__all__ = ["Hypers", "make_hypers", "member_keys", "member_split",
           "member_splits"]
