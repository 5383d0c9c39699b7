"""The pure per-member training step, evaluation, and the chunk of K steps.

A sweep runs ``jit(vmap(chunk))``: `chunk` scans `K` steps of one member; vmap
adds the member axis; the step index is the scan's own (unbatched) input, so
the eval branch is a true `lax.cond` even under vmap.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.sharding import PartitionSpec

from grokjax.config import Config
from grokjax.objective import (Data, batch_rows, evaluate,  # re-exported
                               objective_of)
from grokjax.optim import make_optimizer
from grokjax.tasks import Problem, Split
from grokjax.train.state import Hypers, MemberState


def eval_schedule(config: Config) -> np.ndarray:
  """Sorted eval steps in [0, steps], always with 0 and `steps` (after the last update)."""
  if config.eval_schedule == "log":
    points = np.geomspace(1, config.steps, max(config.eval_every, 2))
    steps = np.unique(np.round(points).astype(np.int64))
  else:
    steps = np.arange(0, config.steps + 1, config.eval_every)
  return np.unique(np.concatenate([[0], steps, [config.steps]]))


def evaluate_member(apply_fn, config: Config, params, member, data: Data):
  """The eval record of one member, for the config's objective."""
  return objective_of(config).evaluate(apply_fn, config, params, member, data)


def _all_finite(tree) -> jax.Array:
  return jnp.all(jnp.array([jnp.all(jnp.isfinite(x))
                            for x in jax.tree.leaves(tree)]))


def train_step(apply_fn, config: Config, state: MemberState, hypers: Hypers,
               member: Split | Problem, data: Data,
               step: jax.Array) -> tuple[MemberState, Any]:
  """One optimizer update of one member; a non-finite loss or update freezes it.

  `member` is the member's data (`objective.member_data`): its train/validation
  `Split`, or a linear task's own `Problem`.
  """
  objective = objective_of(config)
  batch_loss = objective.batch_loss(apply_fn, config, hypers, member, data,
                                    step)
  (loss, metric), grads = jax.value_and_grad(batch_loss, has_aux=True)(
      state.params)
  tx = make_optimizer(config, hypers)
  updates, opt_state = tx.update(grads, state.opt_state, state.params)
  params = optax.apply_updates(state.params, updates)
  healthy = state.diverged_step < 0
  ok = healthy & jnp.isfinite(loss) & _all_finite(params)
  keep = lambda new, old: jax.tree.map(lambda n, o: jnp.where(ok, n, o), new,
                                       old)
  new_state = MemberState(
      keep(params, state.params), keep(opt_state, state.opt_state),
      jnp.where(healthy & ~ok, step, state.diverged_step).astype(jnp.int32))
  nan = jnp.float32(jnp.nan)
  record = objective.step_record(*[
      jnp.where(healthy, v.astype(jnp.float32), nan)
      for v in objective.step_values(loss, metric, state.params)])
  return new_state, record


def make_chunk_fn(apply_fn, config: Config, chunk_steps: int):
  """`chunk(state, hypers, member, data, start, stop)` for one member: K steps from `start`.

  Returns the new state, per-step records [K] and eval records [K] (NaN where no
  eval is scheduled). Steps >= `stop` (or >= `config.steps`) do nothing, so
  every chunk has the same shape: the last one, and one cut short to save a
  snapshot at `stop`, do not retrace.
  """
  objective = objective_of(config)
  step_type, eval_type = objective.step_record, objective.eval_record
  nan_eval = eval_type(*([jnp.float32(jnp.nan)] * len(eval_type._fields)))
  nan_step = step_type(*([jnp.float32(jnp.nan)] * len(step_type._fields)))

  def chunk(state: MemberState, hypers: Hypers, member: Split | Problem,
            data: Data, start: jax.Array, stop: jax.Array):
    def body(state, step):
      active = (step < config.steps) & (step < stop)
      ev = jax.lax.cond(active & data.eval_at[step],
                        lambda p: evaluate_member(apply_fn, config, p, member,
                                                  data),
                        lambda p: nan_eval, state.params)
      state, rec = jax.lax.cond(
          active,
          lambda s: train_step(apply_fn, config, s, hypers, member, data,
                               step),
          lambda s: (s, nan_step), state)
      return state, (rec, ev)
    return jax.lax.scan(body, state, start + jnp.arange(chunk_steps))

  return chunk


class TraceCounter:
  """Counts how often a function is traced: a sweep must compile its chunk once."""

  def __init__(self, fn):
    self.fn, self.count = fn, 0

  def __call__(self, *args):
    self.count += 1
    return self.fn(*args)


def _over_members(fn, in_axes, mesh):
  """vmap over members; with a mesh, each device runs that vmap on its own members.

  `shard_map` (not automatic partitioning) gives each device the vmapped
  program for its E / D members, with no communication. It is not bitwise
  the single-device program, even at the same per-device size: XLA compiles
  each device configuration on its own (measured on XLA:CPU: the first
  difference at step 4, 4.8e-7 in a loss). The same sweep on the same device
  configuration is bitwise.
  """
  batched = jax.vmap(fn, in_axes=in_axes)
  if mesh is None:
    return batched
  specs = tuple(PartitionSpec() if a is None else PartitionSpec(mesh.axis_names)
                for a in in_axes)
  return jax.shard_map(batched, mesh=mesh, in_specs=specs,
                       out_specs=PartitionSpec(mesh.axis_names),
                       check_vma=False)  # no collectives: members never mix


def compile_sweep_chunk(apply_fn, config: Config, chunk_steps: int, mesh=None):
  """``jit(vmap(chunk))`` over members (sharded over `mesh`), donating the state.

  Returns (compiled function, TraceCounter of the chunk it traces).
  """
  chunk = TraceCounter(make_chunk_fn(apply_fn, config, chunk_steps))
  return jax.jit(_over_members(chunk, (0, 0, 0, None, None, None), mesh),
                 donate_argnums=(0,)), chunk


def compile_sweep_eval(apply_fn, config: Config, mesh=None):
  """``jit(vmap(evaluate))``: eval records [E] of every member's current parameters."""
  return jax.jit(_over_members(
      lambda p, member, data: evaluate_member(apply_fn, config, p, member,
                                              data),
      (0, 0, None), mesh))


def padded_eval_mask(eval_steps: np.ndarray, total: int) -> np.ndarray:
  """bool[total]: True at the eval steps below `total` (the final one is evaluated apart)."""
  mask = np.zeros(total, bool)
  mask[eval_steps[eval_steps < total]] = True
  return mask


__all__ = ["Data", "batch_rows", "eval_schedule", "evaluate",
           "evaluate_member", "train_step", "make_chunk_fn",
           "compile_sweep_chunk", "compile_sweep_eval", "padded_eval_mask",
           "TraceCounter"]
