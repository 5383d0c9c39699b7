"""Progress measures over a run's saved steps: every member, vmapped.

`compute_measures(workdir, names)` loads the parameter snapshots of a run
(`--snapshot_count` / `--snapshot_every`), applies the chosen measures to
every selected member at every saved step and returns (and
`experiments/analyze.py --measures=...` writes) the arrays of ``measures.npz``:

- ``step`` [S], ``members`` [E] (the run's member indices);
- ``fourier`` (tasks x op y mod p): ``frequency_norms`` [E, S, F] of the
  embedding, ``gini`` / ``ipr`` of them, the unembedding's ``unembed_gini`` /
  ``unembed_ipr``, ``num_key_frequencies`` [E, S] (the embedding rule of
  `analysis.fourier`, at each step), ``key_frequencies`` [E, F] (bool: fixed
  from the final saved step, as Nanda et al. 2023 do; for a transformer their
  notebook's rule, the frequencies its last MLP's neurons pick
  (`fourier.neuron_frequencies`), with ``neuron_frequency`` [E, M] (-1: dead)
  and ``neuron_frequency_share`` [E, M]; else the embedding rule, which
  ``key_frequencies_embedding`` [E, F] always holds), and for
  x+y / x-y ``restricted_loss`` / ``excluded_loss`` (train rows) and
  ``restricted_loss_test`` / ``excluded_loss_test`` and
  ``restricted_loss_all`` (every row of the table, as the paper plots the
  restricted loss over all p^2 pairs): cross-entropy of the
  logits' key-frequency part (with each class's mean logit, the official
  code's bias correction) and of the rest (`fourier.split_logits`: every key
  frequency removed at once, the paper's curve), and
  ``excluded_loss_by_frequency`` [E, S, F] (train rows, one frequency removed
  at a time: their training code's per-frequency variant);
- ``norms``: ``l1_norm``, ``l2_norm``, ``nuclear_norm``, ``effective_rank``
  and the same per matrix as ``<stat>.<layer>`` (`analysis.weights`);
- ``distance``: ``distance_from_init`` and ``cosine_distance`` (to the
  previous saved step; NaN at the first);
- ``embedding``: ``med`` (Gu et al. 2025) and, for x+y, ``rqi`` (Liu et al.
  2022, as `weights.rqi`: z-scored dimensions, mean squared parallelogram
  residual below 0.01);
- ``pca``: ``pca_explained`` [E, k] variance ratios of the trajectory's first
  k principal components over the selected steps (Notsawo et al. 2023);
- ``landscape``: ``landscape_final`` [E, S, A] train loss along theta_t + a
  (theta_final - theta_t) at ``landscape_alpha_final`` [A], and
  ``landscape_random`` [E, S, A] along a filter-normalized random direction
  at ``landscape_alpha_random`` [A];
- ``hessian``: ``hessian_max``, ``hessian_min`` and ``hessian_ratio`` =
  |min / max| of the train loss's Hessian over the weight matrices (Lanczos;
  Notsawo et al. 2023's tool; NaN where an extreme is unconverged: see
  `hessian.hessian_extremes`), and ``hessian_max_residual`` /
  ``hessian_min_residual``, each extreme's residual over its own magnitude;
- ``complexity`` (ReLU MLPs): ``local_complexity`` on train points and
  ``local_complexity_test`` (Humayun et al. 2024: units of every linear
  layer, the readout included, crossing a 50-vertex cross-polytope of
  absolute radius 0.05 at each point).

Losses here are softmax cross-entropy over the member's own train (or
validation) rows, whatever the run trained with.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, Callable, NamedTuple, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from grokjax.analysis import complexity as lc_lib
from grokjax.analysis import fourier, hessian, landscape, trajectory, weights
from grokjax.analysis.complexity import ComplexitySettings
from grokjax.analysis.hessian import HessianSettings
from grokjax.analysis.landscape import LandscapeSettings
from grokjax.analysis.trajectory import PCASettings
from grokjax.analysis.weights import RQISettings
from grokjax.config import ConfigError
from grokjax.io import plots
from grokjax.models import Parts, parts_of
from grokjax.optim.losses import cross_entropy, weighted_mean
from grokjax.objective import CLASSIFICATION, objective_of
from grokjax.settings import View, checked, names_of
from grokjax.tasks import OPERATORS, ModularSettings, TaskSettings
from grokjax.tasks.splits import member_labels

# x op y mod p whose answer is alpha x + beta y: restricted/excluded loss apply.
_LINEAR_OPS = {"x+y": (1, 1), "x-y": (1, -1)}


def _classification(config) -> str | None:
  if objective_of(config) is not CLASSIFICATION:
    return f"needs a classification task, not {config.task}"
  return None


def _over_z_p(config) -> str | None:
  if config.task not in OPERATORS:
    return f"needs a task over Z_p (x op y mod p), not {config.task}"
  return _classification(config)


def embedding(parts: Parts, params: Any, p: int, first: int = 0) -> jax.Array:
  """[p, d] the residues' embedding vectors (the model's embedding part).

  `first`: the token of element 0 (the y operand's --operand_offset).
  """
  return parts.need("embedding")(params)[first:first + p]


def input_vectors(parts: Parts, params: Any, p: int) -> jax.Array:
  """[p, d] what each residue of the first operand puts into the network:
  the embedding, or the one-hot MLP's first kernel rows (its input_vectors part)."""
  return parts.need("input_vectors")(params)[:p]


def unembedding(parts: Parts, params: Any, p: int) -> jax.Array:
  """[p, d] the residues' output vectors (rows of the transposed readout)."""
  return parts.need("readout")(params)[:, :p].T


class _Rows(NamedTuple):
  """One member's rows: its train and validation masks [N] and its labels [N]."""
  train: jax.Array
  val: jax.Array
  labels: jax.Array


def member_rows(task, split, num_members: int) -> _Rows:
  """[E] rows of the members (as trained: their own table, pool, test set)."""
  if split is None:  # linear tasks: no rows (their measures do not use them)
    ones = jnp.ones((num_members, 1), bool)
    return _Rows(ones, ones, jnp.zeros((num_members, 1), jnp.int32))
  train, val = jnp.asarray(split.is_train), jnp.asarray(split.is_val)
  labels = jax.vmap(member_labels, (None, 0))(jnp.asarray(task.labels), split)
  return _Rows(train, val, labels)


def _losses(logits, rows: _Rows):
  """Cross-entropy over the member's (train, validation) rows."""
  loss = cross_entropy(logits.astype(jnp.float32), rows.labels)
  return (weighted_mean(loss, rows.train.astype(jnp.float32)),
          weighted_mean(loss, rows.val.astype(jnp.float32)))


# What of a run's config the measures read: the task's settings (a model's
# they read through its parts).
READS = (TaskSettings, ModularSettings)


class MeasureContext:
  """A run's model, data and per-member functions (built once per run).

  config: a `View` of the run's task settings (`READS`); options: every
  measure's own settings (`Measure.settings`), by field name.
  """

  def __init__(self, snap, options: dict[str, Any]):
    self.config = View(snap.config, READS, "the measures")
    self.task, self.model = snap.task, snap.model
    self.inputs = jnp.asarray(self.task.inputs)
    self.p = self.config.p
    self.options = options
    self.parts = parts_of(snap.config)  # what the model offers the measures

  @property
  def operands(self) -> jax.Array:
    """[N, 2] the operands (a, b) of every row of the table (elements, not tokens)."""
    return jnp.asarray(self.task.operands())

  def logits(self, params):
    return self.model.apply({"params": params}, self.inputs)

  def train_loss(self, params, rows: _Rows):
    return _losses(self.logits(params), rows)[0]


def _key_frequencies(ctx: MeasureContext, final_params) -> dict:
  """Nanda et al. fix the key frequencies from the final model: from its MLP
  neurons for a transformer (their notebook's rule), else from the embedding."""
  def embedding_rule(q):
    return fourier.key_frequencies(fourier.frequency_norms(
        input_vectors(ctx.parts, q, ctx.p)))

  out = {"key_frequencies_embedding": jax.vmap(embedding_rule)(final_params)}
  if ctx.parts.neurons is None:  # the model has no MLP neurons to read
    out["key_frequencies"] = out["key_frequencies_embedding"]
    return out
  def neuron_rule(q):
    neurons = ctx.parts.neurons(ctx.model, q, ctx.inputs)
    freq, share = fourier.neuron_frequencies(neurons, ctx.operands, ctx.p)
    return fourier.key_frequencies_of_neurons(freq, ctx.p), freq, share

  (out["key_frequencies"], out["neuron_frequency"],
   out["neuron_frequency_share"]) = jax.lax.map(neuron_rule, final_params)
  return out


def _fourier(ctx: MeasureContext, params, final, rows, prepared, key):
  del final, key
  key_final = prepared["key_frequencies"]
  out = {}
  norms = fourier.frequency_norms(input_vectors(ctx.parts, params, ctx.p))
  out["frequency_norms"] = norms
  out.update(fourier.sparsity(norms))
  un = fourier.sparsity(fourier.frequency_norms(
      unembedding(ctx.parts, params, ctx.p)))
  out["unembed_gini"], out["unembed_ipr"] = un["gini"], un["ipr"]
  out["num_key_frequencies"] = jnp.sum(fourier.key_frequencies(norms))
  coefficients = _LINEAR_OPS.get(ctx.config.task)
  if coefficients is not None:
    directions = fourier.sum_directions(ctx.operands, ctx.p, coefficients)
    # The answer classes' logits: with --readout=tokens the head has one per
    # token, and Nanda et al.'s code drops the '=' logit here too
    # (`model(all_data)[:, -1, :-1]` in transformers.py).
    logits = ctx.logits(params)[:, :ctx.task.num_classes]
    part, rest = fourier.split_logits(logits, directions, key_final)
    (out["restricted_loss"], out["restricted_loss_test"]) = _losses(
        part, rows)
    # Nanda et al. 2023 plot the restricted loss over all p^2 pairs (their
    # notebook's `all_data`): every row of the table, train and test alike.
    out["restricted_loss_all"] = jnp.mean(cross_entropy(
        part.astype(jnp.float32), rows.labels))
    (out["excluded_loss"], out["excluded_loss_test"]) = _losses(rest, rows)
    out["excluded_loss_by_frequency"] = fourier.excluded_loss_by_frequency(
        logits, directions, lambda z: _losses(z, rows)[0])
  return out


def _norms(ctx: MeasureContext, params, final, rows, prepared, key):
  del ctx, final, rows, prepared, key
  return weights.weight_stats(params)


def _embedding(ctx: MeasureContext, params, final, rows, prepared, key):
  del final, rows, prepared, key
  e = embedding(ctx.parts, params, ctx.p)
  y_first = ctx.config.operand_offset  # Gu's str.py: y tokens from 60
  out = {"med": weights.med(e, embedding(ctx.parts, params, ctx.p, y_first)
                            if y_first else None)}
  if ctx.config.task == "x+y":
    out["rqi"] = weights.rqi(e, ctx.options["rqi_threshold"])
  return out


def _alphas(ctx: MeasureContext) -> tuple[jax.Array, jax.Array]:
  return LandscapeSettings(ctx.options["landscape_points"]).alphas()


def _landscape(ctx: MeasureContext, params, final, rows, prepared, key):
  del prepared
  loss = lambda q: ctx.train_loss(q, rows)
  to_final = jax.tree.map(lambda a, b: a - b, final, params)
  rand = landscape.filter_normalized_direction(key, params)
  alpha_final, alpha_random = _alphas(ctx)
  return {"landscape_final": landscape.slice_1d(
              loss, params, to_final, alpha_final),
          "landscape_random": landscape.slice_1d(
              loss, params, rand, alpha_random)}


def _hessian(ctx: MeasureContext, params, final, rows, prepared, key):
  del final, prepared
  ext = hessian.hessian_extremes(lambda q: ctx.train_loss(q, rows),
                                 params, ctx.options["lanczos_steps"], key)
  return {"hessian_max": ext.max, "hessian_min": ext.min,
          "hessian_ratio": ext.ratio,
          "hessian_max_residual": ext.max_residual,
          "hessian_min_residual": ext.min_residual}


def _complexity(ctx: MeasureContext, params, final, rows, prepared, key):
  del final, prepared
  count = ctx.options["complexity_points"]
  out = {}
  for name, mask in (("local_complexity", rows.train),
                     ("local_complexity_test", rows.val)):
    # The first `count` rows of the set (by index; the split is random).
    order = jnp.argsort(~mask, stable=True)[:count]
    x, layers = ctx.parts.need("relu_layers")(ctx.model, params,
                                              ctx.inputs[order])
    radius = ctx.options["complexity_radius"]
    if ctx.options["complexity_radius_scale"] == "data_rms":  # the variant
      radius = radius * jnp.sqrt(jnp.mean(jnp.sum(
          jnp.square(x.astype(jnp.float32)), axis=-1)))
    out[name] = lc_lib.local_complexity(layers, x, radius, key,
                                        ctx.options["complexity_vertices"])
  return out


@dataclasses.dataclass(frozen=True)
class Measure:
  """One progress measure: when it applies and how it is computed and shown.

  applies: config -> None, or why it does not apply (one line): the task
    (a `View` of the task's settings, `READS`).
  needs: the model parts it reads (`grokjax.models.parts`); a model that
    does not offer one makes the measure inapplicable, said in one line.
  per_step: (ctx, params, final, rows, prepared, key) -> {name: array} for
    one member at one saved step (traced; vmapped over members, or mapped
    one member at a time when `heavy`).
  prepare: (ctx, final params [E]) -> {name: [E, ...]} computed once from
    the last selected step and passed to per_step as `prepared`.
  host_step: (params [E], previous [E] or None, initial [E] or None) ->
    {name: [E]} computed on the host between steps (distances).
  trajectory: (ctx, flat params [E, S, P]) -> {name: [E, ...]} over all
    selected steps (trajectory PCA).
  extras: ctx -> {name: array} of run-level outputs (a slice's abscissae).
  key_slot: which of the per-step key's `KEY_SLOTS` splits it draws from.
  shown: the scalar outputs printed per member by the report.
  plot: (path of plots/, measures, t_mem, t_gen) -> written file, or None.
  settings: its own settings blocks (`grokjax.settings`; e.g. the Hessian's
    Lanczos steps): keyword options of `compute_measures` and flags of
    experiments/analyze.py, read from `ctx.options`.
  """
  name: str
  applies: Callable[[Any], str | None]
  per_step: Callable[..., dict] | None = None
  prepare: Callable[..., dict] | None = None
  host_step: Callable[..., dict] | None = None
  trajectory: Callable[..., dict] | None = None
  heavy: bool = False
  key_slot: int | None = None
  extras: Callable[..., dict] | None = None
  shown: tuple[str, ...] = ()
  plot: Callable[..., str] | None = None
  needs: tuple[str, ...] = ()
  settings: tuple[type, ...] = ()


def _plot_frequency_norms(folder, m, t_mem, t_gen) -> str:
  path = f"{folder}/frequency_norms.png"
  plots.plot_frequency_norms(path, m, t_mem, t_gen)
  return path


def _plot_landscape(folder, m, t_mem, t_gen) -> str:
  del t_mem, t_gen
  path = f"{folder}/landscape.png"
  plots.plot_landscape(path, m)
  return path


def _pca(ctx: MeasureContext, trajectory_ExSxP) -> dict:
  return {"pca_explained": np.asarray(jax.vmap(functools.partial(
      trajectory.trajectory_pca, k=ctx.options["pca_components"]))(
          jnp.asarray(trajectory_ExSxP)))}


def _distances(params, previous, init_params) -> dict[str, np.ndarray]:
  out = {}
  if init_params is not None:
    out["distance_from_init"] = np.asarray(jax.vmap(weights.distance)(
        params, init_params))
  e = jax.tree.leaves(params)[0].shape[0]
  out["cosine_distance"] = (np.full(e, np.nan, np.float32) if previous is None
                            else np.asarray(jax.vmap(weights.cosine_distance)(
                                params, previous)))
  return out


KEY_SLOTS = 3  # per-step keys are split this many ways (see Measure.key_slot)

REGISTRY = {m.name: m for m in (
    Measure("fourier", _over_z_p, _fourier, prepare=_key_frequencies,
            needs=("input_vectors", "readout"),
            shown=("gini", "restricted_loss", "excluded_loss",
                   "excluded_loss_test"), plot=_plot_frequency_norms),
    Measure("norms", lambda config: None, _norms,
            shown=("l2_norm", "effective_rank")),
    Measure("distance", lambda config: None, host_step=lambda p, prev, init:
            _distances(p, prev, init)),
    Measure("embedding", _over_z_p, _embedding, shown=("med",),
            needs=("embedding",), settings=(RQISettings,)),
    Measure("pca", lambda config: None, trajectory=_pca,
            settings=(PCASettings,)),
    Measure("landscape", _classification, _landscape, heavy=True,
            key_slot=0, plot=_plot_landscape, extras=lambda ctx: dict(zip(
                ("landscape_alpha_final", "landscape_alpha_random"),
                map(np.asarray, _alphas(ctx)))),
            settings=(LandscapeSettings,)),
    Measure("hessian", _classification, _hessian, heavy=True, key_slot=1,
            shown=("hessian_max",), settings=(HessianSettings,)),
    Measure("complexity", _classification, _complexity, key_slot=2,
            needs=("relu_layers",),
            shown=("local_complexity",), settings=(ComplexitySettings,)),
)}
MEASURES = tuple(REGISTRY)  # the built-in ones (a row added later is in REGISTRY)


def settings_blocks() -> tuple[type, ...]:
  """Every registered measure's settings blocks, in registry order."""
  return tuple(dict.fromkeys(b for m in REGISTRY.values() for b in m.settings))


def measure_options(options: dict[str, Any]) -> dict[str, Any]:
  """Every measure setting (`settings_blocks`), `options` over the defaults,
  each block checked; ConfigError naming the option for an unknown one or a
  value out of range."""
  blocks = settings_blocks()
  unknown = sorted(set(options) - set(names_of(*blocks)))
  if unknown:
    raise ConfigError(f"--{unknown[0]}: not a setting of any measure; the "
                      f"measures' are {', '.join(names_of(*blocks))}")
  out = {}
  for block in blocks:
    try:
      instance = checked(block, {k: v for k, v in options.items()
                                 if k in names_of(block)})
    except ValueError as e:
      raise ConfigError(str(e)) from None
    out.update(dataclasses.asdict(instance))
  return out


def _why_not(measure: Measure, config) -> str | None:
  """None when `measure` applies to `config`'s task and model, else why not."""
  return (measure.applies(View(config, READS, f"measure {measure.name}"))
          or parts_of(config).missing(measure.needs))


def check_measures(names: Sequence[str], config) -> list[str]:
  """The measures to run, in registry order; ConfigError for an unknown or inapplicable one."""
  if list(names) == ["all"]:
    names = [n for n in REGISTRY if _why_not(REGISTRY[n], config) is None]
  for n in names:
    if n not in REGISTRY:
      raise ConfigError(f"--measures={n}: unknown; choose from "
                        f"{', '.join(REGISTRY)} (or all)")
    why = _why_not(REGISTRY[n], config)
    if why:
      raise ConfigError(f"--measures={n}: {why}; drop it from --measures")
  return [n for n in REGISTRY if n in names]


__all__ = ["MEASURES", "REGISTRY", "Measure", "KEY_SLOTS", "check_measures",
           "READS", "settings_blocks", "measure_options",
           "embedding", "input_vectors", "unembedding"]
