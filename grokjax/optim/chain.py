"""The whole optimizer as one `optax.chain`, assembled from one declarative table.

Each row of `TRANSFORMS` says where a regularizer or gradient trick sits in the
chain (`Stage`), which config setting turns it on, how to build it from the
member's swept values, and (for penalties) which leaves it acts on. Adding one
is adding a row; the flags' choices and help come from the table:

    Transform("l1", Stage.GRADIENT, "regularizer", "subgradient beta*sign(w)",
              lambda c, h, mask, lr, key: reg.l1_subgradient(h.reg_strength,
                                                             mask),
              masked=True)

`c` is a `View` of the row's own settings blocks (`settings=`; the
optimizer's rows: `OptimizerSettings`), `h` the member's swept values.

Order (as in big_vision's optax.make, one chain): perp-grad, the Grokfast
filter, the gradient side of --regularizer, gradient noise, the base optimizer
(with --weight_decay), the update side of --regularizer, weight noise, the
fixed-norm projection. Every strength comes from the member's hypers (traced
under vmap), so one compiled program trains members with different values.
"""

from __future__ import annotations

import dataclasses
import enum
from typing import Any, Callable

import jax
import jax.numpy as jnp
import optax

from grokjax import settings as settings_lib
from grokjax.optim import regularizers as reg
from grokjax.optim.regularizers import GrokfastSettings, NoiseSettings
from grokjax.settings import check_choice, setting


class Stage(enum.IntEnum):
  """Where a transform sits in the chain (lower runs first)."""
  PERP = 0          # change the gradient's direction
  FILTER = 1        # Grokfast: amplify the slow gradient
  GRADIENT = 2      # penalties' gradients, added to g
  GRADIENT_NOISE = 3
  OPTIMIZER = 4     # AdamW / Adam / SGD: gradient -> update
  UPDATE = 5        # proximal steps and decoupled decay on the update
  WEIGHT_NOISE = 6
  PROJECTION = 7    # constraints on w + u


def warmup_schedule(peak: jax.Array, warmup_steps: int) -> optax.Schedule:
  """Linear warmup from 0 to `peak` over `warmup_steps` updates, then constant.

  Same as PyTorch's ``LambdaLR(lambda s: min(s / warmup, 1))`` used by Power et al.
  2022 and Nanda et al. 2023 (the first update has learning rate 0).
  """
  if warmup_steps == 0:
    return lambda count: peak
  return lambda count: peak * jnp.minimum(count / warmup_steps, 1.0)


def base_optimizer(config, learning_rate: jax.Array,
                   weight_decay: jax.Array) -> optax.GradientTransformation:
  """AdamW (decoupled decay lr*wd*w), Adam or SGD (coupled L2: wd*w added to the gradient).

  In `config.optimizer_dtype` when it is not "precision" (`optimizer_in_dtype`).
  """
  inner = OPTIMIZERS[config.optimizer].build(
      settings_lib.View(config, (OptimizerSettings,),
                        f"optimizer {config.optimizer}"),
      warmup_schedule(learning_rate, config.warmup_steps), weight_decay)
  if config.optimizer_dtype == "precision":
    return inner
  return optimizer_in_dtype(inner, jnp.dtype(config.optimizer_dtype))


def optimizer_in_dtype(inner: optax.GradientTransformation,
                       dtype) -> optax.GradientTransformation:
  """`inner` with its state and arithmetic in `dtype`.

  The gradient and parameters are cast to `dtype` on the way in, the update
  back to each leaf's dtype on the way out; `inner.init` sees the parameters
  in `dtype`, so its state (Adam's mu and nu) is held in it. With float64,
  Adam's second moment of a float32 model no longer flushes to 0 where g^2
  falls below float32's smallest normal (1.2e-38): XLA on CPU flushes
  subnormals to zero, so there nu = 0 while mu is not, and with a tiny eps
  (Prieto et al.'s 1e-25) the step mu / (sqrt(nu) + eps) explodes.
  """
  cast = lambda tree: jax.tree.map(lambda a: a.astype(dtype), tree)

  def init(params):
    return inner.init(cast(params))

  def update(updates, state, params=None):
    new, state = inner.update(cast(updates), state,
                              None if params is None else cast(params))
    return jax.tree.map(lambda n, u: n.astype(u.dtype), new, updates), state

  return optax.GradientTransformation(init, update)


@dataclasses.dataclass(frozen=True)
class Optimizer:
  """A base optimizer: `build(settings, lr schedule, weight_decay)`, the
  settings a `View` of `OptimizerSettings`."""
  name: str
  help: str
  build: Callable[[Any, optax.Schedule, jax.Array],
                  optax.GradientTransformation]


def _adamw(c, lr, wd):
  return optax.adamw(lr, b1=c.beta1, b2=c.beta2, eps=c.eps, weight_decay=wd)


def _adam(c, lr, wd):
  return optax.chain(optax.add_decayed_weights(wd),
                     optax.adam(lr, b1=c.beta1, b2=c.beta2, eps=c.eps))


def _sgd(c, lr, wd):
  return optax.chain(optax.add_decayed_weights(wd),
                     optax.sgd(lr, momentum=c.momentum or None))


OPTIMIZERS = {o.name: o for o in (
    Optimizer("adamw", "AdamW (decoupled weight decay lr*wd*w)", _adamw),
    Optimizer("adam", "Adam with coupled L2 (wd*w added to the gradient)",
              _adam),
    Optimizer("sgd", "SGD (--momentum) with coupled L2", _sgd),
)}


@dataclasses.dataclass(frozen=True)
class Transform:
  """One row of the chain table.

  name: the value of `flag` that selects it (or, for an on/off trick, the
    flag itself).
  stage: where it sits in the chain.
  flag: the Config field that turns it on: a choice field (``regularizer``,
    ``grad_filter``) whose value is `name`, or a bool/float field that turns
    it on when truthy.
  help: one line for the flag's help.
  build: (settings, hypers, mask, lr schedule, noise key) -> transform;
    settings: a `View` of the row's `settings` blocks.
  masked: acts on the leaves --reg_mask selects (and, with `matrices_only`,
    only the linear maps among them: leaves of 2 or more axes).
  settings: the blocks (`grokjax.settings`) whose fields `build` reads.
  """
  name: str
  stage: Stage
  flag: str
  help: str
  build: Callable[..., optax.GradientTransformation]
  masked: bool = False
  matrices_only: bool = False
  settings: tuple[type, ...] = ()

  def selected(self, config) -> bool:
    value = getattr(config, self.flag)
    return value == self.name if isinstance(value, str) else bool(value)


MASKS = {"not_biases": reg.not_biases, "matrices": reg.matrices,
         "all": lambda params: jax.tree.map(lambda _: True, params)}


def _mask(config, matrices_only: bool):
  chosen = MASKS[config.reg_mask]
  if not matrices_only:
    return chosen
  return lambda params: jax.tree.map(lambda a, b: a and b, chosen(params),
                                     reg.not_biases(params))


TRANSFORMS = (
    Transform("perp_grad", Stage.PERP, "perp_grad",
              "remove each tensor's gradient component along its weights, "
              "keep the norm (Prieto 2025)",
              lambda c, h, m, lr, key: reg.perp_grad()),
    Transform("ema", Stage.FILTER, "grad_filter",
              "Grokfast EMA filter (--grokfast_alpha, --grokfast_lamb)",
              lambda c, h, m, lr, key: reg.grokfast_ema(c.grokfast_alpha,
                                                        c.grokfast_lamb),
              settings=(GrokfastSettings,)),
    Transform("ma", Stage.FILTER, "grad_filter",
              "Grokfast MA filter (--grokfast_window, --grokfast_lamb)",
              lambda c, h, m, lr, key: reg.grokfast_ma(c.grokfast_window,
                                                       c.grokfast_lamb),
              settings=(GrokfastSettings,)),
    Transform("l1", Stage.GRADIENT, "regularizer",
              "subgradient beta*sign(w)",
              lambda c, h, m, lr, key: reg.l1_subgradient(h.reg_strength, m),
              masked=True),
    Transform("l2", Stage.GRADIENT, "regularizer", "coupled beta*w",
              lambda c, h, m, lr, key: reg.l2_penalty(h.reg_strength, False,
                                                      m),
              masked=True),
    Transform("l2_init", Stage.GRADIENT, "regularizer",
              "coupled beta*(w - w_init)",
              lambda c, h, m, lr, key: reg.l2_penalty(h.reg_strength, True, m),
              masked=True),
    Transform("nuclear", Stage.GRADIENT, "regularizer",
              "subgradient beta*U V^T of each 2-D leaf",
              lambda c, h, m, lr, key: reg.nuclear_subgradient(h.reg_strength,
                                                               m),
              masked=True, matrices_only=True),
    Transform("gradient_noise", Stage.GRADIENT_NOISE, "gradient_noise",
              "Gaussian noise of this std added to the gradient",
              lambda c, h, m, lr, key: reg.gradient_noise(c.gradient_noise,
                                                          key(0)),
              settings=(NoiseSettings,)),
    Transform("l1_prox", Stage.UPDATE, "regularizer",
              "soft-threshold by lr*beta after the step",
              lambda c, h, m, lr, key: reg.l1_proximal(h.reg_strength, lr, m),
              masked=True),
    Transform("nuclear_prox", Stage.UPDATE, "regularizer",
              "singular-value threshold of each 2-D leaf by lr*beta",
              lambda c, h, m, lr, key: reg.nuclear_proximal(h.reg_strength,
                                                            lr, m),
              masked=True, matrices_only=True),
    Transform("l2_decoupled", Stage.UPDATE, "regularizer",
              "decoupled lr*beta*w after the step (AdamW's decay, for any "
              "optimizer)",
              lambda c, h, m, lr, key: reg.l2_decay(h.reg_strength, lr, False,
                                                    m),
              masked=True),
    Transform("weight_noise", Stage.WEIGHT_NOISE, "weight_noise",
              "Gaussian noise of this std added to the weights after the step",
              lambda c, h, m, lr, key: reg.weight_noise(c.weight_noise,
                                                        key(1)),
              settings=(NoiseSettings,)),
    Transform("fixed_norm", Stage.PROJECTION, "fixed_norm",
              "project the weights back to their initial total l2 norm "
              "(Omnigrok)",
              lambda c, h, m, lr, key: reg.project_to_norm()),
)


def choices(flag: str) -> tuple[str, ...]:
  """The values a choice flag takes: "none" and its rows' names, in table order."""
  return ("none",) + tuple(t.name for t in TRANSFORMS if t.flag == flag)


def choice_help(flag: str) -> str:
  """`name (help), ...` for a choice flag's rows."""
  return "; ".join(f"{t.name}: {t.help}" for t in TRANSFORMS
                   if t.flag == flag)


# --optimizer_dtype: "precision" keeps the optimizer state in the training dtype.
OPTIMIZER_DTYPES = ("precision", "float32", "float64")


@dataclasses.dataclass(frozen=True)
class OptimizerSettings:
  """The base optimizer (`OPTIMIZERS`), its warm-up and its state's dtype."""
  optimizer: str = setting("adamw", "; ".join(
      f"{o.name}: {o.help}" for o in OPTIMIZERS.values()))
  beta1: float = setting(0.9, "Adam beta1")
  beta2: float = setting(0.98, "Adam beta2")
  eps: float = setting(1e-8, "Adam epsilon")
  momentum: float = setting(0.0, "SGD momentum (0 = none)")
  warmup_steps: int = setting(10, "linear learning-rate warmup from 0")
  optimizer_dtype: str = setting("precision", "dtype of the base optimizer's "
                                 "state and arithmetic (Adam's moments): the "
                                 "gradient is cast to it and the update back "
                                 "(precision: the training dtype). float64 "
                                 "keeps Adam's second moment from flushing to "
                                 "0 below float32's 1.2e-38, which XLA on CPU "
                                 "does (no subnormals) and PyTorch does not")

  def check(self) -> None:
    check_choice("optimizer", self.optimizer, tuple(OPTIMIZERS))
    check_choice("optimizer_dtype", self.optimizer_dtype, OPTIMIZER_DTYPES)
    for name in ("beta1", "beta2", "momentum"):
      if not 0 <= getattr(self, name) < 1:
        raise ValueError(f"--{name}={getattr(self, name)}: must be in [0, 1)")
    if self.warmup_steps < 0:
      raise ValueError(f"--warmup_steps={self.warmup_steps}: must be >= 0")


@dataclasses.dataclass(frozen=True)
class ChainSettings:
  """Which regularizer and gradient tricks the chain holds (`TRANSFORMS`:
  each row's `flag`) and the leaves penalties act on; their strengths are
  swept (--reg_strength) or the rows' own blocks."""
  regularizer: str = setting("none", "penalty of strength --reg_strength "
                             "(beta): none; " + choice_help("regularizer"))
  reg_mask: str = setting("not_biases", "leaves the penalty acts on: " +
                          ", ".join(MASKS) + " (>= 2-D, 2-D, every "
                          "leaf); nuclear penalties act on the linear maps "
                          "among them (attention and conv kernels as "
                          "[fan_in, fan_out])")
  grad_filter: str = setting("none", "none; " + choice_help("grad_filter"))
  perp_grad: bool = setting(False, "remove each tensor's gradient component "
                            "along its weights, keep the norm (Prieto 2025)")
  fixed_norm: bool = setting(False, "project the weights back to their "
                             "initial total l2 norm after every step "
                             "(Omnigrok)")

  def check(self) -> None:
    check_choice("regularizer", self.regularizer, choices("regularizer"))
    check_choice("reg_mask", self.reg_mask, tuple(MASKS))
    check_choice("grad_filter", self.grad_filter, choices("grad_filter"))


def make_optimizer(config, hypers) -> optax.GradientTransformation:
  """The member's whole chain, from its swept values (traced under vmap).

  `hypers` needs learning_rate, weight_decay, reg_strength and seed (any object
  with those attributes; noise keys are ``fold_in(fold_in(key(seed), 2), i)``).
  """
  lr = warmup_schedule(hypers.learning_rate, config.warmup_steps)
  noise_key = lambda i: jax.random.fold_in(jax.random.fold_in(
      jax.random.key(hypers.seed), 2), i)
  rows = sorted((t for t in TRANSFORMS if t.selected(config)),
                key=lambda t: t.stage)
  before = [t for t in rows if t.stage < Stage.OPTIMIZER]
  after = [t for t in rows if t.stage > Stage.OPTIMIZER]
  build = lambda t: t.build(
      settings_lib.View(config, t.settings, f"transform {t.name}"), hypers,
      _mask(config, t.matrices_only) if t.masked else None, lr, noise_key)
  chain = ([build(t) for t in before]
           + [base_optimizer(config, hypers.learning_rate,
                             hypers.weight_decay)]
           + [build(t) for t in after])
  return chain[0] if len(chain) == 1 else optax.chain(*chain)


__all__ = ["Stage", "Transform", "TRANSFORMS", "Optimizer", "OPTIMIZERS",
           "MASKS", "choices", "choice_help", "make_optimizer",
           "base_optimizer", "optimizer_in_dtype", "warmup_schedule",
           "OptimizerSettings", "ChainSettings", "OPTIMIZER_DTYPES",
           "GrokfastSettings", "NoiseSettings"]
