"""Losses as pure functions of logits [B, V] and integer labels [B], masked by weights [B].

Masked means are sum(w * l) / sum(w), so a member's train fraction never changes a shape.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax


def weighted_mean(values_B: jax.Array, weights_B: jax.Array) -> jax.Array:
  """sum(w * v) / sum(w); NaN when every weight is 0 (e.g. an empty validation set)."""
  total = jnp.sum(weights_B)
  return jnp.where(total > 0, jnp.sum(values_B * weights_B) /
                   jnp.maximum(total, 1e-30), jnp.nan)


def cross_entropy(logits_BxV: jax.Array, labels_B: jax.Array) -> jax.Array:
  """Per-example softmax cross-entropy [B], computed in float32."""
  return optax.softmax_cross_entropy_with_integer_labels(
      logits_BxV.astype(jnp.float32), labels_B)


def correct(logits_BxV: jax.Array, labels_B: jax.Array) -> jax.Array:
  """1.0 where the arg-max class is the label, else 0.0: [B]."""
  return (jnp.argmax(logits_BxV, axis=-1) == labels_B).astype(jnp.float32)
