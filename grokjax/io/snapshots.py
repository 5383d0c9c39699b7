"""Parameter snapshots over training: what the progress measures read.

With ``--snapshot_count=K`` (and/or ``--snapshot_every=N``) a sweep keeps
the parameters of every member at step 0, at K log-spaced steps, every N
steps, and after its last update, so the transition stays visible however
long the run is. Layout under ``workdir``::

    snapshots/g<group>/<step>/params     orbax: the group's params [G, ...]
                                         and diverged steps [G]
    snapshots/g<group>/<step>/meta       JSON: step, group, its members, G
                                         and the run's config

The resume checkpoints (`checkpoint.RunCheckpoints`) keep only the latest
states; snapshots are never deleted and hold parameters only (no optimizer
state: a third of an AdamW checkpoint). Each one carries the config, so
`load_snapshot` rebuilds the model and the task without the original flags:

    snap = load_snapshot("runs/nanda", step=5000, members=[3])
    logits = snap.model.apply({"params": snap.member(0)}, snap.task.inputs)
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any, Sequence

import jax
import numpy as np
import orbax.checkpoint as ocp

from grokjax.config import Config, ConfigError
from grokjax.io.rundir import RunDir
from grokjax.layout import Layout
from grokjax.members import member_splits
from grokjax.models import abstract_params, make_model
from grokjax.objective import CLASSIFICATION, objective_of


def snapshot_schedule(config: Config) -> np.ndarray:
  """Sorted snapshot steps in [0, steps]: 0, `snapshot_count` log-spaced steps, every `snapshot_every`, and `steps`.

  Empty when both flags are 0 (no snapshots).
  """
  parts = []
  if config.snapshot_count:
    points = np.geomspace(1, config.steps, config.snapshot_count)
    parts.append(np.round(points).astype(np.int64))
  if config.snapshot_every:
    parts.append(np.arange(0, config.steps + 1, config.snapshot_every))
  if not parts:
    return np.zeros(0, np.int64)
  return np.unique(np.concatenate([[0], *parts, [config.steps]]).astype(
      np.int64))


def next_stop(schedule: np.ndarray, start: int, end: int) -> int:
  """The first snapshot step in (start, end), else `end`: where a chunk must stop."""
  inside = schedule[(schedule > start) & (schedule < end)]
  return int(inside[0]) if inside.size else end


class SnapshotWriter:
  """Saves one member group's parameters at the snapshot steps (asynchronously)."""

  def __init__(self, workdir: str, group: int, config: Config,
               members: Sequence[int], group_size: int):
    """`members`: the run's member indices in this group; `group_size`: its
    array size G (padding rows included)."""
    self.group, self.members = group, [int(m) for m in members]
    self.group_size = group_size
    self.config = config.to_dict()
    self.manager = ocp.CheckpointManager(
        RunDir(workdir).snapshot_group(group),
        options=ocp.CheckpointManagerOptions(create=True))

  def saved(self) -> set[int]:
    return set(self.manager.all_steps())

  def save(self, step: int, state) -> None:
    """Saves `state.params` and `state.diverged_step` ([G] leading axes) at `step`."""
    if step in self.saved():  # a resumed run passes steps saved before
      return
    meta = {"step": int(step), "group": self.group, "members": self.members,
            "group_size": self.group_size, "config": self.config}
    self.manager.save(int(step), args=ocp.args.Composite(
        params=ocp.args.StandardSave({"params": state.params,
                                      "diverged_step": state.diverged_step}),
        meta=ocp.args.JsonSave(meta)), force=True)

  def close(self) -> None:
    self.manager.wait_until_finished()
    self.manager.close()


@dataclasses.dataclass
class Snapshot:
  """Some members' parameters at one saved step, with what it takes to use them.

  params: numpy pytree with a leading axis over `members` (in that order).
  diverged_step: [len(members)], -1 while healthy.
  model, task: rebuilt from the stored config.
  split: the members' train/validation splits ([len(members)]), as trained.
  """
  config: Config
  step: int
  members: np.ndarray
  params: Any
  diverged_step: np.ndarray
  model: Any
  task: Any
  split: Any

  def member(self, i: int) -> Any:
    """The parameters of the i-th loaded member (an index into `members`)."""
    return jax.tree.map(lambda x: x[i], self.params)


def _with_snapshots(workdir: str) -> RunDir:
  run = RunDir(workdir)
  if not run.snapshot_groups():
    raise ConfigError(f"--workdir={workdir}: no snapshots there; train with "
                      "--snapshot_count=K (or --snapshot_every=N) to keep "
                      "parameters over time")
  return run


def snapshot_steps(workdir: str) -> np.ndarray:
  """The steps at which every member group has a snapshot, sorted."""
  steps = None
  for d in _with_snapshots(workdir).snapshot_groups():
    here = {int(s) for s in os.listdir(d) if s.isdigit()}
    steps = here if steps is None else steps & here
  return np.array(sorted(steps or ()), np.int64)


class SnapshotReader:
  """Reads a run's snapshots: one orbax manager per group, opened once."""

  def __init__(self, workdir: str):
    self.workdir, self._run = workdir, _with_snapshots(workdir)
    stored = self._run.rebuild()
    self.config, self.task = stored.config, stored.task
    self.model = make_model(self.config, self.task)
    self.num_members = stored.num_members
    self._managers, self._abstract, self._splits = {}, {}, {}
    self._layout = None

  def layout(self, step: int) -> Layout:
    """The run's groups (config.json; a run from before layouts: consecutive
    groups of its snapshots' size)."""
    if self._layout is None:
      self._layout = (self._run.layout() if "layout" in
                      self._run.read_config() else Layout.uniform(
                          self.num_members,
                          int(self._meta(0, step)["group_size"]), 0))
    return self._layout

  def _manager(self, group: int) -> ocp.CheckpointManager:
    if group not in self._managers:
      path = self._run.snapshot_group(group)
      if not os.path.isdir(path):
        raise ConfigError(f"--workdir={self.workdir}: no snapshots of member "
                          f"group {group} ({path} is missing); resume the run")
      self._managers[group] = ocp.CheckpointManager(
          path, options=ocp.CheckpointManagerOptions(create=False))
    return self._managers[group]

  def _meta(self, group: int, step: int) -> dict:
    return self._manager(group).restore(step, args=ocp.args.Composite(
        meta=ocp.args.JsonRestore()))["meta"]

  def _group_params(self, group: int, step: int, size: int) -> dict:
    if size not in self._abstract:
      device = jax.sharding.SingleDeviceSharding(jax.local_devices()[0])
      params = abstract_params(self.model, self.task, self.config.precision)
      self._abstract[size] = jax.tree.map(
          lambda x: jax.ShapeDtypeStruct((size, *x.shape), x.dtype,
                                         sharding=device),
          {"params": params,
           "diverged_step": jax.ShapeDtypeStruct((), np.int32)})
    if step not in self._manager(group).all_steps():
      raise ConfigError(f"--step={step}: group {group} of {self.workdir} has "
                        "no snapshot there; snapshot_steps(workdir) lists "
                        "the saved steps")
    return jax.device_get(self._manager(group).restore(
        step, args=ocp.args.Composite(params=ocp.args.StandardRestore(
            self._abstract[size])))["params"])

  def load(self, step: int, members: Sequence[int] | None = None) -> Snapshot:
    members = np.arange(self.num_members) if members is None else np.asarray(
        members, np.int64)
    bad = members[(members < 0) | (members >= self.num_members)]
    if bad.size:
      raise ConfigError(f"--members={int(bad[0])}: the run has members 0.."
                        f"{self.num_members - 1}")
    if step not in self._manager(0).all_steps():
      raise ConfigError(f"--step={step}: {self.workdir} has no snapshot there; "
                        "snapshot_steps(workdir) lists the saved steps")
    layout = self.layout(step)
    where = [layout.where(int(m)) for m in members]
    loaded = {g: self._group_params(g, step, layout.groups[g].size)
              for g in sorted({g for g, _ in where})}
    rows = [jax.tree.map(lambda x, r=r: x[r], loaded[g]) for g, r in where]
    stacked = jax.tree.map(lambda *xs: np.stack(xs), *rows)
    return Snapshot(self.config, int(step), members, stacked["params"],
                    stacked["diverged_step"], self.model, self.task,
                    self._member_splits(members))

  def _member_splits(self, members: np.ndarray):
    """The members' splits (the same at every step: computed once per member set)."""
    if objective_of(self.config) is not CLASSIFICATION:
      return None  # a linear task's member data is its Problem, not a split
    key = tuple(members.tolist())
    if key not in self._splits:
      self._splits[key] = jax.device_get(member_splits(
          self.config, self.task, members))
    return self._splits[key]

  def close(self) -> None:
    for m in self._managers.values():
      m.close()


def load_snapshot(workdir: str, step: int,
                  members: Sequence[int] | None = None) -> Snapshot:
  """Members' parameters at a saved step (all members by default), in one call."""
  reader = SnapshotReader(workdir)
  try:
    return reader.load(step, members)
  finally:
    reader.close()


__all__ = ["snapshot_schedule", "next_stop", "SnapshotWriter", "Snapshot",
           "SnapshotReader", "snapshot_steps", "load_snapshot"]
