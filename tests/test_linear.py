"""Linear grokking tasks (Notsawo et al. 2025): problems, the model, the regression path, the 1/(alpha*beta) law."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import grokjax as gj
from grokjax.models import LinearModel
from grokjax.tasks import LinearTask

SPARSE = dict(task="sparse_recovery", model="linear", optimizer="sgd",
              momentum=0.0, warmup_steps=0, weight_decay=0.0,
              regularizer="l1", reg_mask="all", init_scale=1e-6,
              eval_schedule="log", record_every=0)


def test_sparse_problem_matches_its_definition():
  task = LinearTask("sparse_recovery", 100, 5)
  p = jax.jit(task.sample, static_argnums=2)(jax.random.key(3), 30, 40)
  assert p.design.shape == (40, 100) and p.target.shape == (100,)
  assert int(jnp.sum(p.target != 0)) == 5
  np.testing.assert_array_equal(p.weight, np.arange(40) < 30)
  np.testing.assert_allclose(p.y, p.design @ p.target, rtol=1e-6)
  # X entries ~ N(0, 1/N) for N = 30 measurements: 4000 draws, variance
  # within 4 standard errors (sd of a sample variance ~ var * sqrt(2 / 4000)).
  var = float(jnp.var(p.design))
  assert abs(var * 30 - 1) < 4 * np.sqrt(2 / 4000)
  # The same data seed with another sweep's max N: the same problem.
  q = task.sample(jax.random.key(3), 30, 30)
  np.testing.assert_allclose(q.design, p.design[:30], rtol=1e-6)  # jit vs not
  np.testing.assert_allclose(q.target, p.target, rtol=1e-6)


def test_completion_problem_is_low_rank_and_observes_distinct_entries():
  task = LinearTask("matrix_completion", 10, 2)
  p = task.sample(jax.random.key(0), 80, 90)
  assert np.linalg.matrix_rank(np.asarray(p.target, np.float64), tol=1e-4) == 2
  assert len(np.unique(np.asarray(p.design))) == 90  # no entry twice
  np.testing.assert_array_equal(p.y, p.target.reshape(-1)[p.design])
  a = jnp.arange(100.0).reshape(10, 10)
  np.testing.assert_array_equal(p.measure(a), np.asarray(p.design, np.float32))


def test_factorized_model_is_the_product_of_its_factors():
  model = LinearModel(shape=(6, 6), depth=3)
  params = model.init(jax.random.key(0))["params"]
  assert sorted(params) == ["w_0", "w_1", "w_2"]
  np.testing.assert_allclose(
      model.apply({"params": params}),
      params["w_2"] @ (params["w_1"] @ params["w_0"]), rtol=1e-5, atol=1e-6)
  vector = LinearModel(shape=(7,))
  assert vector.apply(vector.init(jax.random.key(0))).shape == (7,)


@pytest.mark.parametrize("change, message", [
    (dict(model="mlp"), "--model=mlp"),
    (dict(task="x+y"), "--model=linear: --task=x+y has table inputs"),
    (dict(reg_mask="not_biases"), "--reg_mask=not_biases"),
    (dict(regularizer="nuclear"), "--regularizer=nuclear"),
    (dict(batch_size=8), "--batch_size=8"),
    (dict(linear_k=101), "--linear_k=101"),
    (dict(linear_depth=2), "--linear_depth=2"),
    (dict(loss="mse"), "--loss=mse"),
    (dict(regression_error="l7"), "--regression_error=l7"),
    (dict(gen_error=0.0), "--gen_error=0.0"),
])
def test_bad_linear_settings_are_refused_naming_the_flag(change, message):
  with pytest.raises(gj.ConfigError, match=message.replace("+", r"\+")):
    gj.Config(**{**SPARSE, **change}).validate()


def test_float64_needs_64_bit_jax():
  assert not jax.config.jax_enable_x64
  with pytest.raises(gj.ConfigError, match="--precision=float64"):
    gj.sweep(gj.Config(**SPARSE, precision="float64", steps=10), log=None)


def test_subgradient_descent_without_regularizer_stays_at_the_least_norm_fit():
  """beta = 0: GD from ~0 converges to the minimum-norm interpolant, which fits
  (train error -> 0) but does not recover a* (N < n): memorization only."""
  config = gj.Config(**{**SPARSE, "regularizer": "none", "reg_mask": "all"},
                     learning_rate=0.1, train_fraction=0.3, steps=3000,
                     eval_every=50, seed=(0,))
  result = gj.sweep(config, log=None)
  row = result.summary[0]
  assert row["t_mem"] < 1000 and np.isnan(row["t_gen"])
  assert row["phase"] == "memorization"
  # The least-norm solution X^+ y, computed directly.
  task = config.build_task()
  p = task.sample(jax.random.fold_in(jax.random.key(0), 1), 30, 30)
  x, y = np.asarray(p.design, np.float64), np.asarray(p.y, np.float64)
  a_min = np.linalg.pinv(x) @ y
  a = np.asarray(result.state.params["a"][0], np.float64)
  np.testing.assert_allclose(a, a_min, atol=2e-4)
  expected = np.linalg.norm(a_min - p.target) / np.linalg.norm(p.target)
  assert row["final_val_error"] == pytest.approx(expected, rel=1e-3)


def test_sparse_recovery_groks_with_delay_scaling_as_one_over_alpha_beta():
  """Notsawo et al. 2025: train error <= 1e-3 within ~1e3 steps; test error
  <= 1e-3 only Theta(1/(alpha*beta)) steps later. Over alpha*beta in
  [1.25e-7, 2e-6] the log-log slope of the delay is -1.0 +- 0.1 (their band).
  (beta <= 1e-5 keeps the lasso bias, ~beta, below the 1e-3 test threshold.)"""
  config = gj.Config(**SPARSE, train_fraction=0.3, learning_rate=(0.05, 0.2),
                     reg_strength=(2.5e-6, 1e-5), seed=(1, 2),
                     steps=1_200_000, eval_every=400, chunk_steps=100_000,
                     checkpoint_every=0, stop_when_generalized=True)
  result = gj.sweep(config, log=None)
  rows = result.summary
  assert all(r["t_mem"] <= 1000 for r in rows)
  assert all(r["phase"] == "grokking" for r in rows), [
      (r["learning_rate"], r["reg_strength"], r["final_val_error"])
      for r in rows]
  x = gj.analysis.column_product(rows, ["learning_rate", "reg_strength"])
  delay = np.array([r["delay"] for r in rows])
  assert delay.min() > 20 * max(r["t_mem"] for r in rows)
  fit = gj.analysis.bootstrap_loglog(x, delay, [r["seed"] for r in rows])
  assert -1.1 <= fit["slope"] <= -0.9, fit
