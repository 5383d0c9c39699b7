"""The host loop of a sweep: chunks of K vmapped steps, histories, progress, run directory.

`sweep(config)` is the whole program a notebook needs; `experiments/sweep.py`
only turns flags into a Config and calls it.
"""

from __future__ import annotations

import dataclasses
import os
import time
from typing import Callable

import jax
import numpy as np

from grokjax import analysis
from grokjax import io as gio
from grokjax.config import Config
from grokjax.tasks import Task, make_task
from grokjax.train.state import Hypers, MemberState, count_params, init_ensemble
from grokjax.train.step import (EVAL_FIELDS, Data, compile_sweep_chunk,
                                compile_sweep_eval, eval_schedule,
                                padded_eval_mask)


@dataclasses.dataclass
class SweepResult:
  """What a sweep returns.

  history: ``step_train_loss``/``step_train_acc`` [E, T] (the batch trained on at
    each step), ``eval_step`` [Te], and ``train_loss``, ``train_acc``,
    ``val_loss``, ``val_acc``, ``param_norm`` [E, Te].
  summary: one dict per member (see `analysis.summarize`).
  members: one dict per member with its swept values.
  state: the final MemberState, with a leading [E] axis, on device.
  """
  config: Config
  task: Task
  history: dict[str, np.ndarray]
  summary: list[dict]
  members: list[dict]
  state: MemberState
  hypers: Hypers
  workdir: str | None
  seconds: float


def sweep(config: Config, workdir: str | None = None,
          log: Callable[[str], None] | None = print) -> SweepResult:
  """Trains every member of the config's grid in one compiled program.

  Args:
    config: the sweep; validated first (ConfigError before any compilation).
    workdir: where to write the run directory (None: write nothing).
    log: called with one progress line per chunk (None: silent).
  """
  log = log or (lambda _: None)
  config.validate()
  task = make_task(config.task, config.p, op_token=config.op_token,
                   symmetric=config.symmetric)
  ens = init_ensemble(config, task)
  grid, model, hypers, max_n = ens.grid, ens.model, ens.hypers, ens.max_n_train
  state, split = ens.state, ens.split
  members = grid.rows()
  E = len(members)

  eval_steps = eval_schedule(config)
  K = min(config.chunk_steps, config.steps)
  n_chunks = -(-config.steps // K)
  inputs, labels = task.device_arrays()
  data = Data(inputs, labels,
              jax.device_put(padded_eval_mask(eval_steps, n_chunks * K)))
  n_params = count_params(jax.tree.map(lambda x: x[0], state.params))
  chunk_fn, chunk_traces = compile_sweep_chunk(model.apply, config, K)
  eval_fn = compile_sweep_eval(model.apply)

  writer = None
  if workdir:
    os.makedirs(workdir, exist_ok=True)
    gio.write_config(workdir, config.to_dict(), grid.axes, {
        "num_members": E, "num_examples": task.num_examples,
        "max_n_train": max_n, "num_params_per_member": n_params,
        "chunk_steps": K})
    gio.write_csv(os.path.join(workdir, "members.csv"),
                  [{"member": i, **m} for i, m in enumerate(members)])
    writer = gio.MetricsWriter(workdir)
  log(f"grokjax: {E} members x {config.steps} steps, task {task.name} "
      f"(N={task.num_examples}, max n_train={max_n}), {config.model} with "
      f"{n_params:,} params/member, {jax.device_count()} "
      f"{jax.default_backend()} device(s)")

  step_loss, step_acc = [], []
  evals: dict[str, list[np.ndarray]] = {k: [] for k in EVAL_FIELDS}
  eval_step_list: list[np.ndarray] = []
  memorized, generalized = np.zeros(E, bool), np.zeros(E, bool)
  t0 = time.time()
  done = 0
  with jax.transfer_guard("disallow"):
    for c in range(n_chunks):
      start = c * K
      state, (rec, ev) = chunk_fn(state, hypers, split, data,
                                  jax.device_put(np.int32(start)))
      rec, ev = jax.device_get((rec, ev))
      end = min(start + K, config.steps)
      step_loss.append(rec.train_loss[:, : end - start])
      step_acc.append(rec.train_acc[:, : end - start])
      here = eval_steps[(eval_steps >= start) & (eval_steps < end)]
      eval_step_list.append(here)
      for name in EVAL_FIELDS:
        evals[name].append(getattr(ev, name)[:, here - start])
      if writer:
        for j, s in enumerate(here):
          writer.write({"step": s, **{name: evals[name][-1][:, j]
                                      for name in EVAL_FIELDS}})
      memorized |= (evals["train_acc"][-1] >= config.mem_threshold).any(axis=1)
      generalized |= (evals["val_acc"][-1] >= config.gen_threshold).any(axis=1)
      n_mem, n_gen = int(memorized.sum()), int(generalized.sum())
      done = end
      elapsed = time.time() - t0
      rate = done / max(elapsed, 1e-9)
      eta = (config.steps - done) / max(rate, 1e-9)
      log(f"step {done:>7}/{config.steps}  {rate:7.1f} steps/s  "
          f"{rate * E:9.0f} member-steps/s  ETA {eta:6.0f}s  "
          f"memorized {n_mem}/{E}  generalized {n_gen}/{E}")
      if writer:
        writer.write({"event": "progress", "step": done, "seconds": elapsed,
                      "memorized": n_mem, "generalized": n_gen})
      if config.stop_when_generalized and n_gen == E and done < config.steps:
        log(f"every member generalized: stopping at step {done}")
        break
    # The parameters after the last update (step `done`) are evaluated once more.
    final = jax.device_get(eval_fn(state.params, split, data))
  seconds = time.time() - t0
  eval_step_list.append(np.array([done]))
  for name in EVAL_FIELDS:
    evals[name].append(np.asarray(getattr(final, name))[:, None])
  if writer:
    writer.write({"step": done, **{name: evals[name][-1][:, 0]
                                   for name in EVAL_FIELDS}})
    writer.close()
  if chunk_traces.count != 1:
    raise RuntimeError(f"the sweep's chunk was traced {chunk_traces.count} "
                       "times; it must compile once")

  history = {"step_train_loss": np.concatenate(step_loss, axis=1),
             "step_train_acc": np.concatenate(step_acc, axis=1),
             "eval_step": np.concatenate(eval_step_list).astype(np.int64),
             **{k: np.concatenate(v, axis=1) for k, v in evals.items()}}
  diverged = np.asarray(jax.device_get(state.diverged_step))
  summary = analysis.summarize(
      history, members, diverged, mem_threshold=config.mem_threshold,
      gen_threshold=config.gen_threshold,
      phase_threshold=config.phase_threshold, phase_gap=config.phase_gap)
  if workdir:
    gio.write_history(workdir, history)
    gio.write_csv(os.path.join(workdir, "summary.csv"), summary)
    gio.write_plots(workdir, history, summary, grid.varied)
  return SweepResult(config, task, history, summary, members, state, hypers,
                     workdir, seconds)


__all__ = ["SweepResult", "sweep"]
