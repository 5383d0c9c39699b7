"""Test settings: implicit rank promotion is an error (as in nanodo's tests)."""

import jax

jax.config.update("jax_numpy_rank_promotion", "raise")
