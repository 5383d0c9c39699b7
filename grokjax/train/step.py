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
  state, record, _ = _train_step(apply_fn, config, state, hypers, member,
                                 data, step)
  return state, record


def _train_step(apply_fn, config, state, hypers, member, data, step,
                with_train: bool = False):
  """`train_step`, and (`with_train`) the eval record's train fields its
  forward pass measured on `state.params` (`Objective.train_values`,
  float32; else {})."""
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
      for v in objective.step_values(config, loss, metric, state.params)])
  train = {k: v.astype(jnp.float32) for k, v in (
      objective.train_values(loss, metric).items() if with_train else ())}
  return new_state, record, train


def make_chunk_fn(apply_fn, config: Config, chunk_steps: int):
  """`chunk(state, hypers, member, data, start, stop, val_rows=None)` for one member: K steps from `start`.

  Returns the new state, per-step records [K] and eval records [K] (NaN where no
  eval is scheduled). Steps >= `stop` (or >= `config.steps`) do nothing, so
  every chunk has the same shape: the last one, and one cut short to save a
  snapshot at `stop`, do not retrace.

  An evaluation measures the parameters before the step's update. Where the
  objective takes the train fields from the step (`train_from_step`: full
  batch, --train_metrics_from_step), they are the step's own forward pass on
  those parameters and the evaluation runs over the validation rows only
  (so does one under --eval_sets=val), gathered into `val_rows` slots (static: at least any member's count; None:
  the table's N rows).
  """
  objective = objective_of(config)
  step_type, eval_type = objective.step_record, objective.eval_record
  nan = jnp.float32(jnp.nan)
  nan_eval = eval_type(*([nan] * len(eval_type._fields)))
  nan_step = step_type(*([nan] * len(step_type._fields)))

  def chunk(state: MemberState, hypers: Hypers, member: Split | Problem,
            data: Data, start: jax.Array, stop: jax.Array,
            val_rows: int | None = None):
    from_step = objective.train_from_step(config, member)
    gather = from_step or config.eval_sets == "val"
    rows = (val_rows or data.inputs.shape[0]) if gather else None

    def body(state, step):
      active = (step < config.steps) & (step < stop)
      at_eval = active & data.eval_at[step]
      ev = jax.lax.cond(at_eval,
                        lambda p: objective.evaluate(apply_fn, config, p,
                                                     member, data, rows),
                        lambda p: nan_eval, state.params)
      nan_train = {k: nan for k in (ev._fields if from_step else ())
                   if k.startswith("train_")}
      state, rec, train = jax.lax.cond(
          active,
          lambda s: _train_step(apply_fn, config, s, hypers, member, data,
                                step, from_step),
          lambda s: (s, nan_step, nan_train), state)
      if from_step:
        ev = ev._replace(**{k: jnp.where(at_eval, v, nan)
                            for k, v in train.items()})
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

  `val_rows` (static, a keyword) is the chunk's (`make_chunk_fn`). Returns (compiled function, TraceCounter of the chunk it traces).
  """
  chunk = TraceCounter(make_chunk_fn(apply_fn, config, chunk_steps))

  def sweep_chunk(state, hypers, member, data, start, stop, val_rows=None):
    one = lambda *args: chunk(*args, val_rows)
    return _over_members(one, (0, 0, 0, None, None, None), mesh)(
        state, hypers, member, data, start, stop)
  return jax.jit(sweep_chunk, static_argnames=("val_rows",),
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
