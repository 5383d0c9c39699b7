"""Regularizer transforms against their closed forms, under jit, vmap and optax.chain with masks."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from grokjax.optim import regularizers as reg

RNG = np.random.default_rng(0)
PARAMS = {"dense": {"kernel": jnp.asarray(RNG.normal(size=(5, 3)), jnp.float32),
                    "bias": jnp.asarray(RNG.normal(size=(3,)), jnp.float32)},
          "embed": jnp.asarray(RNG.normal(size=(4, 6)), jnp.float32)}
GRADS = jax.tree.map(lambda x: jnp.asarray(RNG.normal(size=x.shape),
                                           jnp.float32), PARAMS)


def _apply(tx, grads=GRADS, params=PARAMS, steps=1):
  state = tx.init(params)
  for _ in range(steps):
    updates, state = jax.jit(tx.update)(grads, state, params)
  return updates, state


def _close(a, b, tol=1e-6):
  jax.tree.map(lambda x, y: np.testing.assert_allclose(x, y, rtol=tol,
                                                       atol=tol), a, b)


def test_proximal_l1_is_soft_thresholding_exactly():
  lr, beta = 0.1, 2.0
  step = jax.tree.map(lambda g: -lr * g, GRADS)
  updates, _ = _apply(reg.l1_proximal(beta, lr), grads=step)
  new = optax.apply_updates(PARAMS, updates)
  expected = jax.tree.map(
      lambda w, g: np.sign(w - lr * g) * np.maximum(np.abs(w - lr * g) -
                                                    lr * beta, 0), PARAMS, GRADS)
  _close(new, expected)
  # Entries inside the threshold are exactly zero (that is the sparsity).
  assert (np.asarray(new["embed"]) == 0).sum() == (
      np.abs(np.asarray(PARAMS["embed"] - lr * GRADS["embed"])) <= lr * beta).sum() > 0


def test_l1_subgradient_adds_beta_sign():
  updates, _ = _apply(reg.l1_subgradient(0.3))
  _close(updates, jax.tree.map(lambda g, w: g + 0.3 * np.sign(w), GRADS, PARAMS))


def test_svt_leaves_singular_values_max_sigma_minus_threshold():
  lr, beta = 0.5, 1.0
  zero = jax.tree.map(jnp.zeros_like, PARAMS)
  updates, _ = _apply(reg.nuclear_proximal(beta, lr), grads=zero)
  new = optax.apply_updates(PARAMS, updates)
  for name in ("embed",):
    s_before = np.linalg.svd(np.asarray(PARAMS[name]), compute_uv=False)
    s_after = np.linalg.svd(np.asarray(new[name]), compute_uv=False)
    np.testing.assert_allclose(s_after, np.maximum(s_before - lr * beta, 0),
                               atol=1e-5)
  # The default mask leaves the 1-D bias alone.
  np.testing.assert_array_equal(new["dense"]["bias"], PARAMS["dense"]["bias"])


def test_nuclear_subgradient_is_u_vt():
  updates, _ = _apply(reg.nuclear_subgradient(2.0))
  w = np.asarray(PARAMS["dense"]["kernel"])
  u, _, vt = np.linalg.svd(w, full_matrices=False)
  np.testing.assert_allclose(updates["dense"]["kernel"],
                             GRADS["dense"]["kernel"] + 2.0 * u @ vt, atol=1e-5)
  np.testing.assert_array_equal(updates["dense"]["bias"], GRADS["dense"]["bias"])
  # The nuclear norm's gradient, where it is differentiable: d sum(s) / dW.
  auto = jax.grad(lambda m: jnp.linalg.svd(m, compute_uv=False).sum())(
      PARAMS["dense"]["kernel"])
  np.testing.assert_allclose(u @ vt, auto, atol=1e-5)


def test_nuclear_norm_acts_on_an_attention_kernel_as_its_linear_map():
  """The attention output kernel [H, k, d] is the map [H * k, d] (grokjax.params).

  Before, the nuclear transforms' default mask skipped every 3-D leaf. The
  expected values come from numpy's SVD of the [H * k, d] matrix.
  """
  h, k, d = 2, 3, 5
  out = jnp.asarray(RNG.normal(size=(h, k, d)), jnp.float32)
  qkv = jnp.asarray(RNG.normal(size=(d, h, k)), jnp.float32)
  params = {"block_0": {"attn": {"out": {"kernel": out},
                                 "query": {"kernel": qkv}}}}
  grads = jax.tree.map(jnp.zeros_like, params)
  updates, _ = _apply(reg.nuclear_subgradient(1.0), grads=grads,
                      params=params)
  for got, w, shape in (
      (updates["block_0"]["attn"]["out"]["kernel"], out, (h * k, d)),
      (updates["block_0"]["attn"]["query"]["kernel"], qkv, (d, h * k))):
    u, _, vt = np.linalg.svd(np.asarray(w).reshape(shape),
                             full_matrices=False)
    np.testing.assert_allclose(got, (u @ vt).reshape(w.shape), atol=1e-5)
  lr = 0.3
  updates, _ = _apply(reg.nuclear_proximal(1.0, lr), grads=grads,
                      params=params)
  new = optax.apply_updates(params, updates)["block_0"]["attn"]["out"][
      "kernel"]
  s_before = np.linalg.svd(np.asarray(out).reshape(h * k, d),
                           compute_uv=False)
  s_after = np.linalg.svd(np.asarray(new).reshape(h * k, d),
                          compute_uv=False)
  np.testing.assert_allclose(s_after, np.maximum(s_before - lr, 0), atol=1e-5)


def test_perp_grad_is_orthogonal_to_the_weights_with_the_input_norm():
  updates, _ = _apply(reg.perp_grad())
  for g_new, g, w in zip(jax.tree.leaves(updates), jax.tree.leaves(GRADS),
                         jax.tree.leaves(PARAMS)):
    assert abs(float(jnp.vdot(g_new, w))) < 1e-5 * float(
        jnp.linalg.norm(g) * jnp.linalg.norm(w))
    np.testing.assert_allclose(jnp.linalg.norm(g_new), jnp.linalg.norm(g),
                               rtol=1e-5)
  # A zero tensor's gradient passes unchanged; one parallel to w becomes 0.
  zero = {"w": jnp.zeros(3)}
  out, _ = _apply(reg.perp_grad(), grads={"w": jnp.ones(3)}, params=zero)
  np.testing.assert_array_equal(out["w"], jnp.ones(3))
  out, _ = _apply(reg.perp_grad(), grads={"w": 2 * jnp.ones(3)},
                  params={"w": jnp.ones(3)})
  np.testing.assert_allclose(out["w"], 0, atol=1e-6)


def test_grokfast_ema_follows_its_recurrence():
  alpha, lamb = 0.9, 2.0
  tx = reg.grokfast_ema(alpha, lamb)
  state = tx.init(PARAMS)
  grads = [jax.tree.map(lambda g: g * (k + 1), GRADS) for k in range(4)]
  ema = None
  for g in grads:
    out, state = jax.jit(tx.update)(g, state, PARAMS)
    ema = g if ema is None else jax.tree.map(lambda e, x: alpha * e +
                                             (1 - alpha) * x, ema, g)
    _close(out, jax.tree.map(lambda x, e: x + lamb * e, g, ema), tol=1e-5)


@pytest.mark.parametrize("window", [1, 3])
def test_grokfast_ma_warms_up_then_adds_the_window_mean(window):
  # Past several wraps of the ring buffer (the mean is a running sum).
  tx = reg.grokfast_ma(window=window, lamb=5.0)
  state = tx.init(PARAMS)
  keys = jax.random.split(jax.random.key(7), 11)
  grads = [jax.tree.map(lambda g, k=k: g * jax.random.normal(k, g.shape),
                        GRADS) for k in keys]
  for k, g in enumerate(grads):
    out, state = jax.jit(tx.update)(g, state, PARAMS)
    if k < window - 1:
      _close(out, g)
    else:
      mean = jax.tree.map(lambda *xs: sum(xs) / window,
                          *grads[k - window + 1:k + 1])
      _close(out, jax.tree.map(lambda x, m: x + 5.0 * m, g, mean), tol=1e-5)


def test_l2_coupled_and_decoupled_toward_zero_and_init():
  updates, _ = _apply(reg.l2_penalty(0.5))
  _close(updates, jax.tree.map(lambda g, w: g + 0.5 * w, GRADS, PARAMS))
  # Toward the initial weights: no pull at the initial weights themselves.
  updates, _ = _apply(reg.l2_penalty(0.5, toward_init=True))
  _close(updates, GRADS)
  # Decoupled: u - lr * beta * w, with a schedule read at the update count.
  schedule = lambda count: 0.1 * (count + 1)
  updates, _ = _apply(reg.l2_decay(2.0, schedule), steps=2)
  _close(updates, jax.tree.map(lambda g, w: g - 0.2 * 2.0 * w, GRADS, PARAMS))


def test_project_to_norm_keeps_the_initial_norm():
  tx = optax.chain(optax.sgd(0.3), reg.project_to_norm())
  state = tx.init(PARAMS)
  params = PARAMS
  for _ in range(3):
    updates, state = jax.jit(tx.update)(GRADS, state, params)
    params = optax.apply_updates(params, updates)
  np.testing.assert_allclose(optax.tree.norm(params), optax.tree.norm(PARAMS),
                             rtol=1e-5)


def test_noise_has_the_requested_std_and_fresh_draws():
  big = {"w": jnp.zeros((200, 200))}
  tx = reg.weight_noise(0.1, seed=3)
  state = tx.init(big)
  first, state = jax.jit(tx.update)(big, state, big)
  second, _ = jax.jit(tx.update)(big, state, big)
  assert abs(float(first["w"].std()) - 0.1) < 0.002
  assert not np.allclose(first["w"], second["w"])


def test_per_member_strengths_under_vmap_inside_a_masked_chain():
  """The sweep's pattern: the chain is built inside vmap from each member's strength."""
  betas = jnp.array([0.0, 0.5, 2.0])
  lr = 0.1

  def member_update(beta):
    tx = optax.chain(reg.l1_subgradient(beta, mask=reg.not_biases),
                     optax.sgd(lr))
    updates, _ = tx.update(GRADS, tx.init(PARAMS), PARAMS)
    return updates

  out = jax.jit(jax.vmap(member_update))(betas)
  for i, beta in enumerate(np.asarray(betas)):
    expected = {"dense": {
        "kernel": -lr * (GRADS["dense"]["kernel"] +
                         beta * np.sign(PARAMS["dense"]["kernel"])),
        "bias": -lr * GRADS["dense"]["bias"]},  # masked out: no penalty
        "embed": -lr * (GRADS["embed"] + beta * np.sign(PARAMS["embed"]))}
    _close(jax.tree.map(lambda x: x[i], out), expected)


def test_a_misplaced_nuclear_norm_names_the_mask():
  with pytest.raises(ValueError, match="mask=grokjax.optim.not_biases"):
    _apply(reg.nuclear_proximal(1.0, 0.1, mask=None))


def test_a_sweep_over_reg_strength_trains_each_member_with_its_own():
  import grokjax as gj  # pylint: disable=import-outside-toplevel
  config = gj.Config(task="x+y", p=11, depth=1, d_model=16, num_heads=2,
                     d_mlp=32, steps=40, eval_every=20, chunk_steps=20,
                     optimizer="sgd", learning_rate=(0.5,), weight_decay=(0.0,),
                     warmup_steps=0, regularizer="l1_prox",
                     reg_strength=(0.0, 0.05))
  result = gj.sweep(config, log=None)
  kernel = np.asarray(result.state.params["block_0"]["mlp_in"]["kernel"])
  # Proximal l1: lr * beta = 0.025 per step sets small weights exactly to 0.
  assert (kernel[0] == 0).mean() == 0
  assert (kernel[1] == 0).mean() > 0.5
  bias = np.asarray(result.state.params["block_0"]["mlp_in"]["bias"])
  assert (bias[1] == 0).mean() < 0.5  # biases are masked out (not_biases)
  single = gj.sweep(config.replace(reg_strength=(0.05,)), log=None)
  np.testing.assert_allclose(result.history["val_loss"][1],
                             single.history["val_loss"][0], rtol=1e-5)
  assert [m["reg_strength"] for m in result.members] == [0.0, 0.05]


def test_the_chain_table_puts_each_transform_in_its_stage():
  """--regularizer=l2_decoupled sits after Adam: w - lr*adam(g) - lr*beta*w (not Adam of g + beta*w)."""
  import grokjax as gj  # pylint: disable=import-outside-toplevel
  from grokjax.members import Hypers  # pylint: disable=import-outside-toplevel
  config = gj.Config(optimizer="adam", warmup_steps=0,
                     regularizer="l2_decoupled", reg_mask="all")
  lr, beta = 0.1, 0.5
  hypers = Hypers(*(jnp.float32(v) for v in (0, 0, 1, lr, 0.0, 1, beta, 0,
                                             1)))
  tx = gj.optim.make_optimizer(config, hypers)
  updates, _ = tx.update(GRADS, tx.init(PARAMS), PARAMS)
  # Adam's first step is lr * g / (|g| + eps) = lr * sign(g) (eps = 1e-8).
  expected = jax.tree.map(
      lambda g, w: -lr * np.asarray(g) / (np.abs(g) + 1e-8) - lr * beta * w,
      GRADS, PARAMS)
  _close(updates, expected)
  assert [t.name for t in gj.optim.TRANSFORMS if t.flag == "regularizer"] == [
      "l1", "l2", "l2_init", "nuclear", "l1_prox", "nuclear_prox",
      "l2_decoupled"]
