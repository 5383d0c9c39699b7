"""Optimizers and losses (regularizers and gradient filters come as Optax transforms)."""

from grokjax.optim.losses import (LOSSES, correct, cross_entropy, mse_one_hot,
                                  stablemax_cross_entropy, weighted_mean)
from grokjax.optim import regularizers
from grokjax.optim.optimizers import (base_optimizer, make_optimizer,
                                      warmup_schedule)
from grokjax.optim.regularizers import matrices, not_biases

__all__ = ["LOSSES", "mse_one_hot", "stablemax_cross_entropy", "regularizers", "matrices", "not_biases", "correct", "cross_entropy", "weighted_mean", "make_optimizer", "base_optimizer",
           "warmup_schedule"]
