"""The host loop of a sweep: member groups, chunks of K vmapped steps, checkpoints, resume.

`sweep(config)` is the whole program a notebook needs; `experiments/sweep.py`
only turns flags into a Config and calls it.

Per sweep: the member axis is padded to a multiple of the device count and
sharded over a 1-D mesh of every device of every process; if the members do
not fit in device memory they are trained in sequential groups of equal shape
(one compilation). Per chunk: the records come back to the host, process 0
writes them to ``records/``, and every ``checkpoint_every`` steps the group's
state goes to an orbax checkpoint. SIGTERM/SIGINT finish the chunk, save, and
raise `Preempted`; running the same sweep on the same workdir resumes.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import signal
import time
from typing import Callable

import jax
import numpy as np
from jax.experimental import multihost_utils

from grokjax import analysis
from grokjax import io as gio
from grokjax.io import snapshots as snap_lib
from grokjax.io.rundir import RunDir, group_history, merge_groups
from grokjax.config import Config, ConfigError, Grid
from grokjax.models import make_model
from grokjax.objective import objective_of
from grokjax.tasks import LinearTask, Task
from grokjax.train import checkpoint as ckpt_lib
from grokjax.train import memory
from grokjax.train import sharding as shard_lib
from grokjax.train.state import (Data, Hypers, MemberState, abstract_state,
                                 count_params, init_group, make_hypers,
                                 member_splits)
from grokjax.train.step import (compile_sweep_chunk, compile_sweep_eval,
                                eval_schedule, padded_eval_mask)


class Preempted(Exception):
  """SIGTERM/SIGINT stopped the sweep after saving a checkpoint at `step`."""

  def __init__(self, group: int, step: int, workdir: str | None):
    self.group, self.step, self.workdir = group, step, workdir
    where = f"; a checkpoint is in {workdir}" if workdir else ""
    super().__init__(f"stopped by a signal at step {step} of group {group}"
                     f"{where}; run the same command again to resume")


@dataclasses.dataclass
class SweepResult:
  """What a sweep returns.

  history: ``record_step`` [T] (every --record_every-th step) with
    ``step_train_loss``/``step_train_acc`` [E, T] (the batch trained on at
    that step), ``eval_step`` [Te], and ``train_loss``, ``train_acc``,
    ``val_loss``, ``val_acc``, ``param_norm``, ``train_zero_loss`` [E, Te].
    Linear tasks have ``*_error`` instead of ``*_acc`` (no train_zero_loss).
  summary: one dict per member (see `analysis.summarize`).
  members: one dict per member with its swept values.
  state: the final MemberState with a leading [E] axis: global device arrays
    when all members trained as one group, host numpy arrays otherwise.
  groups: how many sequential member groups trained (1 when all fit at once).
  On processes other than 0 of a multi-host run, history and summary are empty:
  process 0 gathers and writes them.
  """
  config: Config
  task: Task | LinearTask
  history: dict[str, np.ndarray]
  summary: list[dict]
  members: list[dict]
  state: MemberState
  hypers: Hypers
  workdir: str | None
  seconds: float
  groups: int = 1


class _SignalFlag:
  """Turns SIGTERM/SIGINT into a flag the loop reads between chunks.

  A second SIGINT restores the default handler's behaviour (KeyboardInterrupt).
  """

  def __init__(self, log):
    self.raised, self._log, self._old = None, log, {}

  def _handle(self, signum, frame):
    del frame
    if self.raised is not None and signum == signal.SIGINT:
      raise KeyboardInterrupt
    self.raised = signal.Signals(signum).name
    self._log(f"{self.raised}: saving a checkpoint after this chunk "
              "(SIGINT again to abort without one)")

  @contextlib.contextmanager
  def installed(self):
    try:
      for s in (signal.SIGTERM, signal.SIGINT):
        self._old[s] = signal.signal(s, self._handle)
    except ValueError:  # not the main thread: no handlers, no preemption
      pass
    try:
      yield self
    finally:
      for s, old in self._old.items():
        signal.signal(s, old)


def check_resumable(workdir: str, config: Config) -> bool:
  """True if `workdir` holds a run of this config; ConfigError if of another."""
  run = RunDir(workdir)
  if not run.has_run():
    return False
  diffs = config.differences(run.config())
  if diffs:
    raise ConfigError(
        f"--workdir={workdir} holds a run with other flags ({'; '.join(diffs)}"
        " [this run vs stored]); resume with the stored flags, or pass "
        "--overwrite or another --workdir")
  return True


def _chunk_records(config: Config, rec, ev, start: int, end: int,
                   eval_steps: np.ndarray) -> dict[str, np.ndarray]:
  """Host records of steps [start, end): every `record_every`-th step record, the evals due."""
  every = config.record_every
  kept = (np.arange(-(-start // every) * every, end, every, dtype=np.int64)
          if every else np.zeros(0, np.int64))
  here = eval_steps[(eval_steps >= start) & (eval_steps < end)]
  return {"record_step": kept,
          **{f"step_{k}": getattr(rec, k)[:, kept - start] for k in rec._fields},
          "eval_step": here,
          **{k: getattr(ev, k)[:, here - start] for k in ev._fields}}


def _label_noise_record(config: Config, task, num_members: int) -> dict:
  """config.json's record of --label_noise: the corrupted rows, and each member's corrupted share of its train rows."""
  if getattr(task, "corrupted", None) is None:
    return {}
  is_train = np.asarray(member_splits(config, task,
                                      np.arange(num_members)).is_train)
  share = (is_train & task.corrupted[None]).sum(1) / np.maximum(
      is_train.sum(1), 1)
  return {"label_noise": {"corrupted_rows": int(task.corrupted.sum()),
                          "corrupted_train_fraction": share.tolist()}}


def sweep(config: Config, workdir: str | None = None,
          log: Callable[[str], None] | None = print,
          devices: list | None = None, overwrite: bool = False) -> SweepResult:
  """Trains every member of the config's grid in one compiled program.

  Args:
    config: the sweep; validated first (ConfigError before any compilation).
    workdir: the run directory (None: write nothing, no checkpoints). If it
      holds a run of the same config, that run resumes from its latest
      checkpoint; a run of another config raises ConfigError.
    log: called with one progress line per chunk (None: silent). Only
      process 0 logs.
    devices: the devices whose mesh shards the members (default: all).
    overwrite: replace the run in `workdir` (only its RUN_FILES), once every
      check has passed; never resume it.

  Raises:
    ConfigError: bad settings, a mismatched run directory, or a sweep that
      cannot fit in device memory.
    Preempted: SIGTERM/SIGINT arrived; the checkpoint is saved.
  """
  primary = shard_lib.is_primary()
  log = log if (log and primary) else (lambda _: None)
  config.validate()
  if config.precision == "float64" and not jax.config.jax_enable_x64:
    raise ConfigError("--precision=float64: 64-bit JAX is off; set "
                      "JAX_ENABLE_X64=1 or call jax.config.update("
                      "'jax_enable_x64', True) before the sweep "
                      "(experiments/sweep.py does)")
  task = config.build_task()
  grid = Grid.from_config(config)
  members = grid.rows()
  E = len(members)
  hypers_host = make_hypers(grid, task, config.train_size)
  max_n = int(hypers_host.n_train.max())
  model = make_model(config, task)
  mesh = shard_lib.member_mesh(devices)
  D = mesh.size
  msh, rep = shard_lib.member_sharding(mesh), shard_lib.replicated(mesh)
  resuming = bool(workdir) and not overwrite and check_resumable(workdir,
                                                                  config)
  n_params = count_params(jax.eval_shape(
      lambda: model.init(jax.random.key(0), task.inputs[:1]))["params"])

  ckpts = restored = group_size = None
  if resuming:
    # The group size is the checkpoint's: read it before planning. (There are
    # at most E groups, so the manager needs no plan.)
    ckpts = ckpt_lib.RunCheckpoints(workdir, config.steps, E)
    group_size = ckpts.group_size()
  if group_size is not None:
    if group_size % D:
      raise ConfigError(f"--workdir={workdir}: its checkpoint trains groups of "
                        f"{group_size} members, which {D} devices cannot "
                        "share evenly; resume on a device count that divides "
                        "it, or pass --overwrite")
    plan = memory.GroupPlan(group_size, -(-E // group_size), None, None)
  else:
    plan = memory.plan_groups(
        config, E, D, lambda: memory.estimate(config, task, max_n),
        memory.rough_bytes_per_member(config, task, max_n, n_params))
  G, n_groups = plan.group_size, plan.num_groups
  hypers_pad = shard_lib.pad_members(hypers_host, plan.padded_members)

  eval_steps = eval_schedule(config)
  snapshot_steps = (snap_lib.snapshot_schedule(config) if workdir
                    else np.zeros(0, np.int64))
  K = min(config.chunk_steps, config.steps)
  n_chunks = -(-config.steps // K)
  data = shard_lib.global_array(
      Data(task.inputs, task.labels, padded_eval_mask(eval_steps, n_chunks * K),
           getattr(task, "train_labels", None)),
      rep)
  chunk_fn, chunk_traces = compile_sweep_chunk(model.apply, config, K, mesh)
  eval_fn = compile_sweep_eval(model.apply, config, mesh)
  objective = objective_of(config)
  fields = objective.eval_fields

  def group_state(g):
    hyp = jax.tree.map(lambda x: x[g * G:(g + 1) * G], hypers_pad)
    state, split = init_group(model, config, task, max_n, hyp, msh)
    return shard_lib.global_array(hyp, msh), state, split

  # Every group's state has the same shapes and sharding.
  abstract = abstract_state(config, task, max_n, G, msh)
  writer = None
  run = RunDir(workdir) if workdir else None
  if workdir:
    if overwrite and primary:
      run.clear()
    if overwrite and jax.process_count() > 1:
      multihost_utils.sync_global_devices("grokjax: run directory cleared")
    os.makedirs(workdir, exist_ok=True)
    if resuming:
      restored = ckpts.restore(abstract, log)
    else:
      ckpts = ckpt_lib.RunCheckpoints(workdir, config.steps, E)
  if workdir and primary:
    if not resuming:
      run.write_config(config, grid, {
          "num_members": E, "num_examples": task.num_examples,
          "max_n_train": max_n, "num_params_per_member": n_params,
          "chunk_steps": K, **_label_noise_record(config, task, E)})
      run.write_members(members)
    # Lines logged after the checkpoint we resume from are logged again: drop
    # them (all group lines when the run died before its first checkpoint).
    keep = None
    if restored:
      keep = (restored[0]["group"], restored[0]["step"], restored[0]["finished"])
    elif resuming:
      keep = (0, 0, False)
    writer = gio.MetricsWriter(workdir, keep_below=keep)
    writer.write({"event": "resume" if restored else "start",
                  "step": restored[0]["step"] if restored else 0,
                  "devices": gio.rundir.devices(), "group_size": G,
                  "groups": n_groups})
  fit = f"; {n_groups} groups of {G} members" if n_groups > 1 else ""
  if plan.estimate is not None:
    fit += (f" (estimate {plan.estimate.bytes_for(G // D) / memory.GiB:.2f} of "
            f"{plan.budget / memory.GiB:.2f} GiB per device)")
  log(f"grokjax: {E} members x {config.steps} steps, task {task.name} "
      f"(N={task.num_examples}, max n_train={max_n}), {config.model} with "
      f"{n_params:,} params/member, {D} {jax.default_backend()} device(s) in "
      f"{jax.process_count()} process(es){fit}")
  if restored:
    p = restored[0]
    log(f"resuming from the checkpoint at step {p['step']} of group "
        f"{p['group']}{' (finished)' if p['finished'] else ''}")

  start_group = 0
  if restored and restored[0]["finished"]:
    start_group = restored[0]["group"] + 1
  elif restored:
    start_group = restored[0]["group"]
  parts, finals, div = [], {}, {}
  t0, flag = time.time(), _SignalFlag(log)
  steps_run = 0
  with flag.installed():
    for g in range(n_groups):
      lo, hi = g * G, min((g + 1) * G, E)  # real members of this group
      if g < start_group:  # finished before this call: its records are on disk
        if primary:
          final = run.read_final(g)
          parts.append(group_history(run.read_records(g, config.steps + 1),
                                     final))
          div[g] = final["diverged_step"]
        continue
      hyp_dev, state, split = group_state(g)
      done, chunks = 0, []
      mem, gen = np.zeros(G, bool), np.zeros(G, bool)
      if restored and restored[0]["group"] == g:
        progress, state = restored
        done = progress["step"]
        mem[:], gen[:] = progress["memorized"], progress["generalized"]
        if primary:
          chunks = run.read_records(g, done)
      last_save = done
      snaps = None
      if snapshot_steps.size:
        snaps = snap_lib.SnapshotWriter(workdir, g, config, range(lo, hi), G)
        if done == 0:
          snaps.save(0, state)
      while done < config.steps:
        start = done
        # A chunk stops early at a snapshot step (same program: `stop` is an argument).
        end = snap_lib.next_stop(snapshot_steps, start,
                                 min(start + K, config.steps))
        start_dev, stop_dev = (shard_lib.global_array(np.int32(v), rep)
                               for v in (start, end))
        with jax.transfer_guard("disallow"):  # nothing implicit in the hot loop
          state, (rec, ev) = chunk_fn(state, hyp_dev, split, data, start_dev,
                                      stop_dev)
        rec, ev = shard_lib.to_host((rec, ev))
        if snaps and end in snapshot_steps:
          snaps.save(end, state)
        chunk = _chunk_records(config, rec, ev, start, end, eval_steps)
        chunks.append(chunk)
        if primary and workdir:
          run.write_records(g, start, chunk)
          for j, s in enumerate(chunk["eval_step"]):
            writer.write({"group": g, "step": s, **{
                k: chunk[k][: hi - lo, j] for k in fields}})
        reached_mem, reached_gen = objective.reached(
            chunk, objective.thresholds(config))
        mem |= reached_mem.any(axis=1)
        gen |= reached_gen.any(axis=1)
        done, steps_run = end, steps_run + end - start
        n_mem, n_gen = int(mem[: hi - lo].sum()), int(gen[: hi - lo].sum())
        elapsed = time.time() - t0
        rate = steps_run / max(elapsed, 1e-9)
        eta = ((n_groups - g) * config.steps - done) / max(rate, 1e-9)
        where = f"group {g + 1}/{n_groups} " if n_groups > 1 else ""
        log(f"{where}step {done:>7}/{config.steps}  {rate:7.1f} steps/s  "
            f"{rate * (hi - lo):9.0f} member-steps/s  ETA {eta:6.0f}s  "
            f"memorized {n_mem}/{hi - lo}  generalized {n_gen}/{hi - lo}")
        if writer:
          writer.write({"event": "progress", "group": g, "step": done,
                        "seconds": elapsed, "memorized": n_mem,
                        "generalized": n_gen})
        stop = (config.stop_when_generalized and n_gen == hi - lo
                and done < config.steps)
        preempted = (shard_lib.any_process(flag.raised is not None)
                     and done < config.steps and not stop)
        every = config.checkpoint_every
        due = every and done // every > last_save // every
        if ckpts and (due or preempted) and done < config.steps and not stop:
          ckpts.save(state, {"group": g, "step": done, "finished": False,
                             "group_size": G, "memorized": mem.tolist(),
                             "generalized": gen.tolist()})
          last_save = done
        if preempted:
          if ckpts:
            ckpts.wait()
          if snaps:
            snaps.close()
          if writer:
            writer.write({"event": "preempted", "group": g, "step": done,
                          "signal": flag.raised})
            writer.close()
          raise Preempted(g, done, workdir)
        if stop:
          log(f"every member generalized: stopping at step {done}")
          break
      # The parameters after the last update (step `done`) are evaluated once more.
      ev = shard_lib.to_host(eval_fn(state.params, split, data))
      final = {"eval_step": np.array([done]),
               "diverged_step": shard_lib.to_host(state.diverged_step),
               **{k: np.asarray(getattr(ev, k))[:, None] for k in fields}}
      if primary and workdir:
        run.write_records(g, "final", final)
        writer.write({"group": g, "step": done, **{
            k: final[k][: hi - lo, 0] for k in fields}})
      if snaps:  # the last parameters, wherever the group stopped
        snaps.save(done, state)
        snaps.close()
      if ckpts:
        ckpts.save(state, {"group": g, "step": done, "finished": True,
                           "group_size": G, "memorized": mem.tolist(),
                           "generalized": gen.tolist()})
      if primary:
        parts.append(group_history(chunks, final))
      div[g] = final["diverged_step"]
      finals[g] = state if n_groups == 1 else shard_lib.to_host(state)
    if ckpts:
      ckpts.wait()
  seconds = time.time() - t0
  if writer:
    writer.close()
  if steps_run and chunk_traces.count != 1:
    raise RuntimeError(f"the sweep's chunk was traced {chunk_traces.count} "
                       "times; it must compile once")

  for g in range(n_groups):
    if g not in finals:  # finished before this call: its final checkpoint
      restored_state = ckpts.restore_final(g, abstract)
      finals[g] = (restored_state if n_groups == 1 else
                   shard_lib.to_host(restored_state))
  if n_groups == 1:
    state = finals[0]
    if G > E:
      state = jax.tree.map(lambda x: x[:E], state)
  else:
    state = jax.tree.map(lambda *xs: np.concatenate(xs)[:E],
                         *[finals[g] for g in range(n_groups)])
  if ckpts:
    ckpts.close()
  history, summary = {}, []
  if primary:
    history = merge_groups(parts, E)
    diverged = np.concatenate([div[g] for g in range(n_groups)])[:E]
    summary = analysis.summarize_config(history, members, diverged, config)
    if workdir:
      run.write_history(history)
      run.write_summary(summary)
      gio.write_plots(workdir, history, summary, grid.varied)
  return SweepResult(config, task, history, summary, members, state,
                     jax.tree.map(lambda x: x[:E], hypers_host), workdir,
                     seconds, n_groups)


__all__ = ["SweepResult", "Preempted", "sweep", "check_resumable"]
