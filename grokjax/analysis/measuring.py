"""Measuring a run: every chosen measure of `measures.REGISTRY` over a run's
saved parameter snapshots (`compute_measures`, one compiled vmapped program
per step for the members), and `measures.npz` written and read."""

from __future__ import annotations

import functools
from typing import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from grokjax.analysis import weights
from grokjax.config import ConfigError
from grokjax.io import snapshots
from grokjax.io.rundir import write_npz
from grokjax.analysis.measures import (KEY_SLOTS, REGISTRY, Measure,
                                      MeasureContext, check_measures,
                                      measure_options, member_rows)


def _per_step(ctx: MeasureContext, names, params, final, rows, prepared, key):
  """Every chosen per-step measure of one member at one step."""
  out = {}
  keys = jax.random.split(key, KEY_SLOTS)
  for name in names:
    m = REGISTRY[name]
    if m.per_step is not None:
      out.update(m.per_step(ctx, params, final, rows, prepared,
                            None if m.key_slot is None else keys[m.key_slot]))
  return out


def _select_steps(workdir: str, steps: Sequence[int] | None) -> np.ndarray:
  saved = snapshots.snapshot_steps(workdir)
  steps = saved if steps is None else np.asarray(sorted(set(steps)), np.int64)
  missing = sorted(set(steps.tolist()) - set(saved.tolist()))
  if missing:
    raise ConfigError(f"--steps={missing[0]}: no snapshot there; saved "
                      f"steps are {', '.join(map(str, saved))}")
  if not steps.size:
    raise ConfigError(f"--workdir={workdir}: no snapshot saved yet")
  return steps


def _batched(ctx: MeasureContext, chosen: list[Measure]):
  """jit of the per-step measures over members: vmapped, or mapped one member
  at a time when one is heavy (a Lanczos basis, a landscape's forward passes)."""
  per_step = functools.partial(_per_step, ctx, tuple(m.name for m in chosen))
  if any(m.heavy for m in chosen):
    return jax.jit(lambda *a: jax.lax.map(lambda x: per_step(*x), a))
  return jax.jit(jax.vmap(per_step))


def compute_measures(workdir: str, names: Sequence[str],
                     members: Sequence[int] | None = None,
                     steps: Sequence[int] | None = None, *,
                     seed: int = 0,
                     log: Callable[[str], None] | None = print,
                     **options) -> dict[str, np.ndarray]:
  """The measures.npz arrays of a run (see the module doc).

  members: run member indices (default all); steps: saved steps (default
  all). Key frequencies, theta_final and the PCA use the last selected step.
  options: the measures' own settings (`measures.settings_blocks`: e.g.
  lanczos_steps, pca_components, complexity_radius: the local complexity's
  neighbourhood radius, absolute (Humayun et al. 2024; 0.05 is their MNIST
  runs' smallest), or with complexity_radius_scale="data_rms" (a variant)
  relative to the RMS norm of the first layer's inputs); ConfigError for an
  unknown one or a value out of range.
  """
  options = measure_options(options)
  log = log or (lambda _: None)
  reader = snapshots.SnapshotReader(workdir)
  try:
    chosen = [REGISTRY[n] for n in check_measures(names, reader.config)]
    steps = _select_steps(workdir, steps)
    final = reader.load(int(steps[-1]), members)
    ctx = MeasureContext(final, options)
    rows = member_rows(ctx.task, final.split, len(final.members))
    prepared = {}
    for m in chosen:
      if m.prepare is not None:
        prepared.update(m.prepare(ctx, final.params))
    member_keys = jax.vmap(lambda i: jax.random.fold_in(
        jax.random.key(seed), i))(jnp.asarray(final.members))
    batched = _batched(ctx, chosen)
    initial = (reader.load(0, final.members).params
               if any(m.host_step for m in chosen)
               and 0 in snapshots.snapshot_steps(workdir) else None)
    columns: dict[str, list] = {}
    flats, previous = [], None
    for j, step in enumerate(steps.tolist()):
      snap = final if step == steps[-1] else reader.load(step, final.members)
      keys = jax.vmap(jax.random.fold_in, (0, None))(member_keys, step)
      values = jax.device_get(batched(snap.params, final.params, rows,
                                      prepared, keys))
      for m in chosen:
        if m.host_step is not None:
          values.update(m.host_step(snap.params, previous, initial))
      previous = snap.params
      if any(m.trajectory for m in chosen):
        flats.append(np.asarray(jax.vmap(weights.flat)(snap.params)))
      for k, v in values.items():
        columns.setdefault(k, []).append(np.asarray(v))
      log(f"measures: step {step} ({j + 1}/{len(steps)})")
  finally:
    reader.close()
  out = {"step": steps, "members": np.asarray(final.members, np.int64)}
  for k, vs in columns.items():
    out[k] = np.stack(vs, axis=1).astype(np.float32)  # [E, S, ...]
  out.update({k: np.asarray(v) for k, v in prepared.items()})
  for m in chosen:
    if m.trajectory is not None:
      out.update(m.trajectory(ctx, np.stack(flats, axis=1)))  # [E, S, P]
    if m.extras is not None:
      out.update(m.extras(ctx))
  return out


def write_measures(path: str, measures: dict[str, np.ndarray]) -> None:
  """measures.npz, written atomically."""
  write_npz(path, measures)


# [E, ...] arrays of the final model or of the whole trajectory, not per step.
PER_MEMBER = ("key_frequencies", "key_frequencies_embedding",
              "neuron_frequency", "neuron_frequency_share", "pca_explained")


def scalar_measures(measures: dict[str, np.ndarray]) -> list[str]:
  """The [E, S] whole-network measures (what the plots show), in a stable order."""
  s = len(measures["step"])
  return [k for k, v in measures.items()
          if v.ndim == 2 and v.shape[1] == s and "." not in k
          and k not in PER_MEMBER]


__all__ = ["compute_measures", "write_measures", "scalar_measures"]
