"""Split masks: exact counts, disjoint and covering, reproducible, seed-dependent."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from grokjax.tasks import make_split, max_num_train, num_train


def _split(seed, fraction, n=97 * 96, max_frac=None):
  max_n = num_train(max_frac or fraction, n)
  return jax.device_get(make_split(jax.random.key(seed),
                                   jnp.int32(num_train(fraction, n)), n, max_n))


@pytest.mark.parametrize("fraction", [0.01, 0.3, 0.5, 0.999, 1.0])
def test_exact_counts_disjoint_and_covering(fraction):
  n = 97 * 96
  split = _split(0, fraction)
  n_train = round(fraction * n)
  assert split.is_train.sum() == n_train
  train_rows = split.train_idx[split.train_weight > 0]
  assert len(train_rows) == n_train == len(set(train_rows.tolist()))
  assert split.is_train[train_rows].all()
  val_rows = np.where(~split.is_train)[0]
  assert len(val_rows) + n_train == n  # validation = every non-train row
  assert not set(val_rows) & set(train_rows.tolist())


def test_padding_slots_carry_zero_weight():
  split = _split(3, 0.3, max_frac=0.5)
  n = 97 * 96
  assert split.train_idx.shape == (num_train(0.5, n),)
  assert split.train_weight.sum() == num_train(0.3, n)
  assert np.all(split.train_weight[: num_train(0.3, n)] == 1)


def test_reproducible_from_the_data_seed_and_different_across_seeds():
  a, b, c = _split(7, 0.4), _split(7, 0.4), _split(8, 0.4)
  np.testing.assert_array_equal(a.is_train, b.is_train)
  assert (a.is_train != c.is_train).sum() > 1000


def test_a_smaller_fraction_is_a_prefix_of_the_same_permutation():
  small, large = _split(5, 0.2), _split(5, 0.6)
  assert np.all(large.is_train[small.is_train])


def test_max_num_train():
  assert max_num_train([0.3, 0.5], 100) == 50
  assert num_train(0.305, 1000) == 305
