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

Phases of `sweep`, each in its own module: validate and take the workdir's
lock (`signals.SignalFlag` guards every phase); `plan.make_plan` (task,
members, groups, compiled functions); `training.open_run` (clear, restore or
start the run directory); `training.Training.train_group` for each group
(its chunks, each `_chunk` then `_report`, checkpoints, snapshots,
`_finish_group`); and `training.finish` (history, summary, plots).
`grokjax.train.replay` builds on the same public pieces.
"""

from __future__ import annotations

import contextlib
import dataclasses
import time
from typing import Callable

import jax
import numpy as np

from grokjax import io as gio
from grokjax.io.rundir import RunDir
from grokjax.config import Config, ConfigError
from grokjax.grid import Grid
from grokjax.tasks import LinearTask, Task
from grokjax.train import checkpoint as ckpt_lib
from grokjax.train import sharding as shard_lib
from grokjax.train.state import Hypers, MemberState
from grokjax.train.plan import check_precision, log_start, make_plan
from grokjax.train.signals import Preempted, SignalFlag
from grokjax.train.training import Training, final_state, finish, open_run


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
  flag = SignalFlag(log, workdir)
  with flag.installed():
    config.validate()
    check_precision(config)
    run = RunDir(workdir) if workdir else None
    # One run per workdir (a multi-host run's process 0 holds it for all).
    with (run.lock() if run and shard_lib.is_primary()
          else contextlib.nullcontext()):
      return _sweep(config, run, devices, overwrite, log, flag)


def _sweep(config: Config, run: RunDir | None, devices, overwrite: bool,
           log, flag: SignalFlag) -> SweepResult:
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
  plan = make_plan(config, devices, ckpts, workdir, flag, stored)
  restored = writer = None
  if run:
    try:
      with flag.deferred("opening the run directory"):
        ckpts, restored, writer = open_run(plan, run, overwrite, resuming,
                                            ckpts, log)
    except Preempted:
      if writer:
        writer.close()
      raise
  flag.phase = None  # training: a signal now waits for the chunk's end
  log_start(plan, restored, log)
  training = Training(plan, run, ckpts, restored, writer, log, flag)
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
  state = final_state(plan, training.finals, ckpts)
  if ckpts:
    ckpts.close()
  history, summary = finish(plan, training, run)
  return SweepResult(config, plan.task, history, summary, plan.members, state,
                     jax.tree.map(lambda x: x[:plan.num_members],
                                  plan.hypers),
                     workdir, seconds, plan.layout.num_groups)


__all__ = ["SweepResult", "Preempted", "sweep", "check_resumable"]
