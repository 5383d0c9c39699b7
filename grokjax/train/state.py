"""Per-member values and state: every field gets a leading [E] axis in a sweep."""

from __future__ import annotations

import functools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from grokjax.config import INT_AXES, Config
from grokjax.models import init_params, make_model
from grokjax.members import (Hypers, make_hypers, member_keys,  # re-exported
                             member_splits)
from grokjax.objective import Data, objective_of
from grokjax.optim import make_optimizer
from grokjax.tasks import LinearTask, Problem, Split, Task
from grokjax.train import sharding as shard_lib


class MemberState(NamedTuple):
  """What changes during training. `diverged_step` is -1 while healthy."""
  params: Any
  opt_state: Any
  diverged_step: jax.Array


def init_member(model, config: Config, task: Task | LinearTask,
                max_n_train: int,
                hypers: Hypers) -> tuple[MemberState, Split | Problem]:
  """State and data of one member (vmap it over a sweep's Hypers).

  The data is the member's train/val split, or for a linear task its own
  problem (drawn from the same data-seed key).
  """
  init_key = member_keys(hypers)[0]
  params = init_params(model, task, config.precision, init_key,
                       hypers.init_scale, config.init)
  tx = make_optimizer(config, hypers)
  state = MemberState(params, tx.init(params), jnp.array(-1, jnp.int32))
  return state, objective_of(config).member_data(task, max_n_train, hypers,
                                                 config.precision)


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


def abstract_state(config: Config, task: Task | LinearTask, max_n_train: int,
                   num_members: int, sharding) -> MemberState:
  """The MemberState of `num_members` members as ShapeDtypeStructs placed by `sharding` (what a restore needs)."""
  state = abstract_ensemble(config, task, max_n_train, num_members, 1)[1]
  return jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype,
                                                     sharding=sharding), state)


def count_params(params: Any) -> int:
  return int(sum(np.prod(x.shape) for x in jax.tree.leaves(params)))


__all__ = ["Data", "abstract_state", "Hypers", "MemberState", "make_hypers",
           "init_member", "init_group", "abstract_ensemble", "member_splits",
           "count_params"]
