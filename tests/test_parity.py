"""Sparse parity and label noise: labels, corruption, and what training sees."""

import json
import os

import numpy as np
import pytest

import grokjax as gj
from grokjax.config import ConfigError
from grokjax.tasks import base as base_lib
from grokjax.tasks import parity as parity_lib


def test_parity_labels_are_the_xor_of_the_first_k_bits():
  task = parity_lib.parity_task(n=10, k=3, num_samples=500, seed=1)
  assert task.inputs.shape == (500, 11) and task.num_classes == 2
  bits = task.inputs[:, :10]
  assert set(np.unique(bits)) == {0, 1} and (task.inputs[:, 10] == 2).all()
  np.testing.assert_array_equal(task.labels, np.bitwise_xor.reduce(
      bits[:, :3], axis=1))
  # The noise bits say nothing about the label: each agrees with it half
  # the time (500 samples: within 5 standard deviations of 0.5).
  agree = (bits[:, 3:] == task.labels[:, None]).mean(0)
  assert np.all(np.abs(agree - 0.5) < 5 * 0.5 / np.sqrt(500))
  # Deterministic in the seed; another seed, other strings.
  again = parity_lib.parity_task(n=10, k=3, num_samples=500, seed=1)
  np.testing.assert_array_equal(again.inputs, task.inputs)
  other = parity_lib.parity_task(n=10, k=3, num_samples=500, seed=2)
  assert not np.array_equal(other.inputs, task.inputs)


def test_label_noise_corrupts_exactly_the_fraction_to_wrong_classes():
  task = gj.make_task("x+y", 13)
  noisy, mask = base_lib.corrupt_labels(task.labels, 13, 0.2, seed=0)
  assert mask.sum() == round(0.2 * 169)
  assert (noisy[mask] != task.labels[mask]).all()
  np.testing.assert_array_equal(noisy[~mask], task.labels[~mask])
  assert ((0 <= noisy) & (noisy < 13)).all()


def test_a_noisy_run_scores_train_rows_on_noisy_labels_and_records_them(tmp_path):
  config = gj.Config(task="parity", parity_n=12, parity_k=3, num_samples=600,
                     model="mlp", mlp_hidden=(64,), d_model=8, steps=300,
                     seed=(0, 1), train_fraction=(0.5,),
                     learning_rate=(1e-2,), eval_every=50, label_noise=0.1)
  result = gj.sweep(config, workdir=str(tmp_path), log=None)
  record = json.load(open(os.path.join(tmp_path, "config.json")))
  noise = record["label_noise"]
  assert noise["corrupted_rows"] == 60
  shares = np.array(noise["corrupted_train_fraction"])
  assert shares.shape == (2,) and np.all(np.abs(shares - 0.1) < 0.05)
  for r in result.summary:
    # The 12-bit parity is memorized, the 10% wrong labels included...
    assert r["final_train_acc"] >= 0.95
    # ... and the true labels of held-out strings are predicted far better
    # than chance, but not perfectly: the noise costs generalization.
    assert 0.6 < r["final_val_acc"] < 1.0


def test_bad_parity_and_noise_settings_name_the_flag():
  with pytest.raises(ConfigError, match="--parity_k=5"):
    gj.Config(task="parity", parity_n=4, parity_k=5).validate()
  with pytest.raises(ConfigError, match="--label_noise=1.5"):
    gj.Config(label_noise=1.5).validate()
