"""The group and chunk loops of a sweep: the run directory opened (cleared,
restored or started), each group trained chunk by chunk (records, progress,
checkpoints, snapshots, a signal's checkpoint), and the finished run's
history, summary and plots."""

from __future__ import annotations

import os
import time

import jax
import numpy as np
from jax.experimental import multihost_utils

from grokjax import analysis
from grokjax import io as gio
from grokjax.io import snapshots as snap_lib
from grokjax.io import tensorboard as tb_lib
from grokjax.io.rundir import RunDir, group_history, merge_groups
from grokjax.config import Config
from grokjax.layout import scatter
from grokjax.objective import objective_of
from grokjax.train import checkpoint as ckpt_lib
from grokjax.train import sharding as shard_lib
from grokjax.train.state import MemberState, init_group
from grokjax.train.plan import Plan, label_noise_record
from grokjax.train.signals import Preempted, SignalFlag


def chunk_records(config: Config, rec, ev, start: int, end: int,
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


def open_run(plan: Plan, run: RunDir, overwrite: bool, resuming: bool,
              ckpts, log):
  """Clears (--overwrite) or restores the run directory; (checkpoints, restored, metrics writer)."""
  config, primary = plan.config, shard_lib.is_primary()
  if overwrite and primary:
    run.clear()
  if overwrite and jax.process_count() > 1:
    multihost_utils.sync_global_devices("grokjax: run directory cleared")
  os.makedirs(run.path, exist_ok=True)
  restored = None
  if resuming:
    restored = ckpts.restore(lambda g: plan.abstract(plan.group(g).size), log)
  else:
    ckpts = ckpt_lib.RunCheckpoints(run.path, config.steps, plan.num_members)
  if not primary:
    return ckpts, restored, None
  if not resuming:
    run.write_config(config, plan.grid, {
        "num_members": plan.num_members,
        "num_examples": plan.task.num_examples, "max_n_train": plan.max_n,
        "num_params_per_member": plan.n_params,
        "chunk_steps": min(config.chunk_steps, config.steps),
        **label_noise_record(config, plan.task, plan.num_members),
        "layout": plan.layout.to_json()})
    run.write_members(plan.members)
  # Lines logged after the checkpoint we resume from are logged again: drop
  # them (all group lines when the run died before its first checkpoint).
  keep = None
  if restored:
    keep = (restored[0]["group"], restored[0]["step"], restored[0]["finished"])
  elif resuming:
    keep = (0, 0, False)
  writer = gio.MetricsWriter(run.path, keep_below=keep)
  writer.write({"event": "resume" if restored else "start",
                "step": restored[0]["step"] if restored else 0,
                "devices": gio.rundir.devices(),
                "group_size": max(g.size for g in plan.layout.groups),
                "groups": plan.layout.num_groups,
                "layout": plan.layout.to_json()})
  return ckpts, restored, writer


class Training:
  """The group and chunk loops of one call of `sweep` (state lives here between phases)."""

  def __init__(self, plan: Plan, run: RunDir | None, ckpts, restored,
               writer, log, flag: SignalFlag):
    self.plan, self.run, self.ckpts, self.restored = plan, run, ckpts, restored
    self.writer, self.log, self.primary = writer, log, shard_lib.is_primary()
    self.objective = objective_of(plan.config)
    self.parts, self.finals, self.div = [], {}, {}
    self.steps_run, self.t0 = 0, time.time()
    self.flag = flag
    self.tb = (tb_lib.TensorBoardWriter(run.path, plan.members,
                                        plan.grid.varied, plan.config.steps)
               if run and self.primary and plan.config.tensorboard else None)

  def snapshots(self, g: int):
    """Where group g's parameter snapshots go (`save(step, state)`, `close()`)."""
    group = self.plan.group(g)
    return snap_lib.SnapshotWriter(self.run.path, g, self.plan.config,
                                   group.members, group.size)

  def start_group(self) -> int:
    if not self.restored:
      return 0
    progress = self.restored[0]
    return progress["group"] + 1 if progress["finished"] else progress["group"]

  def finished_group(self, g: int) -> None:
    """A group that finished before this call: its records are on disk."""
    if self.primary:
      final = self.run.read_final(g)
      self.parts.append(group_history(self.run.read_records(
          g, self.plan.config.steps + 1, until=int(final["eval_step"][0])),
          final))
      self.div[g] = final["diverged_step"]

  def _progress(self, g, mem, gen, done):
    return {"group": g, "step": done, "finished": False,
            "group_size": self.plan.group(g).size,
            "memorized": mem.tolist(), "generalized": gen.tolist()}

  def _chunk(self, g, state, hyp, split, start, snaps):
    """One compiled chunk from `start`; its records go to disk and the log."""
    plan, config = self.plan, self.plan.config
    rep = shard_lib.replicated(plan.mesh)
    K = min(config.chunk_steps, config.steps)
    # A chunk stops early at a snapshot step (same program: `stop` is an argument).
    end = snap_lib.next_stop(plan.snapshot_steps, start,
                             min(start + K, config.steps))
    start_dev, stop_dev = (shard_lib.global_array(np.int32(v), rep)
                           for v in (start, end))
    with jax.transfer_guard("disallow"):  # nothing implicit in the hot loop
      state, (rec, ev) = plan.program(g)(state, hyp, split, plan.data,
                                         start_dev, stop_dev)
    rec, ev = shard_lib.to_host((rec, ev))
    if snaps and end in plan.snapshot_steps:
      snaps.save(end, state)
    chunk = chunk_records(config, rec, ev, start, end, plan.eval_steps)
    if self.primary and self.run:
      members = plan.group(g).members
      self.run.write_records(g, start, chunk, end)
      if self.tb:
        self.tb.write_chunk(members, chunk, fresh=start == 0)
      for j, s in enumerate(chunk["eval_step"]):
        self.writer.write({"group": g, "step": s, **{
            k: chunk[k][:len(members), j]
            for k in self.objective.eval_fields}})
    self.steps_run += end - start
    return state, chunk, end

  def _report(self, g, done, mem, gen) -> tuple[int, int]:
    """The progress line and metrics event of a chunk; (memorized, generalized) counts."""
    plan, config = self.plan, self.plan.config
    n = len(plan.group(g).members)
    n_groups = plan.layout.num_groups
    n_mem, n_gen = int(mem[:n].sum()), int(gen[:n].sum())
    elapsed = time.time() - self.t0
    rate = self.steps_run / max(elapsed, 1e-9)
    eta = ((n_groups - g) * config.steps - done) / max(rate, 1e-9)
    where = f"group {g + 1}/{n_groups} " if n_groups > 1 else ""
    self.log(f"{where}step {done:>7}/{config.steps}  {rate:7.1f} steps/s  "
             f"{rate * n:9.0f} member-steps/s  ETA {eta:6.0f}s  "
             f"memorized {n_mem}/{n}  generalized {n_gen}/{n}")
    if self.writer:
      self.writer.write({"event": "progress", "group": g, "step": done,
                         "seconds": elapsed, "memorized": n_mem,
                         "generalized": n_gen, **({
                             "tensorboard_seconds": self.tb.seconds}
                             if self.tb else {})})
    return n_mem, n_gen

  def _preempt(self, g, done, snaps) -> None:
    if self.ckpts:
      self.ckpts.wait()
    if snaps:
      snaps.close()
    if self.writer:
      self.writer.write({"event": "preempted", "group": g, "step": done,
                         "signal": self.flag.raised})
      self.writer.close()
    raise Preempted(g, done, self.run.path if self.run else None)

  def train_group(self, g: int) -> None:
    """Trains group g to the end (or to --stop_when_generalized), from its checkpoint if it has one."""
    plan, config = self.plan, self.plan.config
    group = plan.group(g)
    G, members = group.size, group.members
    hyp = plan.group_hypers(g)
    msh = shard_lib.member_sharding(plan.mesh)
    state, split = init_group(plan.model, config, plan.task, group.max_n, hyp,
                              msh)
    hyp = shard_lib.global_array(hyp, msh)
    done, chunks = 0, []
    mem, gen = np.zeros(G, bool), np.zeros(G, bool)
    if self.restored and self.restored[0]["group"] == g:
      progress, state = self.restored
      done = progress["step"]
      mem[:], gen[:] = progress["memorized"], progress["generalized"]
      if self.primary:
        chunks = self.run.read_records(g, done, until=done)
        if self.tb:  # each point once: the curves again up to the checkpoint
          for i, c in enumerate(chunks):
            self.tb.write_chunk(members, c, fresh=i == 0)
    last_save, snaps = done, None
    if plan.snapshot_steps.size:
      snaps = self.snapshots(g)
      if done == 0:
        snaps.save(0, state)
    while done < config.steps:
      state, chunk, done = self._chunk(g, state, hyp, split, done, snaps)
      chunks.append(chunk)
      reached_mem, reached_gen = self.objective.reached(
          chunk, self.objective.thresholds(config))
      mem |= reached_mem.any(axis=1)
      gen |= reached_gen.any(axis=1)
      n_gen = self._report(g, done, mem, gen)[1]
      stop = (config.stop_when_generalized and n_gen == len(members)
              and done < config.steps)
      preempted = (shard_lib.any_process(self.flag.raised is not None)
                   and done < config.steps and not stop)
      every = config.checkpoint_every
      due = every and done // every > last_save // every
      if self.ckpts and (due or preempted) and done < config.steps and not stop:
        self.ckpts.save(state, self._progress(g, mem, gen, done))
        last_save = done
      if preempted:
        self._preempt(g, done, snaps)
      if stop:
        self.log(f"every member generalized: stopping at step {done}")
        break
    self._finish_group(g, state, split, chunks, done, mem, gen, snaps)

  def _finish_group(self, g, state, split, chunks, done, mem, gen, snaps):
    """The eval after the last update, the final snapshot and checkpoint."""
    plan = self.plan
    members = plan.group(g).members
    ev = shard_lib.to_host(plan.eval_fn(state.params, split, plan.data))
    final = {"eval_step": np.array([done]),
             "diverged_step": shard_lib.to_host(state.diverged_step),
             **{k: np.asarray(getattr(ev, k))[:, None]
                for k in self.objective.eval_fields}}
    if self.primary and self.run:
      self.run.write_records(g, "final", final)
      if self.tb:
        self.tb.write_chunk(members, final)
      self.writer.write({"group": g, "step": done, **{
          k: final[k][:len(members), 0] for k in self.objective.eval_fields}})
    if snaps:  # the last parameters, wherever the group stopped
      snaps.save(done, state)
      snaps.close()
    if self.ckpts:
      self.ckpts.save(state, {**self._progress(g, mem, gen, done),
                              "finished": True})
    if self.primary:
      self.parts.append(group_history(chunks, final))
    self.div[g] = final["diverged_step"]
    self.finals[g] = (state if plan.layout.num_groups == 1
                      else shard_lib.to_host(state))


def final_state(plan: Plan, finals: dict, ckpts) -> MemberState:
  """Every member's final state [E]: device arrays for one group, else host."""
  layout, E = plan.layout, plan.num_members
  for g, group in enumerate(layout.groups):
    if g not in finals:  # finished before this call: its final checkpoint
      restored = ckpts.restore_final(g, plan.abstract(group.size))
      finals[g] = restored if layout.num_groups == 1 else shard_lib.to_host(
          restored)
  if layout.num_groups == 1:
    state = finals[0]
    return jax.tree.map(lambda x: x[:E], state) if layout.groups[0].size > E \
        else state
  return jax.tree.map(lambda *xs: scatter(xs, layout),
                      *[finals[g] for g in range(layout.num_groups)])


def finish(plan: Plan, training: Training, run: RunDir | None
            ) -> tuple[dict, list]:
  """history and summary (process 0), written to the run directory with the plots."""
  if not shard_lib.is_primary():
    return {}, []
  E, layout = plan.num_members, plan.layout
  history = merge_groups(training.parts, list(layout.groups), E)
  diverged = scatter([training.div[g] for g in range(layout.num_groups)],
                     layout)
  summary = analysis.summarize_config(history, plan.members, diverged,
                                      plan.config)
  if run:
    run.write_history(history)
    run.write_summary(summary)
    if training.tb:
      training.tb.write_hparams(summary)
    try:
      gio.write_plots(run.path, history, summary, plan.grid.varied)
    except OSError as e:
      raise gio.WriteError(f"cannot write the plots in {run.path} "
                           f"({e.strerror}); history.npz and summary.csv "
                           "are written") from e
  return history, summary
