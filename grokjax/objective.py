"""The objective, chosen once from the task: classification or regression.

Everything that depends on the task's kind lives here and nowhere else: the
per-step and eval records, the loss a step minimizes, the evaluation, what a
member's data is (a train/validation `Split`, or a linear task's own
`Problem`), the memorization and generalization criteria, and plot labels.

- `CLASSIFICATION` (tables, images, text): cross-entropy (or --loss) on
  batches of the member's train rows; accuracy; a threshold is reached when
  accuracy is >= it.
- `REGRESSION` (linear tasks, Notsawo et al. 2025): 1/2 ||X a - y||^2 over the
  member's measurements, full batch; errors (--regression_error); a threshold
  is reached when the error is <= it.

`objective_of(config)` picks one; `objective_of_history(history)` recognises
one by its own eval record's fields.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Mapping, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from grokjax import tasks
from grokjax.members import Hypers, member_keys, member_split
from grokjax.models import DTYPES, parts_of
from grokjax.optim import LOSSES, correct, loss_of, weighted_mean
from grokjax.tasks import Problem, Split
from grokjax.tasks.linear import error
from grokjax.tasks.splits import member_labels


class Data(NamedTuple):
  """Shared by every member (unbatched): the task table and the eval schedule.

  `labels` is [A, N] for a task with several tables (each member reads its
  own, `Split.table`). `train_labels` (same shape) are the labels training
  and the train metrics use when some are corrupted (--label_noise); None
  otherwise. Validation always uses `labels`.
  """
  inputs: jax.Array   # int32[N, L]
  labels: jax.Array   # int32[N] (or [A, N])
  eval_at: jax.Array  # bool[S]: evaluate before the update of step s
  train_labels: Any = None


class StepRecord(NamedTuple):
  """Per-step scalars of one member: the loss/accuracy of the batch it trained
  on, and the l2 norm of the last layer's weights that produced them (Thilak
  et al. 2022's slingshot signal)."""
  train_loss: jax.Array
  train_acc: jax.Array
  last_layer_norm: jax.Array


class EvalRecord(NamedTuple):
  """Losses are the training loss (--loss); `train_zero_loss` is the fraction of
  train rows whose loss is exactly 0 in the dtype it is computed in
  (--loss_dtype; softmax collapse, Prieto 2025)."""
  train_loss: jax.Array
  train_acc: jax.Array
  val_loss: jax.Array
  val_acc: jax.Array
  param_norm: jax.Array
  train_zero_loss: jax.Array


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


def _as_float32(record):
  return jax.tree.map(lambda x: jnp.asarray(x, jnp.float32), record)


def train_labels(data: Data, split: Split) -> jax.Array:
  """[N] the labels a member trains on (corrupted ones under --label_noise)."""
  return member_labels(data.labels if data.train_labels is None
                       else data.train_labels, split)


def batch_rows(config, split: Split, batch_key: jax.Array, num_examples: int,
               step: jax.Array) -> tuple[jax.Array, jax.Array]:
  """Row indices [B] and weights [B] of one step's batch, drawn from the member's train rows.

  Full batch (`batch_size=0`): all `max_n_train` slots, weighted by membership.
  Minibatch, `--data_order=random`: `B` distinct train rows drawn uniformly
  for every step from ``fold_in(key, step)`` (random numbers over N, so they
  do not depend on the sweep's max_n_train); a member with fewer than B rows
  uses all of them.

  `--data_order=epoch` (a PyTorch DataLoader with shuffle=True,
  drop_last=False; Grokfast's `torch.split` of a permuted table): the member's
  n train rows are permuted once per epoch, from ``fold_in(key, epoch)``, and
  cut into ceil(n / B) batches in order; the last holds n - (ceil(n/B) - 1) B
  rows, its other slots weighted 0, so its loss is the mean over those rows.
  """
  max_n = split.train_idx.shape[0]
  if config.batch_size == 0 or config.batch_size >= max_n:
    return split.train_idx, split.train_weight
  b = config.batch_size
  if config.data_order == "epoch":
    n = jnp.sum(split.train_weight > 0).astype(jnp.int32)
    steps_per_epoch = jnp.maximum((n + b - 1) // b, 1)
    epoch, j = step // steps_per_epoch, step % steps_per_epoch
    u = jax.random.uniform(jax.random.fold_in(batch_key, epoch),
                           (num_examples,), jnp.float32)[:max_n]
    order = jnp.argsort(jnp.where(split.train_weight > 0, u, 2.0))
    position = j * b + jnp.arange(b)
    slots = order[jnp.minimum(position, max_n - 1)]
    weight = jnp.where(position < n, split.train_weight[slots], 0)
    return split.train_idx[slots], weight.astype(split.train_weight.dtype)
  u = jax.random.uniform(jax.random.fold_in(batch_key, step),
                         (num_examples,), jnp.float32)[:max_n]
  u = jnp.where(split.train_weight > 0, u, 2.0)
  _, slots = jax.lax.top_k(-u, b)
  return split.train_idx[slots], split.train_weight[slots]


def loss_and_metrics(apply_fn, loss_fn, params, inputs, labels, weights):
  """(weighted mean loss, weighted accuracy) of a batch."""
  loss, (acc, _) = _loss_acc_zero(apply_fn, loss_fn, params, inputs, labels,
                                  weights)
  return loss, acc


def _loss_acc_zero(apply_fn, loss_fn, params, inputs, labels, weights):
  """(weighted mean loss, (weighted accuracy, weighted fraction of rows whose
  loss is exactly 0)) of a batch: what an evaluation measures on train rows."""
  logits = apply_fn({"params": params}, inputs)
  losses = loss_fn(logits, labels)
  return weighted_mean(losses, weights), (
      weighted_mean(correct(logits, labels), weights),
      weighted_mean((losses == 0).astype(jnp.float32), weights))


def evaluate(apply_fn, params, split: Split, data: Data,
             loss_fn=LOSSES["cross_entropy"]) -> EvalRecord:
  """Loss and accuracy on every train and validation row, the parameter l2 norm, softmax collapse."""
  logits = apply_fn({"params": params}, data.inputs)
  labels = member_labels(data.labels, split)
  loss, acc = loss_fn(logits, labels), correct(logits, labels)
  train_loss, train_acc = loss, acc
  if data.train_labels is not None:  # train rows are scored on what they teach
    noisy = train_labels(data, split)
    train_loss, train_acc = loss_fn(logits, noisy), correct(logits, noisy)
  w_train = split.is_train.astype(jnp.float32)
  w_val = split.is_val.astype(jnp.float32)
  record = EvalRecord(weighted_mean(train_loss, w_train),
                      weighted_mean(train_acc, w_train),
                      weighted_mean(loss, w_val), weighted_mean(acc, w_val),
                      optax.tree.norm(params),
                      weighted_mean((train_loss == 0).astype(jnp.float32),
                                    w_train))
  return jax.tree.map(lambda x: x.astype(jnp.float32), record)


def evaluate_val(apply_fn, params, split: Split, data: Data, loss_fn,
                 val_rows: int) -> EvalRecord:
  """Loss and accuracy on the validation rows only (gathered into `val_rows`
  slots, at least the member's count; the rest weighted 0), the parameter l2
  norm; the train fields NaN (the chunk fills them from the step's own
  forward pass, or leaves them NaN under --eval_sets=val)."""
  count = jnp.sum(split.is_val)
  rows = jnp.nonzero(split.is_val, size=val_rows, fill_value=0)[0]
  weight = (jnp.arange(val_rows) < count).astype(jnp.float32)
  logits = apply_fn({"params": params}, data.inputs[rows])
  labels = member_labels(data.labels, split)[rows]
  nan = jnp.float32(jnp.nan)
  record = EvalRecord(nan, nan,
                      weighted_mean(loss_fn(logits, labels), weight),
                      weighted_mean(correct(logits, labels), weight),
                      optax.tree.norm(params), nan)
  return jax.tree.map(lambda x: x.astype(jnp.float32), record)


def _without_train(record):
  """--eval_sets=val: an eval record with its train fields NaN."""
  nan = jnp.float32(jnp.nan)
  return record._replace(**{k: nan for k in record._fields
                            if k.startswith("train_")})


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
  return _as_float32(RegressionEvalRecord(
      loss, err, 0.5 * jnp.sum(jnp.square(diff)),
      error(diff, problem.target, norm), optax.tree.norm(params)))


@dataclasses.dataclass(frozen=True)
class Objective:
  """What training minimizes and how a member is judged, for one task kind.

  name: ``classification`` or ``regression``.
  step_record, eval_record: the NamedTuples of per-step and eval records.
  metric: the history suffix of the judged quantity (``acc``, ``error``).
  higher_is_better: accuracy (True) or error (False).
  metric_label, loss_label: plot axis labels.
  """
  name: str
  step_record: type
  eval_record: type
  metric: str
  higher_is_better: bool
  metric_label: str
  loss_label: str

  @property
  def eval_fields(self) -> tuple[str, ...]:
    return self.eval_record._fields

  # --- judging histories (host, numpy) -----------------------------------------

  def reached(self, history: Mapping[str, np.ndarray],
              thresholds: tuple[float, float]) -> tuple[np.ndarray, np.ndarray]:
    """bool [E, Te]: where the train (val) metric is at its threshold or better (NaN never is)."""
    mem, gen = thresholds
    train, val = (history[f"{s}_{self.metric}"] for s in ("train", "val"))
    with np.errstate(invalid="ignore"):
      if self.higher_is_better:
        return train >= mem, val >= gen
      return train <= mem, val <= gen

  # --- each objective's own: thresholds (host), the rest traced per member ---

  def thresholds(self, config) -> tuple[float, float]:
    """(mem, gen) thresholds of the config for this objective's metric."""
    raise NotImplementedError

  def member_data(self, task, max_n_train: int, hypers: Hypers,
                  precision: str) -> Split | Problem:
    """A member's data (vmap over a sweep's Hypers)."""
    raise NotImplementedError

  def batch_loss(self, apply_fn, config, hypers: Hypers, member, data: Data,
                 step: jax.Array) -> Callable[[Any], tuple[jax.Array,
                                                         jax.Array]]:
    """params -> (loss, metric) of what the member trains on at `step`."""
    raise NotImplementedError

  def step_values(self, config, loss, metric, params) -> list[jax.Array]:
    """The step record's values, given the parameters that produced them."""
    raise NotImplementedError

  def gathers_max_n(self, config, max_n_train: int) -> bool:
    """Whether each step computes every member on `max_n_train` rows (so a
    member with fewer is padded, and buckets by size save work) while a
    member's data and steps depend on `max_n_train` only through that
    padding (so a bucket changes its numbers at rounding level only)."""
    raise NotImplementedError

  def train_from_step(self, config, member) -> bool:
    """Whether an evaluation takes its train fields from the step's own
    forward pass (`train_values`) and runs over the validation rows only
    (static: `member` is one member's data, its shapes known when traced)."""
    del config, member
    return False

  def train_values(self, loss, metric) -> dict[str, jax.Array]:
    """The eval record's train fields measured by a step's forward pass
    (`batch_loss`'s loss and metric), when `train_from_step`."""
    del loss, metric
    return {}

  def evaluate(self, apply_fn, config, params, member, data: Data,
               val_rows: int | None = None):
    """The member's eval record (float32). `val_rows`: over the validation
    rows only, gathered into that many slots (train fields NaN); None: every
    row (train fields NaN under --eval_sets=val)."""
    raise NotImplementedError


class Classification(Objective):
  """Tables, images, text: accuracy, reached when >= its threshold."""

  def thresholds(self, config) -> tuple[float, float]:
    return config.mem_threshold, config.gen_threshold

  def member_data(self, task, max_n_train, hypers, precision) -> Split:
    del precision
    return member_split(task, max_n_train, hypers)

  def batch_loss(self, apply_fn, config, hypers, member, data, step):
    _, batch_key, _ = member_keys(hypers)
    rows, weights = batch_rows(config, member, batch_key,
                               data.inputs.shape[0], step)
    return lambda p: _loss_acc_zero(apply_fn, loss_of(config), p,
                                    data.inputs[rows],
                                    train_labels(data, member)[rows], weights)

  def gathers_max_n(self, config, max_n_train):
    # Full batch gathers all max_n slots (`batch_rows`); a minibatch draws
    # batch_size rows from uniform numbers over N, whatever max_n is.
    return config.batch_size == 0 or config.batch_size >= max_n_train

  def step_values(self, config, loss, metric, params):
    acc, _ = metric
    readout = parts_of(config).need("readout")  # the model's last layer
    return [loss, acc, jnp.linalg.norm(readout(params).astype(jnp.float32))]

  def train_from_step(self, config, member):
    # Full batch: the step's forward pass is over exactly the member's train
    # rows (`batch_rows`), on the parameters the evaluation would measure.
    max_n = member.train_idx.shape[0]
    return (config.train_metrics_from_step and config.eval_sets != "val"
            and (config.batch_size == 0 or config.batch_size >= max_n))

  def train_values(self, loss, metric):
    acc, zero = metric
    return {"train_loss": loss, "train_acc": acc, "train_zero_loss": zero}

  def evaluate(self, apply_fn, config, params, member, data, val_rows=None):
    if val_rows is None and config.eval_sets == "val":
      val_rows = data.inputs.shape[0]
    if val_rows is not None:
      return evaluate_val(apply_fn, params, member, data, loss_of(config),
                          val_rows)
    return evaluate(apply_fn, params, member, data, loss_of(config))


class Regression(Objective):
  """Linear tasks: errors (--regression_error), reached when <= the threshold; full batch."""

  def thresholds(self, config) -> tuple[float, float]:
    return config.mem_error, config.gen_error

  def member_data(self, task, max_n_train, hypers, precision) -> Problem:
    return task.sample(member_keys(hypers)[2], hypers.n_train, max_n_train,
                       DTYPES[precision])

  def batch_loss(self, apply_fn, config, hypers, member, data, step):
    del hypers, step  # full batch over the member's Problem
    return lambda p: squared_error(apply_fn, p, member, data.inputs,
                                   config.regression_error)

  def step_values(self, config, loss, metric, params):
    del config, params
    return [loss, metric]

  def gathers_max_n(self, config, max_n_train):
    # A Problem's measurements are drawn at shape [max_n_train]: a bucket
    # would draw other ones.
    del config, max_n_train
    return False

  def evaluate(self, apply_fn, config, params, member, data, val_rows=None):
    del val_rows  # a linear task's validation is a distance in weight space
    record = evaluate_regression(apply_fn, params, member, data,
                                 config.regression_error)
    return _without_train(record) if config.eval_sets == "val" else record


CLASSIFICATION = Classification("classification", StepRecord, EvalRecord, "acc",
                           True, "accuracy", "loss")
REGRESSION = Regression("regression", RegressionStepRecord,
                       RegressionEvalRecord, "error", False, "error",
                       "1/2 squared error")
OBJECTIVES = (CLASSIFICATION, REGRESSION)


def objective_of(config) -> Objective:
  """The objective of the config's task (linear tasks: regression)."""
  return REGRESSION if tasks.is_regression(config.task) else CLASSIFICATION


def objective_of_history(history: Mapping[str, np.ndarray]) -> Objective:
  """The objective whose eval records a history holds."""
  for objective in OBJECTIVES:
    if f"val_{objective.metric}" in history:
      return objective
  raise ValueError("history: no val_acc or val_error; not a grokjax history")


__all__ = ["Objective", "Classification", "Regression", "CLASSIFICATION", "REGRESSION", "objective_of",
           "objective_of_history", "Data", "StepRecord", "EvalRecord",
           "RegressionStepRecord", "RegressionEvalRecord", "batch_rows",
           "loss_and_metrics", "evaluate", "evaluate_val",
           "evaluate_regression",
           "squared_error", "train_labels"]
