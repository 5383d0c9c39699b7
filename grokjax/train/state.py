"""Per-member values and state: every field gets a leading [E] axis in a sweep."""

from __future__ import annotations

import functools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from grokjax.config import INT_AXES, SWEPT, Config, ConfigError, Grid
from grokjax.models import DTYPES, cast_params, make_model, scale_init
from grokjax.optim import make_optimizer
from grokjax.tasks import (LinearTask, Problem, Split, Task, make_split,
                           num_train)
from grokjax.train import sharding as shard_lib


class Hypers(NamedTuple):
  """A member's swept values (arrays [E] in a sweep) plus its derived n_train."""
  seed: jax.Array
  data_seed: jax.Array
  train_fraction: jax.Array
  learning_rate: jax.Array
  weight_decay: jax.Array
  init_scale: jax.Array
  reg_strength: jax.Array
  task_index: jax.Array
  n_train: jax.Array


class MemberState(NamedTuple):
  """What changes during training. `diverged_step` is -1 while healthy."""
  params: Any
  opt_state: Any
  diverged_step: jax.Array


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


def init_member(model, config: Config, task: Task | LinearTask,
                max_n_train: int,
                hypers: Hypers) -> tuple[MemberState, Split | Problem]:
  """State and data of one member (vmap it over a sweep's Hypers).

  The data is the member's train/val split, or for a linear task its own
  problem (drawn from the same data-seed key).
  """
  init_key, _, split_key = member_keys(hypers)
  dummy = jnp.zeros((1, task.seq_len), task.inputs.dtype)
  params = cast_params(scale_init(model.init(init_key, dummy)["params"],
                                  hypers.init_scale), config.precision)
  tx = make_optimizer(config, hypers)
  state = MemberState(params, tx.init(params), jnp.array(-1, jnp.int32))
  if isinstance(task, LinearTask):
    return state, task.sample(split_key, hypers.n_train, max_n_train,
                              DTYPES[config.precision])
  split = make_split(split_key, hypers.n_train, task.num_examples, max_n_train,
                     hypers.task_index, task.num_pool)
  return state, split


class Ensemble(NamedTuple):
  """A sweep ready to train: the model, every member's values, state and split ([E] axes)."""
  model: Any
  grid: Grid
  hypers: Hypers
  max_n_train: int
  state: MemberState
  split: Split


def init_group(model, config: Config, task: Task, max_n_train: int,
               hypers: Hypers, sharding=None) -> tuple[MemberState, Split]:
  """State and split of a group of members in one vmapped call.

  `hypers` are host arrays [G]; with a `sharding` (the member axis over a mesh)
  they become global arrays and the state is created already sharded.
  """
  init = jax.vmap(functools.partial(init_member, model, config, task,
                                    max_n_train))
  if sharding is None:
    return jax.jit(init)(jax.device_put(hypers))
  return jax.jit(init, out_shardings=sharding)(
      shard_lib.global_array(hypers, sharding))


def abstract_ensemble(config: Config, task: Task, max_n_train: int,
                      num_members: int, steps_in_mask: int):
  """(model, state, hypers, split, data) as ShapeDtypeStructs for `num_members` members.

  Nothing is computed: used to lower the chunk for memory estimates.
  """
  from grokjax.train.step import Data  # pylint: disable=import-outside-toplevel
  model = make_model(config, task)
  row = Hypers(*(np.zeros(num_members, np.int32 if k in INT_AXES + ("n_train",)
                          else np.float32) for k in Hypers._fields))
  spec = lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype)
  hypers = jax.tree.map(spec, row)
  init = jax.vmap(functools.partial(init_member, model, config, task,
                                    max_n_train))
  state, split = jax.eval_shape(init, hypers)
  noisy = getattr(task, "train_labels", None)
  data = Data(jax.ShapeDtypeStruct(task.inputs.shape, task.inputs.dtype),
              jax.ShapeDtypeStruct(task.labels.shape, task.labels.dtype),
              jax.ShapeDtypeStruct((steps_in_mask,), np.bool_),
              None if noisy is None else jax.ShapeDtypeStruct(noisy.shape,
                                                              noisy.dtype))
  return model, state, hypers, split, data


def init_ensemble(config: Config, task: Task) -> Ensemble:
  """Builds the grid's members and initializes all of them on the default device."""
  grid = Grid.from_config(config)
  hypers = make_hypers(grid, task, config.train_size)
  max_n = int(hypers.n_train.max())
  model = make_model(config, task)
  hypers = jax.device_put(hypers)
  state, split = init_group(model, config, task, max_n, hypers)
  return Ensemble(model, grid, hypers, max_n, state, split)


def member_splits(config: Config, task: Task, members) -> Split:
  """The train/validation splits of some members of the config's grid ([len(members)]).

  The same split each member trained on (from its data seed and fraction).
  """
  hypers = make_hypers(Grid.from_config(config), task, config.train_size)
  max_n = int(hypers.n_train.max())
  rows = jax.tree.map(lambda x: x[np.asarray(members, np.int64)], hypers)

  def split(h):
    return make_split(member_keys(h)[2], h.n_train, task.num_examples, max_n,
                      h.task_index, task.num_pool)
  return jax.jit(jax.vmap(split))(rows)


def take_member(tree: Any, i: int) -> Any:
  """Member i of a pytree with a leading [E] axis."""
  return jax.tree.map(lambda x: x[i], tree)


def count_params(params: Any) -> int:
  return int(sum(np.prod(x.shape) for x in jax.tree.leaves(params)))


__all__ = ["Ensemble", "Hypers", "MemberState", "init_ensemble", "make_hypers",
           "init_member", "init_group", "abstract_ensemble", "member_splits",
           "take_member", "count_params"]
