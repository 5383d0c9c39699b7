"""Optimizers whose strengths are a member's swept values (traced scalars under vmap).

`make_optimizer(config, hypers)` is called inside the vmapped step with the
member's own `learning_rate` and `weight_decay`, so every member of a sweep gets
its own optimizer from one compiled program; the state's structure never
depends on those values.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax

from grokjax.config import Config


def warmup_schedule(peak: jax.Array, warmup_steps: int) -> optax.Schedule:
  """Linear warmup from 0 to `peak` over `warmup_steps` updates, then constant.

  Same as PyTorch's ``LambdaLR(lambda s: min(s / warmup, 1))`` used by Power et al.
  2022 and Nanda et al. 2023 (the first update has learning rate 0).
  """
  if warmup_steps == 0:
    return lambda count: peak
  return lambda count: peak * jnp.minimum(count / warmup_steps, 1.0)


def make_optimizer(config: Config, learning_rate: jax.Array,
                   weight_decay: jax.Array) -> optax.GradientTransformation:
  """AdamW (decoupled decay lr*wd*w), Adam or SGD (coupled L2: wd*w added to the gradient)."""
  lr = warmup_schedule(learning_rate, config.warmup_steps)
  if config.optimizer == "adamw":
    return optax.adamw(lr, b1=config.beta1, b2=config.beta2, eps=config.eps,
                       weight_decay=weight_decay)
  if config.optimizer == "adam":
    return optax.chain(optax.add_decayed_weights(weight_decay),
                       optax.adam(lr, b1=config.beta1, b2=config.beta2,
                                  eps=config.eps))
  momentum = config.momentum or None
  return optax.chain(optax.add_decayed_weights(weight_decay),
                     optax.sgd(lr, momentum=momentum))
