"""Optimizers whose strengths are a member's swept values (traced scalars under vmap).

`make_optimizer(config, hypers)` is called inside the vmapped step with the
member's own `learning_rate`, `weight_decay` and `reg_strength`, so every member of a sweep gets
its own optimizer from one compiled program; the state's structure never
depends on those values.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax

from grokjax.config import Config
from grokjax.optim import regularizers as reg


def warmup_schedule(peak: jax.Array, warmup_steps: int) -> optax.Schedule:
  """Linear warmup from 0 to `peak` over `warmup_steps` updates, then constant.

  Same as PyTorch's ``LambdaLR(lambda s: min(s / warmup, 1))`` used by Power et al.
  2022 and Nanda et al. 2023 (the first update has learning rate 0).
  """
  if warmup_steps == 0:
    return lambda count: peak
  return lambda count: peak * jnp.minimum(count / warmup_steps, 1.0)


def base_optimizer(config: Config, learning_rate: jax.Array,
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


def _reg_mask(config: Config, matrices_only: bool):
  def mask(params):
    def keep(x):
      ndim = jnp.ndim(x)
      chosen = {"all": True, "not_biases": ndim >= 2,
                "matrices": ndim == 2}[config.reg_mask]
      return chosen and (ndim == 2 or not matrices_only)
    return jax.tree.map(keep, params)
  return mask


def make_optimizer(config: Config, hypers) -> optax.GradientTransformation:
  """The member's whole chain, from its swept values (traced under vmap).

  In order: perp-grad, the Grokfast filter, the gradient side of
  --regularizer, gradient noise, the base optimizer (with --weight_decay), the
  proximal step of --regularizer, weight noise, the fixed-norm projection.
  `hypers` needs learning_rate, weight_decay, reg_strength and seed (any object
  with those attributes; noise keys are ``fold_in(key(seed), 2)``).
  """
  lr = warmup_schedule(hypers.learning_rate, config.warmup_steps)
  beta = hypers.reg_strength
  mask = _reg_mask(config, config.regularizer.startswith("nuclear"))
  noise_key = lambda i: jax.random.fold_in(jax.random.fold_in(
      jax.random.key(hypers.seed), 2), i)
  chain = []
  if config.perp_grad:
    chain.append(reg.perp_grad())
  if config.grad_filter == "ema":
    chain.append(reg.grokfast_ema(config.grokfast_alpha, config.grokfast_lamb))
  elif config.grad_filter == "ma":
    chain.append(reg.grokfast_ma(config.grokfast_window, config.grokfast_lamb))
  gradient_side = {"l1": lambda: reg.l1_subgradient(beta, mask),
                   "l2": lambda: reg.l2_penalty(beta, False, mask),
                   "l2_init": lambda: reg.l2_penalty(beta, True, mask),
                   "nuclear": lambda: reg.nuclear_subgradient(beta, mask)}
  if config.regularizer in gradient_side:
    chain.append(gradient_side[config.regularizer]())
  if config.gradient_noise:
    chain.append(reg.gradient_noise(config.gradient_noise, noise_key(0)))
  chain.append(base_optimizer(config, hypers.learning_rate,
                              hypers.weight_decay))
  if config.regularizer == "l1_prox":
    chain.append(reg.l1_proximal(beta, lr, mask))
  elif config.regularizer == "nuclear_prox":
    chain.append(reg.nuclear_proximal(beta, lr, mask))
  if config.weight_noise:
    chain.append(reg.weight_noise(config.weight_noise, noise_key(1)))
  if config.fixed_norm:
    chain.append(reg.project_to_norm())
  return chain[0] if len(chain) == 1 else optax.chain(*chain)
