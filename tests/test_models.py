"""Models: the last-position transformer equals a full causal reference; MLP inputs; init scale."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import grokjax as gj
from grokjax.analysis import measures
from grokjax.models import MLP, Transformer, make_model, scale_init

TOKENS = jnp.array([[1, 7, 2, 8], [6, 7, 6, 8], [0, 7, 3, 8]], jnp.int32)


def _layer_norm(x, p, eps=1e-6):
  mean = x.mean(-1, keepdims=True)
  var = ((x - mean) ** 2).mean(-1, keepdims=True)
  return (x - mean) / np.sqrt(var + eps) * p["scale"] + p["bias"]


def _reference(params, tokens, depth, heads, layer_norm, act, eps=1e-6):
  """Full causal transformer in numpy on every position, read at the last one."""
  p = jax.tree.map(np.asarray, params)
  x = p["embed"]["embedding"][np.asarray(tokens)] + p["pos_embed"][None]
  length = x.shape[1]
  for i in range(depth):
    b = p[f"block_{i}"]
    h = _layer_norm(x, b["ln_attn"], eps) if layer_norm else x
    q, k, v = (np.einsum("bld,dhk->blhk", h, b["attn"][n]["kernel"])
               for n in ("query", "key", "value"))
    logits = np.einsum("bqhk,blhk->bhql", q, k) / np.sqrt(q.shape[-1])
    logits = np.where(np.tril(np.ones((length, length), bool)), logits, -1e30)
    w = np.exp(logits - logits.max(-1, keepdims=True))
    w /= w.sum(-1, keepdims=True)
    x = x + np.einsum("bqhk,hkd->bqd", np.einsum("bhql,blhk->bqhk", w, v),
                      b["attn"]["out"]["kernel"])
    h = _layer_norm(x, b["ln_mlp"], eps) if layer_norm else x
    h = act(h @ b["mlp_in"]["kernel"] + b["mlp_in"]["bias"])
    x = x + h @ b["mlp_out"]["kernel"] + b["mlp_out"]["bias"]
  last = x[:, -1]
  if layer_norm:
    last = _layer_norm(last, p["ln_final"], eps)
  return last @ p["unembed"]["kernel"]


@pytest.mark.parametrize("depth, layer_norm, activation", [
    (1, False, "relu"), (2, True, "relu"), (3, True, "quadratic")])
def test_last_position_transformer_equals_full_causal_reference(
    depth, layer_norm, activation):
  model = Transformer(vocab_size=9, num_classes=7, seq_len=4, depth=depth,
                      d_model=16, num_heads=4, d_mlp=32, activation=activation,
                      layer_norm=layer_norm)
  params = model.init(jax.random.key(depth), TOKENS)["params"]
  act = {"relu": lambda z: np.maximum(z, 0), "quadratic": np.square}[activation]
  want = _reference(params, TOKENS, depth, 4, layer_norm, act)
  got = model.apply({"params": params}, TOKENS)
  np.testing.assert_allclose(got, want, rtol=2e-5, atol=2e-5)


def test_ln_eps_is_the_layer_norms_epsilon():
  # An epsilon as large as the activations' variance (0.3) moves the logits
  # far beyond float32 rounding, so the reference only matches at its own eps.
  model = Transformer(vocab_size=9, num_classes=7, seq_len=4, depth=2,
                      d_model=16, num_heads=4, d_mlp=32, ln_eps=0.3)
  params = model.init(jax.random.key(3), TOKENS)["params"]
  relu = lambda z: np.maximum(z, 0)
  got = model.apply({"params": params}, TOKENS)
  np.testing.assert_allclose(
      got, _reference(params, TOKENS, 2, 4, True, relu, eps=0.3),
      rtol=2e-5, atol=2e-5)
  assert np.abs(got - _reference(params, TOKENS, 2, 4, True, relu)).max() > 1e-2
  with pytest.raises(gj.ConfigError, match="--ln_eps=0.0: must be > 0"):
    gj.Config(ln_eps=0.0).validate()


def test_tied_embeddings_unembed_with_the_embedding_matrix():
  model = Transformer(vocab_size=9, num_classes=7, seq_len=4, depth=1,
                      d_model=16, num_heads=2, d_mlp=32, tie_embeddings=True)
  params = model.init(jax.random.key(0), TOKENS)["params"]
  assert "unembed" not in params
  assert model.apply({"params": params}, TOKENS).shape == (3, 7)


@pytest.mark.parametrize("mode, first_width", [("concat", 2 * 8), ("sum", 8),
                                               ("onehot", 2 * 7)])
def test_mlp_inputs(mode, first_width):
  model = MLP(num_tokens=7, num_classes=7, operand_positions=(0, 2),
              hidden=(12, 10), embed_dim=8, input=mode, use_bias=False)
  params = model.init(jax.random.key(0), TOKENS)["params"]
  assert params["hidden_0"]["kernel"].shape == (first_width, 12)
  assert ("embed" in params) == (mode != "onehot")
  assert "bias" not in params["hidden_0"]
  logits = model.apply({"params": params}, TOKENS)
  assert logits.shape == (3, 7)
  # Only the operands matter: changing the '=' token changes nothing.
  np.testing.assert_array_equal(
      logits, model.apply({"params": params}, TOKENS.at[:, 3].set(0)))


def test_mlp_sum_input_is_commutative():
  model = MLP(num_tokens=7, num_classes=7, operand_positions=(0, 2),
              hidden=(12,), embed_dim=8, input="sum")
  params = model.init(jax.random.key(1), TOKENS)["params"]
  swapped = TOKENS[:, jnp.array([2, 1, 0, 3])]
  np.testing.assert_allclose(model.apply({"params": params}, TOKENS),
                             model.apply({"params": params}, swapped),
                             rtol=1e-6)


def test_init_scale_multiplies_every_weight():
  task = gj.make_task("x+y", 7)
  model = make_model(gj.Config(p=7, depth=1, d_model=16, d_mlp=32), task)
  params = model.init(jax.random.key(0), TOKENS)["params"]
  scaled = scale_init(params, jnp.float32(8.0))
  for a, b in zip(jax.tree.leaves(params), jax.tree.leaves(scaled)):
    np.testing.assert_allclose(b, 8.0 * a)


def test_only_the_read_position_is_computed_in_the_last_block():
  """XLA's FLOP count of a forward pass matches the last-position-only count.

  Per row (L=4, D=64, d_mlp=256, V=31, 1 block): keys and values for all L
  positions, 2*L*D*D*2; the query of the last one, D*D*2; its attention,
  2*L*D*2; output projection, D*D*2; MLP, 2*D*d_mlp*2; unembed, D*V*2 (XLA
  adds a few percent for softmax and elementwise ops). Computing every
  position instead would add (L-1)*(2*D*D + 2*D*d_mlp + D*V)*2 = 2.6e5 FLOPs
  per row (2.7x).
  """
  L, D, H, d_mlp, V, B = 4, 64, 4, 256, 31, 128
  model = Transformer(vocab_size=V + 2, num_classes=V, seq_len=L, depth=1,
                      d_model=D, num_heads=H, d_mlp=d_mlp, layer_norm=False)
  tokens = jnp.zeros((B, L), jnp.int32)
  params = model.init(jax.random.key(0), tokens)
  cost = jax.jit(model.apply).lower(params, tokens).compile().cost_analysis()
  cost = cost[0] if isinstance(cost, (list, tuple)) else cost
  per_row = (2 * L * D * D + D * D + 2 * L * D + D * D + 2 * D * d_mlp
             + D * V) * 2
  assert per_row == 152448
  np.testing.assert_allclose(cost["flops"] / B, per_row, rtol=0.05)


def test_onehot_input_is_a_dense_layer_on_one_hot_vectors():
  # The onehot MLP gathers kernel rows; the numbers (and the kernel's gradient)
  # must be those of Dense on [onehot(x), onehot(y)] (Prieto et al. 2025).
  model = MLP(num_tokens=7, num_classes=7, operand_positions=(0, 2),
              hidden=(12,), input="onehot", use_bias=True)
  params = model.init(jax.random.key(3), TOKENS)["params"]
  params["hidden_0"]["bias"] = jnp.linspace(-1, 1, 12)
  onehot = jnp.concatenate([jax.nn.one_hot(TOKENS[:, 0], 7),
                            jax.nn.one_hot(TOKENS[:, 2], 7)], axis=-1)

  def dense(p):
    h = jax.nn.relu(onehot @ p["hidden_0"]["kernel"]
                    + p["hidden_0"]["bias"][None])
    return h @ p["readout"]["kernel"] + p["readout"]["bias"][None]

  np.testing.assert_allclose(model.apply({"params": params}, TOKENS),
                             dense(params), rtol=1e-6, atol=1e-6)
  grad = jax.grad(lambda p: model.apply({"params": p}, TOKENS).sum())(params)
  want = jax.grad(lambda p: dense(p).sum())(params)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-6,
                                                       atol=1e-6), grad, want)
  # Its init is Dense's: LeCun normal over fan-in 2 * num_tokens.
  big = MLP(num_tokens=500, num_classes=3, operand_positions=(0, 2),
            hidden=(400,), input="onehot").init(jax.random.key(0), TOKENS)
  std = float(jnp.std(big["params"]["hidden_0"]["kernel"]))
  assert abs(std - 1 / np.sqrt(1000)) < 0.03 / np.sqrt(1000)


def _initial(preset, **kw):
  config = gj.Config(task="x+y", p=97, model="transformer", depth=1,
                     d_model=128, num_heads=4, d_mlp=512, init=preset, **kw)
  task = config.build_task()
  model = gj.models.make_model(config, task)
  return gj.models.init_params(model, task, "float32", jax.random.key(0),
                               1.0, preset)


def _leaf(tree, path):
  for p in path:
    tree = tree[p.key]
  return tree


def test_init_presets_draw_the_peers_distributions():
  """Each preset's initial weights against its formula (stds within 3%: >= 12k draws each, sampling error < 1%)."""
  flax_p, torch_p, nanda_p = (_initial(p) for p in ("flax", "pytorch",
                                                    "nanda"))
  b = lambda p: p["block_0"]
  close = lambda a, want: np.testing.assert_allclose(float(np.std(a)), want,
                                                     rtol=0.03)
  # torch.nn: Linear kernels and biases U(+-1/sqrt(fan_in)), std bound/sqrt(3);
  # fan_in of the attention output [H, k, d] is H * k = 128.
  for w, fan_in in ((b(torch_p)["mlp_in"]["kernel"], 128),
                    (b(torch_p)["mlp_out"]["kernel"], 512),
                    (b(torch_p)["attn"]["out"]["kernel"], 128),
                    (b(torch_p)["attn"]["query"]["kernel"], 128),
                    (torch_p["unembed"]["kernel"], 128)):
    bound = fan_in ** -0.5
    assert float(np.abs(w).max()) <= bound
    close(w, bound / np.sqrt(3))
  bias = b(torch_p)["mlp_in"]["bias"]
  assert float(np.abs(bias).max()) <= 128 ** -0.5 and np.std(bias) > 0.03
  close(torch_p["embed"]["embedding"], 1.0)          # nn.Embedding N(0, 1)
  # Nanda et al.: N(0, 1/d_model) everywhere but W_U (1/d_vocab, p + 1).
  for w in (nanda_p["embed"]["embedding"], b(nanda_p)["attn"]["key"]["kernel"],
            b(nanda_p)["mlp_out"]["kernel"]):
    close(w, 128 ** -0.5)
  # W_pos has 4 x 128 = 512 draws: sampling error of its std ~3%, 15% is 5 of it.
  np.testing.assert_allclose(float(np.std(nanda_p["pos_embed"])), 128 ** -0.5,
                             rtol=0.15)
  close(nanda_p["unembed"]["kernel"], 98 ** -0.5)
  assert not np.asarray(b(nanda_p)["mlp_out"]["bias"]).any()
  # Gu et al.: Nanda's draws from the same keys, but W_U N(0, 1/d_model).
  gu_p = _initial("gu")
  close(gu_p["unembed"]["kernel"], 128 ** -0.5)
  np.testing.assert_allclose(gu_p["unembed"]["kernel"] * 128 ** 0.5,  # the
                             nanda_p["unembed"]["kernel"] * 98 ** 0.5,  # same
                             rtol=1e-6)  # draw, rescaled (float32 rounding)
  for path, w in jax.tree_util.tree_leaves_with_path(gu_p):
    if "unembed" not in jax.tree_util.keystr(path):
      np.testing.assert_array_equal(
          w, _leaf(nanda_p, path), err_msg=jax.tree_util.keystr(path))
  # Flax's defaults: LeCun normal kernels (std 1/sqrt(fan_in)) and an Embed
  # of std 1/sqrt(d) (variance scaling over its feature axis), 1/sqrt(128)
  # where torch.nn's is 1.
  close(b(flax_p)["mlp_out"]["kernel"], 512 ** -0.5)
  close(flax_p["embed"]["embedding"], 128 ** -0.5)
  # LayerNorm is 1 / 0 in every preset; --init_scale multiplies after.
  for p in (torch_p, nanda_p):
    np.testing.assert_array_equal(p["ln_final"]["scale"], 1.0)
  scaled = gj.models.init_params(
      gj.models.make_model(gj.Config(task="x+y", p=97, depth=1, d_model=128,
                                     num_heads=4, d_mlp=512),
                           gj.Config(task="x+y", p=97).build_task()),
      gj.Config(task="x+y", p=97).build_task(), "float32", jax.random.key(0),
      2.0, "pytorch")
  np.testing.assert_allclose(scaled["unembed"]["kernel"],
                             2.0 * torch_p["unembed"]["kernel"], rtol=1e-6)


@pytest.mark.parametrize("kind", ["mlp_onehot", "transformer", "linear"])
def test_initial_weights_do_not_depend_on_64_bit_jax(kind):
  # --loss_dtype=float64 turns 64-bit JAX on for a float32 model: the
  # initial weights must be the same draws (every param is drawn in float32,
  # as flax's layers draw theirs), bitwise.
  config = {"mlp_onehot": gj.Config(task="x+y", p=11, model="mlp",
                                    mlp_input="onehot", mlp_hidden=(16,)),
            "transformer": gj.Config(task="x+y", p=11, depth=1, d_model=16,
                                     num_heads=2, d_mlp=32),
            "linear": gj.Config(task="sparse_recovery", model="linear",
                                linear_dim=12, linear_k=2)}[kind]
  task = config.build_task()
  model = gj.models.make_model(config, task)
  init = lambda: gj.models.init_params(model, task, "float32",
                                       jax.random.key(3), 1.0, "flax")
  plain = init()
  with jax.enable_x64(True):
    wide = init()
  for a, b in zip(jax.tree.leaves(plain), jax.tree.leaves(wide)):
    assert a.dtype == b.dtype == np.float32
    np.testing.assert_array_equal(a, b)


def test_nanda_init_needs_a_transformer():
  with pytest.raises(gj.ConfigError, match="--init=nanda: .*--model=mlp"):
    gj.Config(model="mlp", init="nanda").validate()
  with pytest.raises(gj.ConfigError, match="--init=gu: Gu .*--model=mlp"):
    gj.Config(model="mlp", init="gu").validate()


def _reference_transformer(p, tokens, placement, depth, act):
  """The transformer's forward pass written out from the formulas (numpy, float64)."""
  P = jax.tree.map(lambda a: np.asarray(a, np.float64), p)

  def ln(x, q):  # flax.linen.LayerNorm: eps 1e-6, biased variance
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(var + 1e-6) * q["scale"] + q["bias"]

  def dense(x, q, axes=1):
    y = np.tensordot(x, q["kernel"], axes=axes)
    return y + q["bias"] if "bias" in q else y

  def attn(x, q):  # x [B, L, D]; causal; heads [H, K]
    qh, kh, vh = (dense(x, q[n]) for n in ("query", "key", "value"))
    k = qh.shape[-1]
    logits = np.einsum("bqhk,blhk->bhql", qh, kh) / np.sqrt(k)
    length = x.shape[1]
    logits = np.where(np.tril(np.ones((length, length), bool)), logits,
                      -np.inf)
    w = np.exp(logits - logits.max(-1, keepdims=True))
    w /= w.sum(-1, keepdims=True)
    return dense(np.einsum("bhql,blhk->bqhk", w, vh), q["out"], axes=2)

  x = P["embed"]["embedding"][tokens] + P["pos_embed"][None, :tokens.shape[1]]
  for i in range(depth):
    b = P[f"block_{i}"]
    mlp = lambda h: dense(act(dense(h, b["mlp_in"])), b["mlp_out"])
    if placement == "pre":
      x = x + attn(ln(x, b["ln_attn"]), b["attn"])
      x = x + mlp(ln(x, b["ln_mlp"]))
    elif placement == "post":
      x = ln(x + attn(x, b["attn"]), b["ln_attn"])
      x = ln(x + mlp(x), b["ln_mlp"])
    else:  # input: Grokfast's Block
      h = ln(x, b["ln_attn"])
      x = h + attn(h, b["attn"])
      x = x + mlp(ln(x, b["ln_mlp"]))
  x = x[:, -1]
  if placement != "post":
    x = ln(x, P["ln_final"])
  return x @ P["unembed"]["kernel"]


@pytest.mark.parametrize("placement, attn_bias, mlp_bias", [
    ("pre", False, True), ("post", True, False), ("input", True, True)])
def test_layer_norm_placements_and_biases_follow_their_formulas(
    placement, attn_bias, mlp_bias):
  """pre: x + f(LN(x)); post: LN(x + f(x)), no final LN; input (Grokfast's
  Block): h = LN(x), h + attn(h). Biases where the flags put them, and the
  exact GELU 0.5 x (1 + erf(x / sqrt 2)): against a float64 numpy forward
  pass written from those formulas (agreement to 1e-4 relative: float32)."""
  from math import erf  # pylint: disable=import-outside-toplevel
  model = Transformer(vocab_size=13, num_classes=11, seq_len=4, depth=2,
                      d_model=32, num_heads=4, d_mlp=64,
                      activation="gelu_exact", ln_placement=placement,
                      attn_bias=attn_bias, mlp_bias=mlp_bias)
  tokens = np.array([[1, 11, 2, 12], [5, 11, 7, 12], [0, 11, 10, 12]])
  params = model.init(jax.random.key(3), tokens)["params"]
  # non-zero LayerNorm and bias parameters, so each one's place matters
  params = jax.tree_util.tree_map_with_path(
      lambda path, a: a + 0.1 * jax.random.normal(
          jax.random.key(len(str(path))), a.shape)
      if path[-1].key in ("bias", "scale") else a, params)
  blk = params["block_0"]
  assert ("bias" in blk["attn"]["query"]) == attn_bias
  assert ("bias" in blk["attn"]["out"]) == attn_bias
  assert ("bias" in blk["mlp_in"]) == mlp_bias
  assert ("ln_final" in params) == (placement != "post")
  gelu = np.vectorize(lambda v: 0.5 * v * (1 + erf(v / np.sqrt(2))))
  want = _reference_transformer(params, tokens, placement, 2, gelu)
  got = model.apply({"params": params}, tokens)
  np.testing.assert_allclose(np.asarray(got, np.float64), want, rtol=1e-4,
                             atol=1e-4)


def test_gelu_is_the_tanh_approximation_and_gelu_exact_the_erf_form():
  from math import erf, pi, tanh  # pylint: disable=import-outside-toplevel
  x = np.linspace(-4, 4, 41)
  exact = np.array([0.5 * v * (1 + erf(v / np.sqrt(2))) for v in x])
  approx = np.array([0.5 * v * (1 + tanh(np.sqrt(2 / pi) * (v + 0.044715 * v**3)))
                     for v in x])
  np.testing.assert_allclose(gj.models.ACTIVATIONS["gelu_exact"](x), exact,
                             atol=1e-6)
  np.testing.assert_allclose(gj.models.ACTIVATIONS["gelu"](x), approx,
                             atol=1e-6)
  assert np.abs(exact - approx).max() > 1e-4  # the two differ measurably


def test_grokfast_preset_draws_multihead_attention_as_torch_does():
  """torch.nn.MultiheadAttention: in_proj_weight [3d, d] xavier-uniform, bound
  sqrt(6 / (d + 3d)) (std bound / sqrt 3); in_proj_bias and out_proj.bias 0;
  out_proj and the MLP as nn.Linear (U(+-1/sqrt(fan_in)))."""
  p = _initial("grokfast", attn_bias=True)["block_0"]
  bound = (6 / (128 + 3 * 128)) ** 0.5
  for name in ("query", "key", "value"):
    w = p["attn"][name]["kernel"]
    assert float(np.abs(w).max()) <= bound
    np.testing.assert_allclose(float(np.std(w)), bound / np.sqrt(3),
                               rtol=0.03)
    assert not np.asarray(p["attn"][name]["bias"]).any()
  assert not np.asarray(p["attn"]["out"]["bias"]).any()
  out = p["attn"]["out"]["kernel"]
  np.testing.assert_allclose(float(np.std(out)), 128 ** -0.5 / np.sqrt(3),
                             rtol=0.03)
  bias = p["mlp_in"]["bias"]
  assert float(np.abs(bias).max()) <= 128 ** -0.5 and np.std(bias) > 0.03


def test_token_readout_scores_every_token_and_trains_on_all_of_them():
  """--readout=tokens (Nanda et al.'s 114-way head at p = 113): one logit per
  vocabulary token, the operator and '=' included; the loss a sweep reports
  is the cross-entropy over all of them, computed here in numpy from the
  final parameters (float32 logits, float64 arithmetic: rtol 1e-5)."""
  config = gj.Config(task="x+y", p=7, depth=1, d_model=16, num_heads=2,
                     d_mlp=32, steps=3, eval_every=1, chunk_steps=3,
                     train_fraction=0.5, readout="tokens")
  task = config.build_task()
  assert task.vocab_size == 9 and task.num_classes == 7  # x op y =
  result = gj.sweep(config, log=None)
  params = jax.tree.map(lambda x: x[0], result.state.params)
  assert params["unembed"]["kernel"].shape == (16, 9)
  logits = np.asarray(make_model(config, task).apply(
      {"params": params}, task.inputs), np.float64)
  log_p = logits - logits.max(1, keepdims=True)
  log_p -= np.log(np.exp(log_p).sum(1, keepdims=True))
  nll = -log_p[np.arange(len(task.labels)), task.labels]
  train = np.asarray(gj.members.member_splits(config, task, [0]).is_train[0])
  np.testing.assert_allclose(result.history["train_loss"][0, -1],
                             nll[train].mean(), rtol=1e-5)
  acc = (logits.argmax(1) == task.labels)[train].mean()
  np.testing.assert_allclose(result.history["train_acc"][0, -1], acc)
  classes = config.replace(readout="classes")
  assert make_model(classes, task).init(jax.random.key(0), task.inputs[:1])[
      "params"]["unembed"]["kernel"].shape == (16, 7)


@pytest.mark.parametrize("over, message", [
    ({"model": "mlp"}, "only --model=transformer on a table task"),
    ({"task": "parity"}, "only --model=transformer on a table task"),
    ({"readout": "vocab"}, "--readout=vocab"),
])
def test_token_readout_is_refused_where_answers_are_not_tokens(over, message):
  with pytest.raises(gj.ConfigError, match=message):
    gj.Config(**{"task": "x+y", "readout": "tokens", **over}).validate()


# The model contract (grokjax.models.parts): each model says where it keeps
# what the measures read; nothing outside its module names its layers.
_PARTS_CASES = [  # (flags, the parts the model offers)
    (dict(task="x+y", model="transformer"),
     {"embedding", "input_vectors", "readout", "neurons"}),
    (dict(task="x+y", model="transformer", tie_embeddings=True),
     {"embedding", "input_vectors", "readout", "neurons"}),
    (dict(task="x+y", model="mlp", activation="relu"),
     {"embedding", "input_vectors", "readout", "relu_layers"}),
    (dict(task="x+y", model="mlp", activation="relu", mlp_input="onehot"),
     {"input_vectors", "readout", "relu_layers"}),
    (dict(task="x+y", model="mlp", activation="gelu"),
     {"embedding", "input_vectors", "readout"}),
    (dict(task="digits", model="mlp", activation="relu"),
     {"readout", "relu_layers"}),
    (dict(task="digits", model="cnn", cnn_channels=(4,)), {"readout"}),
    (dict(task="x+y", model="lstm"), {"embedding", "input_vectors", "readout"}),
    (dict(task="sparse_recovery", model="linear"), set()),
]


def _small(**flags):
  config = gj.Config(**{**dict(p=11, d_model=16, num_heads=2, d_mlp=32,
                                depth=2, mlp_hidden=(24, 20)), **flags})
  task = config.build_task()
  return config, task, make_model(config, task)


@pytest.mark.parametrize("flags, offered", _PARTS_CASES,
                         ids=lambda v: "-".join(map(str, v.values()))
                         if isinstance(v, dict) else None)
def test_every_model_offers_its_parts_with_the_shapes_promised(flags,
                                                               offered):
  config, task, model = _small(**flags)
  parts = gj.models.parts_of(config)
  assert set(parts.offered()) == offered
  params = gj.models.abstract_params(model, task, "float32")
  outputs = jax.eval_shape(model.apply, {"params": params},
                           jnp.asarray(task.inputs[:3])).shape[-1]
  gj.models.check_parts(parts, model, params, jnp.asarray(task.inputs[:3]),
                        outputs)


def test_the_parts_are_the_numbers_their_formulas_give():
  # Transformer, depth 1 without LayerNorm: the readout is `unembed`, tied
  # the embedding transposed; the neurons are relu(x_last W_in + b_in) with
  # x_last the last position's residual after attention (numpy below).
  config, task, model = _small(task="x+y", model="transformer", depth=1,
                               layer_norm=False, activation="relu")
  tokens = jnp.asarray(task.inputs[:5])
  params = model.init(jax.random.key(1), tokens)["params"]
  parts = gj.models.parts_of(config)
  p = jax.tree.map(np.asarray, params)
  np.testing.assert_array_equal(parts.readout(params), p["unembed"]["kernel"])
  np.testing.assert_array_equal(parts.embedding(params),
                                p["embed"]["embedding"])
  x = p["embed"]["embedding"][np.asarray(tokens)] + p["pos_embed"][None]
  b = p["block_0"]
  q, k, v = (np.einsum("bld,dhk->blhk", x, b["attn"][n]["kernel"])
             for n in ("query", "key", "value"))
  logits = np.einsum("bhk,blhk->bhl", q[:, -1], k) / np.sqrt(q.shape[-1])
  w = np.exp(logits - logits.max(-1, keepdims=True))
  w /= w.sum(-1, keepdims=True)
  last = x[:, -1] + np.einsum("bhk,hkd->bd", np.einsum("bhl,blhk->bhk", w, v),
                              b["attn"]["out"]["kernel"])
  want = np.maximum(last @ b["mlp_in"]["kernel"] + b["mlp_in"]["bias"], 0)
  np.testing.assert_allclose(parts.neurons(model, params, tokens), want,
                             rtol=1e-4, atol=1e-5)  # float32 sums in 2 orders
  tied, _, tied_model = _small(task="x+y", model="transformer",
                               tie_embeddings=True)
  tp = tied_model.init(jax.random.key(1), tokens)["params"]
  np.testing.assert_array_equal(gj.models.parts_of(tied).readout(tp),
                                np.asarray(tp["embed"]["embedding"]).T)
  # The one-hot ReLU MLP: its input vectors are its first kernel, and its
  # layers rebuild its logits: relu(relu(x W0 + b0) W1 + b1) W2 + b2.
  config, task, model = _small(task="x+y", model="mlp", activation="relu",
                               mlp_input="onehot")
  params = model.init(jax.random.key(2), tokens)["params"]
  parts = gj.models.parts_of(config)
  np.testing.assert_array_equal(parts.input_vectors(params),
                                params["hidden_0"]["kernel"])
  x, layers = parts.relu_layers(model, params, tokens)
  np.testing.assert_array_equal(
      x, np.concatenate([np.eye(11)[np.asarray(task.operands()[:5, i])]
                         for i in (0, 1)], axis=1))
  h = np.asarray(x)
  for i, (kernel, bias) in enumerate(layers):
    h = h @ np.asarray(kernel) + np.asarray(bias)
    h = np.maximum(h, 0) if i < len(layers) - 1 else h
  np.testing.assert_allclose(h, model.apply({"params": params}, tokens),
                             rtol=1e-5, atol=1e-6)


def test_a_part_a_model_does_not_offer_is_refused_in_one_line():
  config, _, _ = _small(task="x+y", model="transformer")
  with pytest.raises(gj.models.NotOffered) as e:
    gj.models.parts_of(config).need("relu_layers")
  assert str(e.value) == (
      "needs the model's relu_layers, which --model=transformer does not "
      "offer (it offers: embedding, input_vectors, readout, neurons)")
  with pytest.raises(gj.ConfigError, match=r"^--measures=embedding: needs the "
                     r"model's embedding, which --model=mlp --mlp_input=onehot "
                     r"does not offer .*; drop it from --measures$"):
    measures.check_measures(["embedding"], _small(
        task="x+y", model="mlp", activation="relu", mlp_input="onehot")[0])
  # "all" leaves out what the model cannot give.
  assert "complexity" not in measures.check_measures(["all"], config)
  assert "embedding" in measures.check_measures(["all"], config)
