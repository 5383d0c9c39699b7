"""Evaluation measures what is asked, once.

Full batch: an evaluation's train fields are the step's own forward pass on
the same parameters (--train_metrics_from_step, the default), and its forward
pass covers the validation rows only. --eval_sets=val measures the
validation rows alone (Grokfast's code does).
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import grokjax as gj
from grokjax.objective import evaluate, evaluate_val
from grokjax.tasks import make_split

CONFIG = gj.Config(task="x+y", p=11, model="transformer", depth=1, d_model=16,
                   num_heads=2, d_mlp=32, steps=60, eval_every=10,
                   chunk_steps=30, seed=(0, 1), train_fraction=(0.3, 0.6))
TRAIN = ("train_loss", "train_acc", "train_zero_loss")


def test_eval_train_fields_are_the_steps_own_forward_pass():
  """Same compiled program: the eval record's train loss and accuracy at an
  eval step are, bit for bit, the step record's at that step."""
  history = gj.sweep(CONFIG, log=None).history
  at = history["eval_step"][:-1]  # the final eval has no step after it
  for field in ("train_loss", "train_acc"):
    np.testing.assert_array_equal(history[field][:, :-1],
                                  history[f"step_{field}"][:, at])
  assert np.isfinite(history["train_zero_loss"]).all()


@pytest.mark.slow  # two float64 sweeps; the default run keeps the bitwise one
def test_train_metrics_from_the_step_equal_a_second_forward_pass():
  """In float64 the two ways of measuring agree to rounding: the same rows
  and parameters, summed in another order (measured here: every history
  field and parameter equal; bound 1e-12 relative, as on another CPU the
  two programs may round apart)."""
  with jax.enable_x64(True):
    config = CONFIG.replace(precision="float64", loss_dtype="float64")
    a = gj.sweep(config, log=None)
    b = gj.sweep(config.replace(train_metrics_from_step=False), log=None)
  for key, value in a.history.items():
    if key.endswith("_acc") or key.endswith("zero_loss") or key.endswith(
        "_step"):
      np.testing.assert_array_equal(value, b.history[key], err_msg=key)
    else:
      np.testing.assert_allclose(value, b.history[key], rtol=1e-12, atol=0,
                                 err_msg=key)
  for x, y in zip(jax.tree.leaves(a.state.params),
                  jax.tree.leaves(b.state.params)):
    np.testing.assert_allclose(x, y, rtol=0, atol=1e-12)


@pytest.mark.parametrize("batch_size", [
    0, pytest.param(16, marks=pytest.mark.slow)])
def test_eval_sets_val_measures_the_validation_rows_only(batch_size):
  with jax.enable_x64(True):
    config = CONFIG.replace(precision="float64", loss_dtype="float64",
                            batch_size=batch_size)
    both = gj.sweep(config, log=None)
    val = gj.sweep(config.replace(eval_sets="val"), log=None)
  for key in TRAIN:
    assert np.isnan(val.history[key]).all(), key
  np.testing.assert_array_equal(val.history["val_acc"],
                                both.history["val_acc"])
  np.testing.assert_allclose(val.history["val_loss"], both.history["val_loss"],
                             rtol=1e-12)
  # The per-step batch records are still there; memorization is not judged.
  np.testing.assert_array_equal(val.history["step_train_acc"],
                                both.history["step_train_acc"])
  assert all(np.isnan(m["t_mem"]) and m["phase"] == "unmeasured"
             for m in val.summary)


def test_evaluate_val_is_the_mean_over_the_validation_rows():
  """The formula, in numpy: mean cross-entropy and accuracy over the rows
  not trained on; padded slots (val_rows above the count) weigh nothing."""
  n, num_classes = 12, 5
  rng = np.random.default_rng(0)
  logits = rng.normal(size=(n, num_classes)).astype(np.float32)
  labels = rng.integers(0, num_classes, n).astype(np.int32)
  split = make_split(jax.random.key(3), jnp.int32(5), n, 5)
  data = gj.train.Data(jnp.arange(n)[:, None], jnp.asarray(labels),
                       jnp.zeros(1, bool))
  logits_of = lambda _, x: jnp.asarray(logits)[x[:, 0]]
  is_val = np.asarray(split.is_val)
  assert is_val.sum() == 7
  z = logits[is_val] - logits[is_val].max(axis=1, keepdims=True)
  ce = np.log(np.exp(z).sum(axis=1)) - z[np.arange(7), labels[is_val]]
  acc = np.mean(logits[is_val].argmax(axis=1) == labels[is_val])
  for val_rows in (7, 12):
    record = evaluate_val(logits_of, {}, split, data,
                          gj.optim.LOSSES["cross_entropy"], val_rows)
    np.testing.assert_allclose(record.val_loss, ce.mean(), rtol=1e-6)
    assert float(record.val_acc) == np.float32(acc)
    assert all(np.isnan(getattr(record, k)) for k in TRAIN)
  full = evaluate(logits_of, {}, split, data)
  np.testing.assert_allclose(record.val_loss, full.val_loss, rtol=1e-6)


def test_eval_settings_are_checked_and_old_runs_keep_their_behaviour():
  with pytest.raises(gj.ConfigError, match="--eval_sets=train: choose one"):
    CONFIG.replace(eval_sets="train").validate()
  # A config.json from before the setting existed evaluated the train rows.
  stored = CONFIG.to_dict()
  del stored["train_metrics_from_step"]
  assert not gj.Config.from_dict(stored).train_metrics_from_step
  assert gj.Config.from_dict(CONFIG.to_dict()) == CONFIG
