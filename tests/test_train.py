"""The vmapped chunked trainer: ensemble = single runs, one trace, isolation, schedules."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import grokjax as gj
from grokjax.train import state as state_lib
from grokjax.train import step as step_lib

TINY = gj.Config(task="x+y", p=11, model="transformer", depth=1, d_model=16,
                 num_heads=2, d_mlp=32, layer_norm=False, steps=60,
                 eval_every=20, chunk_steps=25, learning_rate=(3e-3,),
                 weight_decay=(1.0,))


def _run(config):
  return gj.sweep(config, workdir=None, log=None)


@pytest.mark.parametrize("batch_size", [0, pytest.param(16, marks=pytest.mark.slow)])
def test_member_i_of_an_ensemble_equals_the_single_run_i(batch_size):
  config = TINY.replace(seed=(0, 1), train_fraction=(0.4, 0.7),
                        learning_rate=(1e-3, 3e-3), batch_size=batch_size)
  ensemble = _run(config)
  assert len(ensemble.members) == 8
  for i in (0, 3, 6):
    m = ensemble.members[i]
    single = _run(config.replace(
        seed=(m["seed"],), train_fraction=(m["train_fraction"],),
        learning_rate=(m["learning_rate"],)))
    for key in ("step_train_loss", "step_train_acc", "val_loss", "val_acc",
                "param_norm"):
      np.testing.assert_allclose(ensemble.history[key][i],
                                 single.history[key][0], rtol=2e-4, atol=2e-5,
                                 err_msg=key)


def test_histories_have_the_documented_shapes():
  result = _run(TINY.replace(seed=(0, 1, 2)))
  h = result.history
  assert h["step_train_loss"].shape == h["step_train_acc"].shape == (3, 60)
  np.testing.assert_array_equal(h["eval_step"], [0, 20, 40, 60])
  for key in ("train_loss", "train_acc", "val_loss", "val_acc", "param_norm"):
    assert h[key].shape == (3, 4) and np.isfinite(h[key]).all()
  # The first per-step loss is the loss of the initial parameters on the train rows.
  np.testing.assert_allclose(h["step_train_loss"][:, 0], h["train_loss"][:, 0],
                             rtol=1e-5)


def test_log_eval_schedule():
  steps = step_lib.eval_schedule(TINY.replace(steps=1000, eval_every=4,
                                              eval_schedule="log"))
  np.testing.assert_array_equal(steps, [0, 1, 10, 100, 1000])


def _chunk_inputs(config):
  run = gj.io.StoredRun.from_config(config)
  model = gj.models.make_model(config, run.task)
  state, split = state_lib.init_group(model, config, run.task,
                                      run.max_n_train, run.hypers)
  inputs, labels = run.task.device_arrays()
  data = step_lib.Data(inputs, labels, jnp.zeros(100, bool).at[::10].set(True))
  return model, jax.device_put(run.hypers), state, split, data


def test_chunk_traces_once_across_chunks_and_swept_values():
  chex.clear_trace_counter()
  config = TINY.replace(seed=(0, 1))
  model, hypers, state, split, data = _chunk_inputs(config)
  chunk = chex.assert_max_traces(step_lib.make_chunk_fn(model.apply, config, 20),
                                 n=1)
  fn = jax.jit(jax.vmap(chunk, in_axes=(0, 0, 0, None, None, None)))
  for start, lr in ((0, 1e-3), (20, 1e-2), (40, 3e-1)):  # new values, same program
    hypers = hypers._replace(learning_rate=jnp.full(2, lr, jnp.float32))
    state, (rec, ev) = fn(state, hypers, split, data, jnp.int32(start),
                          jnp.int32(start + 20))
  assert rec.train_loss.shape == (2, 20) and ev.val_acc.shape == (2, 20)
  # Evals happen exactly where scheduled (every 10th step here).
  assert np.isfinite(ev.val_acc[:, ::10]).all()
  assert np.isnan(ev.val_acc[:, 1]).all()


def test_a_diverging_member_is_frozen_and_the_others_are_unchanged():
  base = TINY.replace(optimizer="sgd", warmup_steps=0, weight_decay=(0.0,),
                      learning_rate=(0.5,))
  # Same shapes (E=2), so the healthy member runs the same kernels: bitwise equal.
  healthy = _run(base.replace(learning_rate=(0.5, 0.4)))
  mixed = _run(base.replace(learning_rate=(0.5, 1e30)))
  for key in ("step_train_loss", "step_train_acc", "val_loss", "param_norm"):
    np.testing.assert_array_equal(mixed.history[key][0],
                                  healthy.history[key][0], err_msg=key)
  row = mixed.summary[1]
  assert row["diverged"] and 0 <= row["diverged_step"] < 5
  assert np.isnan(mixed.history["step_train_loss"][1, row["diverged_step"]:]).all()
  assert np.isfinite(jax.tree.leaves(jax.tree.map(
      lambda x: x[1], mixed.state.params))[0]).all()  # frozen, not NaN
  assert not mixed.summary[0]["diverged"]


# In the slow run (pytest -m slow, which .ci/run also runs): keeps the default run under 10 minutes.
@pytest.mark.slow
def test_stop_when_generalized_stops_at_a_chunk_boundary():
  config = TINY.replace(train_fraction=(1.0,), steps=400, chunk_steps=50,
                        learning_rate=(1e-2,), gen_threshold=0.01,
                        stop_when_generalized=True)
  # With every row in training the validation set is empty: never generalizes.
  result = _run(config)
  assert result.history["step_train_loss"].shape[1] == 400
  config = config.replace(train_fraction=(0.5,))  # val acc >= 1% almost at once
  result = _run(config)
  assert result.history["step_train_loss"].shape[1] == 50
  assert result.history["eval_step"][-1] == 50


# In the slow run (pytest -m slow, which .ci/run also runs): keeps the default run under 10 minutes.
@pytest.mark.slow
def test_record_every_keeps_every_kth_step_record():
  full = _run(TINY.replace(seed=(0, 1)))
  thin = _run(TINY.replace(seed=(0, 1), record_every=7))
  np.testing.assert_array_equal(thin.history["record_step"],
                                np.arange(0, 60, 7))
  np.testing.assert_array_equal(full.history["record_step"], np.arange(60))
  np.testing.assert_allclose(thin.history["step_train_loss"],
                             full.history["step_train_loss"][:, ::7], rtol=1e-6)
  none = _run(TINY.replace(seed=(0,), record_every=0))
  assert none.history["step_train_loss"].shape == (1, 0)
  np.testing.assert_array_equal(none.history["val_acc"],
                                full.history["val_acc"][:1])


def test_epoch_order_visits_each_train_row_once_per_epoch_with_a_short_last_batch():
  """--data_order=epoch: 7 train rows, B=3: batches of 3, 3, 1 (the last one's
  other slots weighted 0), together each train row exactly once; the next
  epoch is a new permutation. Non-train slots are never drawn."""
  from grokjax.tasks.splits import Split  # pylint: disable=import-outside-toplevel
  config = gj.Config(task="x+y", p=11, batch_size=3, data_order="epoch")
  weight = jnp.array([1.0] * 7 + [0.0] * 3)
  split = Split(train_idx=jnp.arange(10) + 100, train_weight=weight,
                is_train=jnp.zeros(20, bool), table=jnp.int32(0),
                is_val=jnp.zeros(20, bool))
  key = jax.random.key(5)
  epochs = []
  for epoch in range(2):
    rows, counts = [], []
    for j in range(3):
      idx, w = gj.objective.batch_rows(config, split, key, 20,
                                       jnp.int32(3 * epoch + j))
      assert idx.shape == (3,) and w.shape == (3,)
      rows += [int(i) for i, wi in zip(idx, w) if wi > 0]
      counts.append(int((w > 0).sum()))
    assert counts == [3, 3, 1]
    assert sorted(rows) == list(range(100, 107))  # each train row once
    epochs.append(rows)
  assert epochs[0] != epochs[1]
  # the default order draws B distinct train rows afresh at every step
  config = config.replace(data_order="random")
  idx, w = gj.objective.batch_rows(config, split, key, 20, jnp.int32(2))
  assert int((w > 0).sum()) == 3 and len(set(np.asarray(idx).tolist())) == 3
