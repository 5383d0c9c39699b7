"""Regularizers and gradient tricks of the grokking literature as Optax transforms.

Each function returns an `optax.GradientTransformation` with a typed state,
works on any parameter pytree, composes with `optax.chain`, and takes

- its strength as a float *or a traced scalar*: grokjax builds the chain inside
  the vmapped step from each member's swept value, so one compiled program
  trains members with different strengths;
- `mask`: a pytree of bools (or a function of the params returning one) that
  selects the leaves it acts on (`matrices` selects 2-D leaves: weights, not
  biases or norms). Masked-out leaves pass through unchanged.

Where a transform sits in the chain matters, and each docstring says it:

- *gradient-side* transforms (`l2_penalty`, `l1_subgradient`,
  `nuclear_subgradient`, `grokfast_ema`, `grokfast_ma`, `perp_grad`,
  `gradient_noise`) change the gradient, so they go before the optimizer
  (`optax.chain(l1_subgradient(beta), optax.sgd(lr))` is subgradient descent
  on g + beta * ||w||_1);
- *update-side* transforms (`l2_decay`, `l1_proximal`, `nuclear_proximal`,
  `weight_noise`, `project_to_norm`) change the final update u (w_next = w + u),
  so they go after it: the proximal ones replace w + u with prox(w + u).

Papers: Notsawo et al. 2025 (l1 / nuclear-norm grokking, Delta t ~ 1/(alpha
beta)), Lee et al. 2024 (Grokfast), Prieto et al. 2025 (perp-grad, StableMax),
Liu et al. 2022 (Omnigrok's constrained weight norm).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, NamedTuple, Union

import jax
import jax.numpy as jnp
import optax

from grokjax.params import as_matrix, layer_name
from grokjax.settings import check_positive, setting

Scalar = Union[float, jax.Array]
ScalarOrSchedule = Union[Scalar, Callable[[jax.Array], jax.Array]]
Mask = Union[Any, Callable[[Any], Any], None]


# --- masks -------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class GrokfastSettings:
  """The Grokfast filters (--grad_filter=ema|ma; Lee et al. 2024)."""
  grokfast_alpha: float = setting(0.98, "Grokfast EMA momentum")
  grokfast_lamb: float = setting(2.0, "Grokfast amplification of the slow "
                                 "gradient")
  grokfast_window: int = setting(100, "Grokfast MA window (steps)")

  def check(self) -> None:
    if self.grokfast_window < 1:
      raise ValueError(f"--grokfast_window={self.grokfast_window}: must be "
                       ">= 1")
    if not 0 <= self.grokfast_alpha < 1:
      raise ValueError(f"--grokfast_alpha={self.grokfast_alpha}: must be in "
                       "[0, 1)")


@dataclasses.dataclass(frozen=True)
class NoiseSettings:
  """Gaussian noise on the gradient or the weights (on when > 0)."""
  gradient_noise: float = setting(0.0, "std of Gaussian noise added to the "
                                  "gradient each step")
  weight_noise: float = setting(0.0, "std of Gaussian noise added to the "
                                "weights each step (independent of lr)")

  def check(self) -> None:
    check_positive(self, "gradient_noise", "weight_noise", strict=False)


def matrices(params: Any) -> Any:
  """Mask: True on 2-D leaves (dense kernels, embeddings), False elsewhere."""
  return jax.tree.map(lambda x: jnp.ndim(x) == 2, params)


def not_biases(params: Any) -> Any:
  """Mask: True on leaves with at least 2 dimensions (no biases, norm scales)."""
  return jax.tree.map(lambda x: jnp.ndim(x) >= 2, params)


def _masked(inner: optax.GradientTransformation,
            mask: Mask) -> optax.GradientTransformation:
  return inner if mask is None else optax.masked(inner, mask)


def _per_leaf(name: str, fn: Callable[..., jax.Array], mask: Mask,
              with_path: bool = False) -> optax.GradientTransformation:
  """A stateless gradient-side transform: each leaf's g becomes fn(g, w) (fn(path, g, w) with_path)."""
  def update(updates, state, params=None):
    if params is None:
      raise ValueError(f"{name} needs params")
    if with_path:
      return jax.tree_util.tree_map_with_path(fn, updates, params), state
    return jax.tree.map(fn, updates, params), state

  return _masked(optax.GradientTransformation(
      lambda params: optax.EmptyState(), update), mask)


def _value(x: ScalarOrSchedule, count: jax.Array) -> jax.Array:
  return x(count) if callable(x) else jnp.asarray(x)


# --- states ------------------------------------------------------------------


class ReferenceState(NamedTuple):
  """The weights a penalty pulls towards (zeros or the initial weights)."""
  reference: Any


class CountState(NamedTuple):
  """Updates so far (for a learning-rate schedule)."""
  count: jax.Array


class EmaState(NamedTuple):
  count: jax.Array
  ema: Any


class WindowState(NamedTuple):
  """The last `window` gradients in a ring buffer (leading axis `window`).

  `total` is their running sum (at least float32) and `oldest` the entry the
  next update overwrites, read right after this update's write.
  """
  count: jax.Array
  buffer: Any
  total: Any
  oldest: Any


class NoiseState(NamedTuple):
  key: jax.Array


class NormState(NamedTuple):
  target: jax.Array


# --- l2 ----------------------------------------------------------------------


def _reference(params: Any, toward_init: bool) -> Any:
  return jax.tree.map(jnp.copy if toward_init else jnp.zeros_like, params)


def l2_penalty(strength: Scalar, toward_init: bool = False,
               mask: Mask = None) -> optax.GradientTransformation:
  """Coupled l2 (gradient side): g + beta * (w - w_ref).

  The gradient of beta/2 ||w - w_ref||^2; w_ref is 0 or, with `toward_init`,
  the weights at `init`. Before the optimizer (Adam rescales it: that is
  "Adam with L2", not AdamW).
  """
  def init(params):
    return ReferenceState(_reference(params, toward_init))

  def update(updates, state, params=None):
    if params is None:
      raise ValueError("l2_penalty needs params")
    updates = jax.tree.map(lambda g, w, r: g + strength * (w - r), updates,
                           params, state.reference)
    return updates, state

  return _masked(optax.GradientTransformation(init, update), mask)


def l2_decay(strength: Scalar, learning_rate: ScalarOrSchedule,
             toward_init: bool = False,
             mask: Mask = None) -> optax.GradientTransformation:
  """Decoupled l2 (update side): u - lr * beta * (w - w_ref), as AdamW's decay.

  After the optimizer; `learning_rate` is the optimizer's (a schedule is read at
  this transform's own update count).
  """
  def init(params):
    return (CountState(jnp.zeros([], jnp.int32)),
            ReferenceState(_reference(params, toward_init)))

  def update(updates, state, params=None):
    if params is None:
      raise ValueError("l2_decay needs params")
    count, ref = state
    step = _value(learning_rate, count.count) * strength
    updates = jax.tree.map(lambda u, w, r: u - step * (w - r), updates, params,
                           ref.reference)
    return updates, (CountState(count.count + 1), ref)

  return _masked(optax.GradientTransformation(init, update), mask)


# --- l1 ----------------------------------------------------------------------


def l1_subgradient(strength: Scalar,
                   mask: Mask = None) -> optax.GradientTransformation:
  """Gradient side: g + beta * sign(w), a subgradient of beta ||w||_1 (sign(0) = 0)."""
  return _per_leaf("l1_subgradient", lambda g, w: g + strength * jnp.sign(w),
                   mask)


def soft_threshold(x: jax.Array, threshold: jax.Array) -> jax.Array:
  """sign(x) * max(|x| - threshold, 0): the proximal operator of threshold * ||.||_1."""
  return jnp.sign(x) * jnp.maximum(jnp.abs(x) - threshold, 0.0)


def _proximal(name: str, prox: Callable[..., jax.Array],
              strength: Scalar, learning_rate: ScalarOrSchedule,
              mask: Mask, with_path: bool = False
              ) -> optax.GradientTransformation:
  """Update side: w_next = prox(w + u, lr * beta) (prox(path, w + u, lr * beta) with_path), lr read at the update count."""
  def init(params):
    del params
    return CountState(jnp.zeros([], jnp.int32))

  def update(updates, state, params=None):
    if params is None:
      raise ValueError(f"{name} needs params")
    threshold = _value(learning_rate, state.count) * strength
    if with_path:
      updates = jax.tree_util.tree_map_with_path(
          lambda path, u, w: prox(path, w + u, threshold) - w, updates, params)
    else:
      updates = jax.tree.map(lambda u, w: prox(w + u, threshold) - w, updates,
                             params)
    return updates, CountState(state.count + 1)

  return _masked(optax.GradientTransformation(init, update), mask)


def l1_proximal(strength: Scalar, learning_rate: ScalarOrSchedule,
                mask: Mask = None) -> optax.GradientTransformation:
  """Update side: w_next = soft_threshold(w + u, lr * beta) (ISTA's proximal step)."""
  return _proximal("l1_proximal", soft_threshold, strength, learning_rate,
                   mask)


# --- nuclear norm --------------------------------------------------------------


def _as_matrix(path, x: jax.Array, transform: str) -> jax.Array:
  if x.ndim < 2:
    raise ValueError(f"{transform} acts on leaves with 2 or more axes (linear "
                     f"maps); got shape {x.shape} (pass "
                     "mask=grokjax.optim.not_biases)")
  return as_matrix(layer_name(path), x)


def nuclear_subgradient(strength: Scalar,
                        mask: Mask = not_biases) -> optax.GradientTransformation:
  """Gradient side: g + beta * U V^T for each weight's linear map w = U S V^T (thin SVD).

  U V^T is the subgradient of the nuclear norm ||w||_* = sum of singular values
  (exact where w has full rank; the zero singular directions contribute 0).
  A 3-D or 4-D kernel is taken as the map it applies (`grokjax.params`:
  the attention output [H, k, d] as [H * k, d]), so attention and
  convolution kernels are penalized too.
  """
  def one(path, g, w):
    m = _as_matrix(path, w, "nuclear_subgradient")
    u, s, vt = jnp.linalg.svd(m, full_matrices=False)
    return g + (strength * (u * (s > 0)[None, :]) @ vt).reshape(w.shape)
  return _per_leaf("nuclear_subgradient", one, mask, with_path=True)


def singular_value_threshold(x: jax.Array, threshold: jax.Array) -> jax.Array:
  """U diag(max(s - threshold, 0)) V^T: the proximal operator of threshold * ||.||_*."""
  u, s, vt = jnp.linalg.svd(x, full_matrices=False)
  return (u * jnp.maximum(s - threshold, 0.0)[None, :]) @ vt


def nuclear_proximal(strength: Scalar, learning_rate: ScalarOrSchedule,
                     mask: Mask = not_biases) -> optax.GradientTransformation:
  """Update side: w_next = SVT(w + u, lr * beta) for each weight's linear map (as `nuclear_subgradient`)."""
  def prox(path, x, threshold):
    m = _as_matrix(path, x, "nuclear_proximal")
    return singular_value_threshold(m, threshold).reshape(x.shape)
  return _proximal("nuclear_proximal", prox, strength, learning_rate, mask,
                   with_path=True)


# --- Grokfast (Lee et al. 2024) -----------------------------------------------


def grokfast_ema(alpha: Scalar = 0.98, lamb: Scalar = 2.0,
                 mask: Mask = None) -> optax.GradientTransformation:
  """Gradient side: g + lamb * ema, ema_t = alpha * ema_{t-1} + (1 - alpha) * g_t.

  As the paper's `gradfilter_ema`: the EMA starts at the first gradient
  (ema_1 = g_1), so the first filtered gradient is (1 + lamb) g_1.
  """
  def init(params):
    return EmaState(jnp.zeros([], jnp.int32),
                    jax.tree.map(jnp.zeros_like, params))

  def update(updates, state, params=None):
    del params
    first = state.count == 0
    ema = jax.tree.map(
        lambda e, g: jnp.where(first, g, alpha * e + (1 - alpha) * g),
        state.ema, updates)
    updates = jax.tree.map(lambda g, e: g + lamb * e, updates, ema)
    return updates, EmaState(state.count + 1, ema)

  return _masked(optax.GradientTransformation(init, update), mask)


def grokfast_ma(window: int = 100, lamb: Scalar = 5.0,
                mask: Mask = None) -> optax.GradientTransformation:
  """Gradient side: g + lamb * mean of the last `window` gradients (this one included).

  As the paper's `gradfilter_ma` with warmup: until `window` gradients have
  been seen the gradient passes unchanged. Memory: `window` copies of the
  masked parameters, plus two.

  The mean is a running sum (add the new gradient, subtract the one it
  replaces), so a step costs O(1) copies, not O(window). The replaced entry
  is read after the previous step's write: reading the ring buffer before
  writing it makes XLA copy the whole buffer every step (measured: 0.86 s
  vs 2 ms a step for 3 members of 421k parameters, window 100). The sum is
  kept in float32 or wider; its rounding drift is ~sqrt(steps) ulps.
  """
  if window < 1:
    raise ValueError(f"grokfast_ma: window={window} must be >= 1")

  def init(params):
    acc = lambda x: jnp.zeros(jnp.shape(x), jnp.promote_types(
        jnp.result_type(x), jnp.float32))
    return WindowState(
        jnp.zeros([], jnp.int32),
        jax.tree.map(lambda x: jnp.zeros((window,) + jnp.shape(x),
                                         jnp.result_type(x)), params),
        jax.tree.map(acc, params), jax.tree.map(jnp.zeros_like, params))

  def update(updates, state, params=None):
    del params
    slot = state.count % window
    total = jax.tree.map(lambda t, g, o: t + g.astype(t.dtype) - o,
                         state.total, updates, state.oldest)
    buffer = jax.tree.map(
        lambda b, g: jax.lax.dynamic_update_index_in_dim(b, g, slot, 0),
        state.buffer, updates)
    oldest = jax.tree.map(lambda b: jax.lax.dynamic_index_in_dim(
        b, (slot + 1) % window, keepdims=False), buffer)
    full = state.count + 1 >= window
    updates = jax.tree.map(
        lambda g, t: jnp.where(full, g + (lamb * t / window).astype(g.dtype),
                               g), updates, total)
    return updates, WindowState(state.count + 1, buffer, total, oldest)

  return _masked(optax.GradientTransformation(init, update), mask)


# --- perp-grad (Prieto et al. 2025) -------------------------------------------


def perp_grad(mask: Mask = None) -> optax.GradientTransformation:
  """Gradient side: per tensor, remove g's component along w, rescale to ||g||.

  g_perp = g - (<g, w> / <w, w>) w, then g_perp * ||g|| / ||g_perp||. A zero w
  or a g parallel to w (g_perp = 0) leaves g unchanged or zero respectively.
  Then any optimizer (⊥AdamW = chain(perp_grad(), adamw)).
  """
  def one(g, w):
    ww = jnp.vdot(w, w)
    safe_ww = jnp.where(ww > 0, ww, 1.0)
    perp = jnp.where(ww > 0, g - (jnp.vdot(g, w) / safe_ww) * w, g)
    norm_perp = jnp.linalg.norm(perp)
    scale = jnp.where(norm_perp > 0, jnp.linalg.norm(g) /
                      jnp.where(norm_perp > 0, norm_perp, 1.0), 0.0)
    return perp * scale
  return _per_leaf("perp_grad", one, mask)


# --- noise and norm constraints ----------------------------------------------


def add_noise(std: Scalar, seed: jax.Array | int = 0,
              mask: Mask = None) -> optax.GradientTransformation:
  """x + std * N(0, 1), fresh noise every step, on whatever reaches it.

  Where it sits decides what it perturbs: before the optimizer it is gradient
  noise (then scaled by the optimizer), after it weight noise (w_next = w +
  u + std * N(0, 1), independent of the learning rate). `seed` is an int or a
  PRNG key.
  """
  def init(params):
    del params
    key = seed if isinstance(seed, jax.Array) and jnp.issubdtype(
        seed.dtype, jax.dtypes.prng_key) else jax.random.key(seed)
    return NoiseState(key)

  def update(updates, state, params=None):
    del params
    key, sub = jax.random.split(state.key)
    leaves, treedef = jax.tree.flatten(updates)
    keys = jax.random.split(sub, len(leaves))
    noisy = [u + std * jax.random.normal(k, jnp.shape(u), jnp.result_type(u))
             for u, k in zip(leaves, keys)]
    return jax.tree.unflatten(treedef, noisy), NoiseState(key)

  return _masked(optax.GradientTransformation(init, update), mask)


# Gradient side (before the optimizer) and update side (after it).
gradient_noise = weight_noise = add_noise


def project_to_norm(target: Scalar | None = None,
                    mask: Mask = None) -> optax.GradientTransformation:
  """Update side: rescale w + u so the (masked) parameters' total l2 norm is `target`.

  Omnigrok's constrained-norm runs fix ||w|| to a multiple of its initial value;
  `target=None` keeps the norm the parameters have at `init`.
  """
  def init(params):
    norm = optax.tree.norm(params)
    return NormState(norm if target is None else jnp.asarray(target,
                                                             norm.dtype))

  def update(updates, state, params=None):
    if params is None:
      raise ValueError("project_to_norm needs params")
    new = jax.tree.map(lambda w, u: w + u, params, updates)
    norm = optax.tree.norm(new)
    scale = state.target / jnp.where(norm > 0, norm, 1.0)
    return jax.tree.map(lambda n, w: n * scale - w, new, params), state

  return _masked(optax.GradientTransformation(init, update), mask)


__all__ = ["matrices", "not_biases", "l2_penalty", "l2_decay",
           "l1_subgradient", "l1_proximal", "soft_threshold",
           "nuclear_subgradient", "nuclear_proximal",
           "singular_value_threshold", "grokfast_ema", "grokfast_ma",
           "perp_grad", "add_noise", "gradient_noise", "weight_noise",
           "project_to_norm"]
