"""Optimizers, regularizers and gradient tricks as Optax transforms, and losses.

`chain.TRANSFORMS` is the table of regularizers and tricks (where each sits
in the one `optax.chain`); `losses.LOSSES` the training losses by name.
"""

from grokjax.optim import chain, regularizers
from grokjax.optim.chain import (OPTIMIZERS, TRANSFORMS, base_optimizer,
                                 make_optimizer, warmup_schedule)
from grokjax.optim.losses import (LOSSES, correct, cross_entropy, in_dtype,
                                  loss_of, mse_one_hot,
                                  stablemax_cross_entropy, weighted_mean)
from grokjax.optim.regularizers import matrices, not_biases

__all__ = ["LOSSES", "OPTIMIZERS", "TRANSFORMS", "chain", "mse_one_hot",
           "stablemax_cross_entropy", "regularizers", "matrices",
           "not_biases", "correct", "cross_entropy", "weighted_mean",
           "make_optimizer", "base_optimizer", "warmup_schedule", "in_dtype",
           "loss_of"]
