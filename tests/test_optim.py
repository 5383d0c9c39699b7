"""Optimizers built from traced per-member values; warmup; masked losses."""

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import grokjax as gj
from grokjax.optim import (base_optimizer, chain, make_optimizer,
                           warmup_schedule, weighted_mean)


def test_warmup_matches_pytorch_lambda_lr():
  sched = warmup_schedule(jnp.float32(1e-3), 10)
  np.testing.assert_allclose([sched(c) for c in (0, 1, 5, 10, 50)],
                             [0, 1e-4, 5e-4, 1e-3, 1e-3], rtol=1e-6)
  assert warmup_schedule(jnp.float32(0.1), 0)(0) == np.float32(0.1)


def _one_update(config, lr, wd, grad, params, count=5):
  tx = base_optimizer(config.replace(warmup_steps=0), jnp.float32(lr),
                      jnp.float32(wd))
  state = tx.init(params)
  for _ in range(count):
    updates, state = tx.update(grad, state, params)
  return updates


def test_adamw_decay_is_decoupled_lr_times_wd():
  params = {"w": jnp.array([2.0, -4.0])}
  zero = {"w": jnp.zeros(2)}
  updates = _one_update(gj.Config(optimizer="adamw"), 0.1, 0.5, zero, params)
  np.testing.assert_allclose(updates["w"], -0.1 * 0.5 * params["w"], rtol=1e-6)


def test_adam_and_sgd_weight_decay_are_coupled_l2():
  params = {"w": jnp.array([2.0, -4.0])}
  zero = {"w": jnp.zeros(2)}
  # Adam normalizes the L2 gradient wd * w: the first step is -lr * sign(w).
  adam = _one_update(gj.Config(optimizer="adam"), 0.1, 0.5, zero, params, 1)
  np.testing.assert_allclose(adam["w"], [-0.1, 0.1], rtol=1e-5)
  sgd = _one_update(gj.Config(optimizer="sgd"), 0.1, 0.5, zero, params, 1)
  np.testing.assert_allclose(sgd["w"], -0.1 * 0.5 * params["w"], rtol=1e-6)


def test_one_optimizer_definition_serves_vmapped_members():
  params = {"w": jnp.ones((3, 2))}
  grads = {"w": jnp.zeros((3, 2))}
  lrs, wds = jnp.array([0.1, 0.2, 0.3]), jnp.array([1.0, 0.5, 0.0])

  def member(lr, wd, p, g):
    tx = base_optimizer(gj.Config(warmup_steps=0), lr, wd)
    return tx.update(g, tx.init(p), p)[0]

  updates = jax.vmap(member)(lrs, wds, params, grads)
  np.testing.assert_allclose(updates["w"][:, 0], -lrs * wds, rtol=1e-6)


def test_weighted_mean_ignores_zero_weights_and_is_nan_when_empty():
  v = jnp.array([1.0, 2.0, 100.0])
  assert weighted_mean(v, jnp.array([1.0, 1.0, 0.0])) == 1.5
  assert jnp.isnan(weighted_mean(v, jnp.zeros(3)))


class _Member(NamedTuple):
  learning_rate: jax.Array
  weight_decay: jax.Array
  reg_strength: jax.Array
  seed: jax.Array


def test_the_member_chain_adds_its_regularizer_with_its_own_strength():
  params = {"kernel": jnp.array([[2.0, -4.0], [0.5, 0.0]]),
            "bias": jnp.array([1.0, -1.0])}
  zero = jax.tree.map(jnp.zeros_like, params)
  config = gj.Config(optimizer="sgd", warmup_steps=0, regularizer="l1")
  betas = jnp.array([0.0, 0.1, 1.0])

  def member(beta):
    tx = make_optimizer(config, _Member(jnp.float32(0.5), jnp.float32(0.2),
                                        beta, jnp.int32(0)))
    return tx.update(zero, tx.init(params), params)[0]

  updates = jax.jit(jax.vmap(member))(betas)
  for i, beta in enumerate([0.0, 0.1, 1.0]):
    # SGD on wd/2 ||w||^2 + beta ||W||_1 (biases unpenalized by l1).
    np.testing.assert_allclose(
        updates["kernel"][i], -0.5 * (0.2 * params["kernel"] +
                                      beta * np.sign(params["kernel"])),
        rtol=1e-6)
    np.testing.assert_allclose(updates["bias"][i], -0.5 * 0.2 * params["bias"],
                               rtol=1e-6)


def test_proximal_l1_in_the_chain_zeroes_small_weights():
  params = {"kernel": jnp.array([[0.04, -4.0], [0.5, -0.01]])}
  zero = jax.tree.map(jnp.zeros_like, params)
  config = gj.Config(optimizer="sgd", warmup_steps=0, regularizer="l1_prox")
  tx = make_optimizer(config, _Member(jnp.float32(0.1), jnp.float32(0.0),
                                      jnp.float32(1.0), jnp.int32(0)))
  updates, _ = tx.update(zero, tx.init(params), params)
  new = params["kernel"] + updates["kernel"]
  np.testing.assert_allclose(new, [[0.0, -3.9], [0.4, 0.0]], atol=1e-6)


def test_stablemax_cross_entropy_closed_form_and_no_collapse():
  from grokjax.optim import stablemax_cross_entropy, cross_entropy  # pylint: disable=import-outside-toplevel
  logits = jnp.array([[2.0, -1.0, 0.0], [100.0, 0.0, 0.0]])
  labels = jnp.array([0, 0])
  s = np.array([[3.0, 0.5, 1.0], [101.0, 1.0, 1.0]])
  np.testing.assert_allclose(stablemax_cross_entropy(logits, labels),
                             -np.log(s[:, 0] / s.sum(1)), rtol=1e-6)
  # Softmax collapse: at a margin of 100 the float32 softmax loss is exactly
  # 0 (its gradient too); StableMax's is not.
  assert cross_entropy(logits, labels)[1] == 0.0
  assert stablemax_cross_entropy(logits, labels)[1] > 0.01
  grad = jax.grad(lambda x: stablemax_cross_entropy(x, labels).sum())(logits)
  assert np.isfinite(grad).all() and np.abs(grad[1]).sum() > 0


def test_mse_on_one_hot_targets_is_pytorch_mse_loss():
  from grokjax.optim import mse_one_hot  # pylint: disable=import-outside-toplevel
  logits = jnp.array([[0.5, 0.2, -0.1], [1.0, 0.0, 2.0]])
  labels = jnp.array([1, 2])
  onehot = np.eye(3)[np.asarray(labels)]
  expected = ((np.asarray(logits) - onehot) ** 2).mean()  # MSELoss(mean)
  np.testing.assert_allclose(weighted_mean(mse_one_hot(logits, labels),
                                           jnp.ones(2)), expected, rtol=1e-6)


def test_softmax_collapse_metric_counts_train_rows_with_exactly_zero_loss():
  from grokjax.train import step as step_lib  # pylint: disable=import-outside-toplevel
  from grokjax.tasks import Split  # pylint: disable=import-outside-toplevel
  labels = jnp.array([0, 1, 2, 0])
  margins = jnp.array([200.0, 200.0, 1.0, 200.0])  # rows 0, 1, 3 collapse
  logits_of = lambda variables, inputs: jax.nn.one_hot(
      labels, 3) * margins[:, None]
  data = step_lib.Data(jnp.zeros((4, 1), jnp.int32), labels, jnp.zeros(1, bool))
  is_train = jnp.array([True, True, True, False])
  split = Split(jnp.arange(3), jnp.ones(3), is_train, jnp.int32(0), ~is_train)
  record = step_lib.evaluate(logits_of, {}, split, data)
  np.testing.assert_allclose(record.train_zero_loss, 2 / 3)
  record = step_lib.evaluate(logits_of, {}, split, data,
                             gj.optim.stablemax_cross_entropy)
  assert record.train_zero_loss == 0.0


def test_softmax_collapse_is_counted_in_the_training_dtype():
  """Margin 12 over 96 other classes: the softmax sum is 1 + 5.9e-4, which is
  1 exactly in bfloat16 (spacing 2^-7 near 1) but not in float32, so the
  cross-entropy of that row is exactly 0 only in bfloat16 (Prieto et al. 2025)."""
  from grokjax.train import step as step_lib  # pylint: disable=import-outside-toplevel
  from grokjax.tasks import Split  # pylint: disable=import-outside-toplevel
  labels = jnp.array([0])
  data = step_lib.Data(jnp.zeros((1, 1), jnp.int32), labels, jnp.zeros(1, bool))
  split = Split(jnp.arange(1), jnp.ones(1), jnp.array([True]), jnp.int32(0),
                jnp.array([False]))
  zero_loss = {}
  for dtype in (jnp.float32, jnp.bfloat16):
    logits_of = lambda variables, inputs, dtype=dtype: (
        12.0 * jax.nn.one_hot(labels, 97)).astype(dtype)
    zero_loss[dtype] = float(step_lib.evaluate(logits_of, {}, split,
                                               data).train_zero_loss)
  assert zero_loss == {jnp.float32: 0.0, jnp.bfloat16: 1.0}


def test_a_float64_loss_keeps_the_correct_class_gradient_of_a_float32_model():
  """Prieto et al.'s --cross_entropy_dtype float64: margin 30 over 96 other
  classes. In float32 the softmax sum 1 + 96 e^-30 = 1 + 9e-12 is exactly 1,
  so the loss and the correct class's gradient p - 1 are exactly 0 (softmax
  collapse); computed in float64 they are 96 e^-30 / (1 + 96 e^-30) ~ 9e-12,
  and the gradient reaches the float32 logits as float32."""
  from grokjax.optim import cross_entropy, in_dtype  # pylint: disable=import-outside-toplevel
  logits = 30.0 * jax.nn.one_hot(jnp.array([0]), 97, dtype=jnp.float32)
  labels = jnp.array([0])
  rest = 96 * np.exp(-30.0)
  with jax.enable_x64(True):
    for fn, want_loss, want_grad in (
        (cross_entropy, 0.0, 0.0),
        (in_dtype(cross_entropy, "float64"), np.log1p(rest),
         -rest / (1 + rest))):
      loss, grad = jax.value_and_grad(lambda x: fn(x, labels).sum())(logits)
      assert grad.dtype == jnp.float32
      # exactly 0 in float32 (atol 0); in float64 log(1 + 9e-12) and
      # exp(-lse) - 1 are each rounded at 1 (spacing 2.2e-16, 2.5e-5 of
      # 9e-12), so a few roundings: 1e-3 (measured 2.3e-4)
      np.testing.assert_allclose(float(loss), want_loss, rtol=1e-3)
      np.testing.assert_allclose(float(grad[0, 0]), want_grad, rtol=1e-3)
    assert fn(logits, labels).dtype == jnp.float64


def test_loss_dtype_is_refused_where_it_cannot_act():
  with pytest.raises(gj.ConfigError, match="--loss_dtype=float128: choose"):
    gj.Config(loss_dtype="float128").validate()
  with pytest.raises(gj.ConfigError, match="--loss_dtype=float64: "
                     "--task=sparse_recovery"):
    gj.Config(task="sparse_recovery", model="linear",
              loss_dtype="float64").validate()
  assert not jax.config.jax_enable_x64  # the sweep needs 64-bit JAX on
  with pytest.raises(gj.ConfigError, match="--loss_dtype=float64: 64-bit"):
    gj.sweep(gj.Config(task="x+y", p=11, model="mlp", mlp_input="onehot",
                       mlp_hidden=(8,), steps=10, loss_dtype="float64"),
             log=None)


@pytest.mark.parametrize("precision", ["bfloat16", "float32"])
def test_precision_sets_the_dtype_of_parameters_and_optimizer_state(precision):
  config = gj.Config(task="x+y", p=11, model="mlp", d_model=8, mlp_hidden=(16,),
                     mlp_input="onehot", steps=20, eval_every=10,
                     precision=precision, optimizer="adamw")
  result = gj.sweep(config, log=None)
  dtype = jnp.dtype(precision)
  for leaf in jax.tree.leaves((result.state.params, result.state.opt_state)):
    if jnp.issubdtype(leaf.dtype, jnp.floating) and leaf.ndim > 1:
      assert leaf.dtype == dtype
  assert np.isfinite(result.history["step_train_loss"]).all()
  # bf16 trains too: the loss falls from its start.
  loss = result.history["train_loss"][0]
  assert loss[-1] < loss[0]


def test_optimizer_dtype_float64_keeps_adams_second_moment_from_flushing():
  """Adam on a constant gradient g: mu_hat = g and nu_hat = g^2 after any
  number of steps, so the update is -lr g / (|g| + eps) = -lr (1 - 1e-5)
  for g = 1e-20 and eps = 1e-25 (Prieto et al.'s). g^2 = 1e-40 is below
  float32's smallest normal (1.2e-38): XLA on CPU flushes it to 0, nu stays
  0 and the float32 update is -lr g / eps = -1e5 lr. With the optimizer in
  float64 (--optimizer_dtype=float64) the update is the formula's, and it
  reaches the float32 parameters as float32."""
  lr, g, eps = 0.01, 1e-20, 1e-25
  params = {"w": jnp.zeros(3, jnp.float32)}
  grads = {"w": jnp.full(3, g, jnp.float32)}
  def updates(transform, steps=5):
    state = transform.init(params)
    for _ in range(steps):
      u, state = transform.update(grads, state, params)
    return u["w"], state
  adam = optax.adam(lr, eps=eps)
  with jax.enable_x64(True):
    u, state = updates(chain.optimizer_in_dtype(adam, jnp.float64))
    assert u.dtype == jnp.float32
    assert all(l.dtype == jnp.float64 for l in jax.tree.leaves(state)
               if jnp.issubdtype(l.dtype, jnp.floating))
    # float32 rounding of lr (1 - 1e-5): 1e-6
    np.testing.assert_allclose(u, -lr * g / (g + eps), rtol=1e-6)
  u32, state32 = jax.jit(lambda: updates(adam))()
  if jax.default_backend() == "cpu":  # subnormals flushed: nu is exactly 0
    assert float(jnp.max(state32[0].nu["w"])) == 0.0
    np.testing.assert_allclose(u32, -lr * g / eps, rtol=1e-5)
  # the flag validates and needs 64-bit JAX (the sweep test below builds it)
  config = gj.Config(optimizer="adam", optimizer_dtype="float64", eps=eps)
  config.validate()
  assert config.needs_x64
  with pytest.raises(gj.ConfigError, match="--optimizer_dtype=float16: "
                     "choose"):
    gj.Config(optimizer_dtype="float16").validate()


def test_a_sweep_keeps_a_float32_model_with_a_float64_optimizer():
  config = gj.Config(task="x+y", p=11, model="mlp", d_model=8,
                     mlp_hidden=(16,), mlp_input="onehot", steps=20,
                     eval_every=10, optimizer="adamw",
                     optimizer_dtype="float64")
  with pytest.raises(gj.ConfigError, match="--optimizer_dtype=float64: 64-bit"):
    gj.sweep(config, log=None)
  with jax.enable_x64(True):
    result = gj.sweep(config, log=None)
  assert {l.dtype for l in jax.tree.leaves(result.state.params)} == {
      jnp.dtype(jnp.float32)}
  assert {l.dtype for l in jax.tree.leaves(result.state.opt_state)
          if jnp.issubdtype(l.dtype, jnp.floating)} == {jnp.dtype(jnp.float64)}
