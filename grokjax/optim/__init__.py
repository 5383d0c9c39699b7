"""Optimizers and losses (regularizers and gradient filters come as Optax transforms)."""

from grokjax.optim.losses import correct, cross_entropy, weighted_mean
from grokjax.optim.optimizers import make_optimizer, warmup_schedule

__all__ = ["correct", "cross_entropy", "weighted_mean", "make_optimizer",
           "warmup_schedule"]
