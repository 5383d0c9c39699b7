"""Losses as pure functions of logits [B, V] and integer labels [B], masked by weights [B].

Masked means are sum(w * l) / sum(w), so a member's train fraction never changes a shape.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import optax

from grokjax.settings import check_choice, setting


def weighted_mean(values_B: jax.Array, weights_B: jax.Array) -> jax.Array:
  """sum(w * v) / sum(w); NaN when every weight is 0 (e.g. an empty validation set)."""
  total = jnp.sum(weights_B)
  return jnp.where(total > 0, jnp.sum(values_B * weights_B) /
                   jnp.maximum(total, 1e-30), jnp.nan)


def cross_entropy(logits_BxV: jax.Array, labels_B: jax.Array) -> jax.Array:
  """Per-example softmax cross-entropy [B], in the logits' dtype (--precision, or --loss_dtype).

  So softmax collapse happens as it would in that dtype: in bfloat16 a margin
  of ~12 over 96 classes already gives a loss of exactly 0.
  """
  return optax.softmax_cross_entropy_with_integer_labels(logits_BxV, labels_B)


def stablemax_cross_entropy(logits_BxV: jax.Array,
                            labels_B: jax.Array) -> jax.Array:
  """Per-example -log StableMax(x)[label] [B] (Prieto et al. 2025), in the logits' dtype.

  StableMax(x)_i = s(x_i) / sum_j s(x_j) with s(x) = x + 1 for x >= 0 and
  1 / (1 - x) for x < 0: it grows linearly, not exponentially, so the correct
  class's probability does not round to exactly 1 (softmax collapse).
  """
  x = logits_BxV
  s = jnp.where(x >= 0, x + 1, 1 / (1 - jnp.minimum(x, 0)))
  is_label = jax.nn.one_hot(labels_B, x.shape[-1], dtype=bool)
  s_label = jnp.sum(jnp.where(is_label, s, 0), axis=-1)
  others = jnp.sum(jnp.where(is_label, 0, s), axis=-1)
  return jnp.log1p(others / s_label)  # = log(sum_j s_j / s_label), accurately


def mse_one_hot(logits_BxV: jax.Array, labels_B: jax.Array) -> jax.Array:
  """Per-example mean over classes of (x - one_hot(label))^2 [B] (Omnigrok's MSE).

  Its weighted mean over rows equals PyTorch's ``MSELoss()(x, one_hot)``.
  """
  x = logits_BxV
  target = jax.nn.one_hot(labels_B, x.shape[-1], dtype=x.dtype)
  return jnp.mean(jnp.square(x - target), axis=-1)


LOSSES = {"cross_entropy": cross_entropy, "stablemax": stablemax_cross_entropy,
          "mse": mse_one_hot}


# --loss_dtype: "precision" computes the loss in the training dtype.
LOSS_DTYPES = ("precision", "float16", "bfloat16", "float32", "float64")


@dataclasses.dataclass(frozen=True)
class LossSettings:
  """The classification loss and the dtype it is computed in."""
  loss: str = setting("cross_entropy", "training loss: " + ", ".join(LOSSES)
                      + " (see grokjax.optim.losses); linear tasks always "
                      "use 1/2 ||X a - y||^2")
  loss_dtype: str = setting("precision", "dtype the classification loss is "
                            "computed in: the logits are cast to it "
                            "(precision: the training dtype). Prieto et al. "
                            "2025's --cross_entropy_dtype: their StableMax "
                            "runs use float64 with a float32 model")

  def check(self) -> None:
    check_choice("loss", self.loss, tuple(LOSSES))
    check_choice("loss_dtype", self.loss_dtype, LOSS_DTYPES)


def in_dtype(loss_fn, dtype: str | None):
  """`loss_fn` computed on logits cast to `dtype` (None: the logits' own dtype).

  As Prieto et al.'s code casts before its cross-entropy
  (``log_softmax(logits, dtype=...)``, ``logits.to(dtype)`` before StableMax):
  the loss and its gradient w.r.t. the logits are computed in `dtype`, and
  the gradient is cast back to the model's dtype on its way down (the cast's
  transpose). So a float64 loss keeps a float32 model's correct-class
  gradient 1 - p alive at margins where float32 rounds p to exactly 1.
  """
  if dtype is None:
    return loss_fn
  return lambda logits_BxV, labels_B: loss_fn(logits_BxV.astype(dtype),
                                              labels_B)


def loss_of(config) -> callable:
  """The config's per-example training loss (--loss in --loss_dtype)."""
  return in_dtype(LOSSES[config.loss], None if config.loss_dtype ==
                  "precision" else config.loss_dtype)


def correct(logits_BxV: jax.Array, labels_B: jax.Array) -> jax.Array:
  """1.0 where the arg-max class is the label, else 0.0: [B]."""
  return (jnp.argmax(logits_BxV, axis=-1) == labels_B).astype(jnp.float32)
