"""The pure per-member training step, evaluation, and the chunk of K steps.

A sweep runs ``jit(vmap(chunk))``: `chunk` scans `K` steps of one member; vmap
adds the member axis; the step index is the scan's own (unbatched) input, so
the eval branch is a true `lax.cond` even under vmap.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from grokjax.config import Config
from grokjax.models import readout_weights
from grokjax.optim import (LOSSES, correct, cross_entropy, make_optimizer,
                           weighted_mean)
from grokjax.tasks import Problem, Split
from grokjax.tasks.splits import member_labels
from grokjax.tasks.linear import error
from grokjax.train.state import Data, Hypers, MemberState, member_keys



def _train_labels(data: Data, split: Split) -> jax.Array:
  return member_labels(data.labels if data.train_labels is None
                       else data.train_labels, split)


class StepRecord(NamedTuple):
  """Per-step scalars of one member: the loss/accuracy of the batch it trained
  on, and the l2 norm of the last layer's weights that produced them (Thilak
  et al. 2022's slingshot signal)."""
  train_loss: jax.Array
  train_acc: jax.Array
  last_layer_norm: jax.Array


class EvalRecord(NamedTuple):
  """Losses are the training loss (--loss); `train_zero_loss` is the fraction of
  train rows whose loss is exactly 0 in the training dtype (softmax collapse,
  Prieto 2025)."""
  train_loss: jax.Array
  train_acc: jax.Array
  val_loss: jax.Array
  val_acc: jax.Array
  param_norm: jax.Array
  train_zero_loss: jax.Array


EVAL_FIELDS = EvalRecord._fields


class RegressionStepRecord(NamedTuple):
  """Per-step scalars of one member of a linear task."""
  train_loss: jax.Array
  train_error: jax.Array


class RegressionEvalRecord(NamedTuple):
  """A linear task's eval: train_loss = 1/2 ||X a - y||^2 over the member's
  measurements, val_loss = 1/2 ||a - a*||^2, and the errors of
  --regression_error (train: of the measurements; val: of a against a*)."""
  train_loss: jax.Array
  train_error: jax.Array
  val_loss: jax.Array
  val_error: jax.Array
  param_norm: jax.Array


def record_types(config: Config) -> tuple[type, type]:
  """(step record, eval record) NamedTuples of this config's task kind."""
  if config.regression:
    return RegressionStepRecord, RegressionEvalRecord
  return StepRecord, EvalRecord


def eval_fields(config: Config) -> tuple[str, ...]:
  return record_types(config)[1]._fields


def eval_schedule(config: Config) -> np.ndarray:
  """Sorted eval steps in [0, steps], always with 0 and `steps` (after the last update)."""
  if config.eval_schedule == "log":
    points = np.geomspace(1, config.steps, max(config.eval_every, 2))
    steps = np.unique(np.round(points).astype(np.int64))
  else:
    steps = np.arange(0, config.steps + 1, config.eval_every)
  return np.unique(np.concatenate([[0], steps, [config.steps]]))


def batch_rows(config: Config, split: Split, batch_key: jax.Array,
               num_examples: int, step: jax.Array) -> tuple[jax.Array, jax.Array]:
  """Row indices [B] and weights [B] of one step's batch, drawn from the member's train rows.

  Full batch (`batch_size=0`): all `max_n_train` slots, weighted by membership.
  Minibatch: `B` distinct train rows drawn uniformly for every step from
  ``fold_in(key, step)`` (random numbers over N, so they do not depend on the
  sweep's max_n_train); a member with fewer than B rows uses all of them.
  """
  max_n = split.train_idx.shape[0]
  if config.batch_size == 0 or config.batch_size >= max_n:
    return split.train_idx, split.train_weight
  u = jax.random.uniform(jax.random.fold_in(batch_key, step),
                         (num_examples,), jnp.float32)[:max_n]
  u = jnp.where(split.train_weight > 0, u, 2.0)
  _, slots = jax.lax.top_k(-u, config.batch_size)
  return split.train_idx[slots], split.train_weight[slots]


def loss_and_metrics(apply_fn, loss_fn, params, inputs, labels, weights):
  logits = apply_fn({"params": params}, inputs)
  loss = weighted_mean(loss_fn(logits, labels), weights)
  return loss, weighted_mean(correct(logits, labels), weights)


def _fit(problem: Problem, a: jax.Array, norm: str):
  residual = (problem.measure(a) - problem.y) * problem.weight
  return (0.5 * jnp.sum(jnp.square(residual)),
          error(residual, problem.y * problem.weight, norm))


def squared_error(apply_fn, params, problem: Problem, inputs,
                  norm: str) -> tuple[jax.Array, jax.Array]:
  """(1/2 ||X a - y||^2 summed over the member's measurements, its error)."""
  return _fit(problem, apply_fn({"params": params}, inputs), norm)


def evaluate_regression(apply_fn, params, problem: Problem, data: Data,
                        norm: str) -> RegressionEvalRecord:
  """Fit of the measurements and distance to the ground truth (float32 records)."""
  a = apply_fn({"params": params}, data.inputs)
  loss, err = _fit(problem, a, norm)
  diff = a - problem.target
  record = RegressionEvalRecord(loss, err, 0.5 * jnp.sum(jnp.square(diff)),
                                error(diff, problem.target, norm),
                                optax.tree.norm(params))
  return jax.tree.map(lambda x: jnp.asarray(x, jnp.float32), record)


def evaluate(apply_fn, params, split: Split, data: Data,
             loss_fn=cross_entropy) -> EvalRecord:
  """Loss and accuracy on every train and validation row, the parameter l2 norm, softmax collapse."""
  logits = apply_fn({"params": params}, data.inputs)
  labels = member_labels(data.labels, split)
  loss, acc = loss_fn(logits, labels), correct(logits, labels)
  train_loss, train_acc = loss, acc
  if data.train_labels is not None:  # train rows are scored on what they teach
    noisy = _train_labels(data, split)
    train_loss, train_acc = loss_fn(logits, noisy), correct(logits, noisy)
  w_train = split.is_train.astype(jnp.float32)
  w_val = (1.0 - w_train if split.is_val is None
           else split.is_val.astype(jnp.float32))
  record = EvalRecord(weighted_mean(train_loss, w_train),
                      weighted_mean(train_acc, w_train),
                      weighted_mean(loss, w_val), weighted_mean(acc, w_val),
                      optax.tree.norm(params),
                      weighted_mean((train_loss == 0).astype(jnp.float32),
                                    w_train))
  return jax.tree.map(lambda x: x.astype(jnp.float32), record)


def evaluate_member(apply_fn, config: Config, params, split, data: Data):
  """The eval record of one member, for the config's task kind."""
  if config.regression:
    return evaluate_regression(apply_fn, params, split, data,
                               config.regression_error)
  return evaluate(apply_fn, params, split, data, LOSSES[config.loss])


def _all_finite(tree) -> jax.Array:
  return jnp.all(jnp.array([jnp.all(jnp.isfinite(x))
                            for x in jax.tree.leaves(tree)]))


def train_step(apply_fn, config: Config, state: MemberState, hypers: Hypers,
               split: Split, data: Data,
               step: jax.Array) -> tuple[MemberState, StepRecord]:
  """One optimizer update of one member; a non-finite loss or update freezes it."""
  if config.regression:  # full batch: `split` is the member's Problem
    objective = lambda p: squared_error(apply_fn, p, split, data.inputs,
                                        config.regression_error)
  else:
    _, batch_key, _ = member_keys(hypers)
    rows, weights = batch_rows(config, split, batch_key, data.inputs.shape[0],
                               step)
    objective = lambda p: loss_and_metrics(apply_fn, LOSSES[config.loss], p,
                                           data.inputs[rows],
                                           _train_labels(data, split)[rows],
                                           weights)
  (loss, acc), grads = jax.value_and_grad(objective, has_aux=True)(
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
  values = [loss, acc]
  if not config.regression:
    values.append(jnp.linalg.norm(readout_weights(state.params).astype(
        jnp.float32)))
  record = record_types(config)[0](
      *[jnp.where(healthy, v.astype(jnp.float32), nan) for v in values])
  return new_state, record


def make_chunk_fn(apply_fn, config: Config, chunk_steps: int):
  """`chunk(state, hypers, split, data, start, stop)` for one member: K steps from `start`.

  Returns the new state, per-step records [K] and eval records [K] (NaN where no
  eval is scheduled). Steps >= `stop` (or >= `config.steps`) do nothing, so
  every chunk has the same shape: the last one, and one cut short to save a
  snapshot at `stop`, do not retrace.
  """
  step_type, eval_type = record_types(config)
  nan_eval = eval_type(*([jnp.float32(jnp.nan)] * len(eval_type._fields)))
  nan_step = step_type(*([jnp.float32(jnp.nan)] * len(step_type._fields)))

  def chunk(state: MemberState, hypers: Hypers, split: Split, data: Data,
            start: jax.Array, stop: jax.Array):
    def body(state, step):
      active = (step < config.steps) & (step < stop)
      ev = jax.lax.cond(active & data.eval_at[step],
                        lambda p: evaluate_member(apply_fn, config, p, split,
                                                  data),
                        lambda p: nan_eval, state.params)
      state, rec = jax.lax.cond(
          active,
          lambda s: train_step(apply_fn, config, s, hypers, split, data, step),
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

  `shard_map` (not automatic partitioning) makes the per-device program exactly
  the single-device program for E / D members, so a sharded sweep reproduces
  single-device runs of the same per-device size bit for bit.
  """
  batched = jax.vmap(fn, in_axes=in_axes)
  if mesh is None:
    return batched
  from jax.sharding import PartitionSpec  # pylint: disable=import-outside-toplevel
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
      lambda p, split, data: evaluate_member(apply_fn, config, p, split, data),
      (0, 0, None), mesh))


def padded_eval_mask(eval_steps: np.ndarray, total: int) -> np.ndarray:
  """bool[total]: True at the eval steps below `total` (the final one is evaluated apart)."""
  mask = np.zeros(total, bool)
  mask[eval_steps[eval_steps < total]] = True
  return mask


__all__ = ["Data", "StepRecord", "EvalRecord", "RegressionStepRecord",
           "RegressionEvalRecord", "EVAL_FIELDS", "record_types",
           "eval_fields", "eval_schedule",
           "evaluate_member", "evaluate_regression", "squared_error",
           "train_step", "evaluate", "make_chunk_fn", "compile_sweep_chunk",
           "compile_sweep_eval", "padded_eval_mask", "TraceCounter"]
