"""The host loop of a sweep: member groups, chunks of K vmapped steps, checkpoints, resume.

`sweep(config)` is the whole program a notebook needs; `experiments/sweep.py`
only turns flags into a Config and calls it.

Per sweep: the members train in groups (`grokjax.layout`): one bucket per
training-set size in a full-batch sweep, each bucket split further if it does
not fit in device memory; a group's rows are padded to a multiple of the
device count and sharded over a 1-D mesh of every device of every process.
Groups of the same shape share one compiled chunk. Per chunk: the records come back to the host, process 0
writes them to ``records/``, and every ``checkpoint_every`` steps the group's
state goes to an orbax checkpoint. SIGTERM/SIGINT finish the chunk, save, and
raise `Preempted`; running the same sweep on the same workdir resumes.

Phases of `sweep`: validate and take the workdir's lock; `_plan` (task,
members, groups, compiled functions); `_open_run` (clear, restore or start
the run directory); `_Training.train_group` for each group (its chunks, each
`_chunk` then `_report`, checkpoints, snapshots, `_finish_group`); and
`_finish` (history, summary, plots).
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
from grokjax.io import tensorboard as tb_lib
from grokjax.io.rundir import RunDir, group_history, merge_groups
from grokjax.config import Config, ConfigError, Grid
from grokjax.layout import Group, Layout, plan_layout, scatter
from grokjax.models import make_model
from grokjax.objective import objective_of
from grokjax.tasks import LinearTask, Task
from grokjax.train import checkpoint as ckpt_lib
from grokjax.train import memory
from grokjax.train import sharding as shard_lib
from grokjax.train.state import (Data, Hypers, MemberState,
                                 abstract_ensemble, abstract_state,
                                 count_params, init_group, make_hypers,
                                 member_splits)
from grokjax.train.step import (compile_sweep_chunk, compile_sweep_eval,
                                eval_schedule, padded_eval_mask)


class Preempted(Exception):
  """SIGTERM/SIGINT stopped the sweep: after saving a checkpoint at `step`, or
  (`phase` set, `step` None) before this call trained a step."""

  def __init__(self, group: int | None, step: int | None, workdir: str | None,
               phase: str | None = None):
    self.group, self.step, self.workdir = group, step, workdir
    self.phase = phase
    if phase is not None:
      super().__init__(f"stopped by a signal while {phase}, before training "
                       "a step; nothing is half-written; run the same "
                       "command again to start (or resume)")
      return
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
  """SIGTERM/SIGINT in every phase of a sweep.

  Before training (`phase` is a string: validating, planning, the memory
  probes, compiling) a signal stops the sweep at once with `Preempted`:
  nothing is written in those phases. Inside `deferred()` (the run directory
  being opened) it is held until the block ends. While training (`phase` None)
  it becomes a flag the loop reads after each chunk, which then saves a
  checkpoint. A second SIGINT raises KeyboardInterrupt.
  """

  def __init__(self, log, workdir: str | None = None):
    self.raised, self._log, self._old = None, log, {}
    self.phase, self.workdir, self._held = "validating the flags", workdir, 0

  def _handle(self, signum, frame):
    del frame
    if self.raised is not None and signum == signal.SIGINT:
      raise KeyboardInterrupt
    self.raised = signal.Signals(signum).name
    if self.phase is not None:
      if not self._held:
        raise Preempted(None, None, self.workdir, self.phase)
      return
    self._log(f"{self.raised}: saving a checkpoint after this chunk "
              "(SIGINT again to abort without one)")

  @contextlib.contextmanager
  def deferred(self, phase: str):
    """Holds a signal until the block ends, then stops (still before training)."""
    self.phase, self._held = phase, self._held + 1
    try:
      yield
    finally:
      self._held -= 1
    if self.raised is not None:
      raise Preempted(None, None, self.workdir, phase)

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
    if run.run_files():
      raise ConfigError(
          f"--workdir={workdir} holds a run's files ({', '.join(run.run_files())})"
          " but no config.json, so it cannot be resumed or checked; restore "
          "config.json, or pass --overwrite to start afresh")
    return False
  try:
    stored = run.config()
  except ConfigError as e:
    raise ConfigError(f"{e}; pass --overwrite to start afresh") from None
  diffs = config.differences(stored)
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


@dataclasses.dataclass
class _Plan:
  """Everything fixed before the first step: the task, members, devices, groups, compiled functions."""
  config: Config
  task: Task | LinearTask
  model: object
  grid: Grid
  members: list[dict]
  hypers: Hypers  # host arrays [E]
  max_n: int
  n_params: int
  mesh: object
  groups: memory.GroupPlan  # the memory plan: the largest group that fits
  layout: Layout  # the groups that train, in order
  eval_steps: np.ndarray
  snapshot_steps: np.ndarray
  data: Data
  chunk_jit: Callable
  chunk_traces: object
  eval_fn: Callable
  programs: dict  # (size, max_n) -> the chunk compiled for those shapes

  @property
  def num_members(self) -> int:
    return len(self.members)

  def group(self, g: int) -> Group:
    return self.layout.groups[g]

  def group_hypers(self, g: int) -> Hypers:
    """Host arrays [size] of group g: its members, then copies of the last."""
    group = self.group(g)
    return shard_lib.pad_members(jax.tree.map(
        lambda x: np.asarray(x)[list(group.members)], self.hypers), group.size)

  def abstract(self, size: int) -> MemberState:
    """The state of a group of `size` rows, abstract and sharded (a restore's target)."""
    return abstract_state(self.config, self.task, self.max_n, size,
                          shard_lib.member_sharding(self.mesh))

  def val_rows(self, g: int) -> int:
    """The most validation rows a member of group g has (an evaluation over
    the validation rows gathers that many; the same for every group of one
    program: a bucket's members share n_train, and without buckets it is
    the sweep's largest)."""
    task = self.task
    N = getattr(task, "num_examples", 0)
    pool = getattr(task, "num_pool", None)
    if pool is not None and not task.validate_pool:
      return N - pool  # a fixed test set
    members = (list(self.group(g).members) if self.layout.bucketed
               else slice(None))
    return N - int(np.min(np.asarray(self.hypers.n_train)[members]))

  def program(self, g: int) -> Callable:
    """Group g's compiled chunk (compiled once per (size, max_n))."""
    group = self.group(g)
    if group.program not in self.programs:
      self.programs[group.program] = _compile_chunk(
          self.chunk_jit, self.config, self.task, group.max_n, group.size,
          self.data, self.mesh, self.abstract(group.size), self.val_rows(g))
    return self.programs[group.program]


def _check_precision(config: Config) -> None:
  if config.needs_x64 and not jax.config.jax_enable_x64:
    raise ConfigError(f"{config.x64_flag}: 64-bit JAX is off; set "
                      "JAX_ENABLE_X64=1 or call jax.config.update("
                      "'jax_enable_x64', True) before the sweep "
                      "(experiments/sweep.py does)")


def _plan_groups(config, task, E, D, max_n, n_params, ckpts, workdir
                 ) -> memory.GroupPlan:
  """A resumed run keeps its checkpoint's group size; a new one plans by memory."""
  group_size = ckpts.group_size() if ckpts else None
  one = abstract_state(config, task, max_n, 1, None)
  host = memory.host_needs(config, sum(x.size * x.dtype.itemsize
                                       for x in jax.tree.leaves(one)))
  if group_size is None:
    return memory.plan_groups(
        config, E, D, lambda: memory.estimate(config, task, max_n),
        memory.rough_bytes_per_member(config, task, max_n, n_params), host)
  if group_size % D:
    raise ConfigError(f"--workdir={workdir}: its checkpoint trains groups of "
                      f"{group_size} members, which {D} devices cannot "
                      "share evenly; resume on a device count that divides "
                      "it, or pass --overwrite")
  memory.check_host(config, E, E > group_size, host)
  return memory.GroupPlan(group_size, -(-E // group_size), None, None)


def _compile_chunk(chunk_fn, config, task, max_n, group_size, data, mesh,
                   abstract, val_rows):
  """The chunk compiled ahead of time for one group's shapes and placements."""
  _, _, hypers, split, _ = abstract_ensemble(config, task, max_n, group_size,
                                             1)
  msh, rep = shard_lib.member_sharding(mesh), shard_lib.replicated(mesh)
  place = lambda tree, sharding: jax.tree.map(
      lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=sharding),
      tree)
  step = jax.ShapeDtypeStruct((), np.int32, sharding=rep)
  return chunk_fn.lower(abstract, place(hypers, msh), place(split, msh), data,
                        step, step, val_rows=val_rows).compile()


def _layout(config: Config, objective, hypers: Hypers, max_n: int,
            groups: memory.GroupPlan, D: int, stored: Layout | None,
            resuming: bool, workdir) -> Layout:
  """The stored layout of a resumed run, else buckets by size (full batch) in
  groups that fit; a resumed run from before layouts keeps its uniform groups."""
  if stored is not None:
    if stored.num_members != len(hypers.n_train) or any(
        g.size % D for g in stored.groups):
      raise ConfigError(f"--workdir={workdir}: its groups of "
                        f"{sorted({g.size for g in stored.groups})} rows "
                        f"cannot be split over {D} devices; resume on a "
                        "device count that divides them, or pass --overwrite")
    return stored
  return plan_layout(hypers.n_train, groups.group_size, D,
                     config.bucket_by_size and not resuming and
                     objective.gathers_max_n(config, max_n))


def _plan(config: Config, devices, ckpts, workdir, flag,
          stored: Layout | None = None, compile_all: bool = True) -> _Plan:
  """Builds the task and members, plans the groups, compiles their chunks.

  `stored`: a resumed run's layout (config.json). `compile_all`: compile
  every group's chunk now (else on its first use). `flag.phase` names each
  phase for a signal that arrives in it.
  """
  flag.phase = "planning the sweep"
  task = config.build_task()
  grid = Grid.from_config(config)
  members = grid.rows()
  hypers = make_hypers(grid, task, config.train_size)
  max_n = int(hypers.n_train.max())
  model = make_model(config, task)
  mesh = shard_lib.member_mesh(devices)
  rep = shard_lib.replicated(mesh)
  n_params = count_params(jax.eval_shape(
      lambda: model.init(jax.random.key(0), task.inputs[:1]))["params"])
  flag.phase = "planning memory (probe compiles)"
  groups = _plan_groups(config, task, len(members), mesh.size, max_n,
                        n_params, ckpts, workdir)
  layout = _layout(config, objective_of(config), hypers, max_n, groups,
                   mesh.size, stored, ckpts is not None, workdir)
  flag.phase = "compiling the sweep"
  eval_steps = eval_schedule(config)
  K = min(config.chunk_steps, config.steps)
  data = shard_lib.global_array(
      Data(task.inputs, task.labels,
           padded_eval_mask(eval_steps, -(-config.steps // K) * K),
           getattr(task, "train_labels", None)), rep)
  chunk_jit, chunk_traces = compile_sweep_chunk(model.apply, config, K, mesh)
  plan = _Plan(
      config, task, model, grid, members, hypers, max_n, n_params, mesh, groups,
      layout, eval_steps,
      (snap_lib.snapshot_schedule(config) if workdir
       else np.zeros(0, np.int64)), data, chunk_jit, chunk_traces,
      compile_sweep_eval(model.apply, config, mesh), {})
  for g in range(layout.num_groups if compile_all else 0):
    plan.program(g)
  return plan


def _open_run(plan: _Plan, run: RunDir, overwrite: bool, resuming: bool,
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
        **_label_noise_record(config, plan.task, plan.num_members),
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


def _log_start(plan: _Plan, restored, log) -> None:
  config, groups, D = plan.config, plan.groups, plan.mesh.size
  layout = plan.layout
  fit = ""
  if layout.bucketed:
    sizes = sorted({g.max_n for g in layout.groups})
    fit = (f"; {len(sizes)} buckets by training-set size ({sizes[0]}.."
           f"{sizes[-1]} rows), {layout.num_groups} groups, "
           f"{len(layout.programs)} programs, "
           f"{100 * layout.useful_fraction(plan.hypers.n_train):.0f}% of "
           f"the rows gathered are real (without buckets "
           f"{100 * Layout.uniform(plan.num_members, groups.group_size, plan.max_n).useful_fraction(plan.hypers.n_train):.0f}%)")
  elif layout.num_groups > 1:
    fit = f"; {layout.num_groups} groups of {layout.groups[0].size} members"
  if groups.estimate is not None:
    fit += (f" (estimate {groups.estimate.bytes_for(groups.group_size // D) / memory.GiB:.2f}"
            f" of {groups.budget / memory.GiB:.2f} GiB per device)")
  log(f"grokjax: {plan.num_members} members x {config.steps} steps, task "
      f"{plan.task.name} (N={plan.task.num_examples}, max n_train="
      f"{plan.max_n}), {config.model} with {plan.n_params:,} params/member, "
      f"{D} {jax.default_backend()} device(s) in {jax.process_count()} "
      f"process(es){fit}")
  if restored:
    p = restored[0]
    log(f"resuming from the checkpoint at step {p['step']} of group "
        f"{p['group']}{' (finished)' if p['finished'] else ''}")


class _Training:
  """The group and chunk loops of one call of `sweep` (state lives here between phases)."""

  def __init__(self, plan: _Plan, run: RunDir | None, ckpts, restored,
               writer, log, flag: _SignalFlag):
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
    chunk = _chunk_records(config, rec, ev, start, end, plan.eval_steps)
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


def _final_state(plan: _Plan, finals: dict, ckpts) -> MemberState:
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


def _finish(plan: _Plan, training: _Training, run: RunDir | None
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
  log = log if (log and shard_lib.is_primary()) else (lambda _: None)
  flag = _SignalFlag(log, workdir)
  with flag.installed():
    config.validate()
    _check_precision(config)
    run = RunDir(workdir) if workdir else None
    # One run per workdir (a multi-host run's process 0 holds it for all).
    with (run.lock() if run and shard_lib.is_primary()
          else contextlib.nullcontext()):
      return _sweep(config, run, devices, overwrite, log, flag)


def _sweep(config: Config, run: RunDir | None, devices, overwrite: bool,
           log, flag: _SignalFlag) -> SweepResult:
  """`sweep` once the config is valid and the workdir is this run's."""
  workdir = run.path if run else None
  flag.phase = "checking the run directory"
  resuming = bool(run) and not overwrite and check_resumable(workdir, config)
  # A resumed run keeps its checkpoint's group size: open them before
  # planning (there are at most E groups, so the manager needs no plan).
  ckpts = (ckpt_lib.RunCheckpoints(workdir, config.steps, len(
      Grid.from_config(config))) if resuming else None)
  stored = (run.layout() if resuming and "layout" in run.read_config()
            else None)
  plan = _plan(config, devices, ckpts, workdir, flag, stored)
  restored = writer = None
  if run:
    try:
      with flag.deferred("opening the run directory"):
        ckpts, restored, writer = _open_run(plan, run, overwrite, resuming,
                                            ckpts, log)
    except Preempted:
      if writer:
        writer.close()
      raise
  flag.phase = None  # training: a signal now waits for the chunk's end
  _log_start(plan, restored, log)
  training = _Training(plan, run, ckpts, restored, writer, log, flag)
  try:
    for g in range(plan.layout.num_groups):
      if g < training.start_group():
        training.finished_group(g)
      else:
        training.train_group(g)
    if ckpts:
      ckpts.wait()
  except gio.WriteError:
    if ckpts:
      ckpts.abandon()
    raise
  seconds = time.time() - training.t0
  if training.tb:
    log(f"tensorboard: {training.tb.seconds:.2f} s of {seconds:.1f} s writing"
        f" event files ({100 * training.tb.seconds / max(seconds, 1e-9):.1f}"
        f"%); tensorboard --logdir {training.tb.root}")
  if writer:
    writer.close()
  if training.steps_run and plan.chunk_traces.count != len(plan.programs):
    raise RuntimeError(f"the sweep's chunk was traced "
                       f"{plan.chunk_traces.count} times for "
                       f"{len(plan.programs)} shapes; it must compile once "
                       "per shape")
  state = _final_state(plan, training.finals, ckpts)
  if ckpts:
    ckpts.close()
  history, summary = _finish(plan, training, run)
  return SweepResult(config, plan.task, history, summary, plan.members, state,
                     jax.tree.map(lambda x: x[:plan.num_members],
                                  plan.hypers),
                     workdir, seconds, plan.layout.num_groups)


__all__ = ["SweepResult", "Preempted", "sweep", "check_resumable"]
