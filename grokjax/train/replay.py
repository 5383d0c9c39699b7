"""Replays one member of a finished sweep bit for bit, with parameters at any step.

A sweep is bitwise reproducible only as the same compiled program: the same
member count per group and the same device configuration (XLA compiles every
shape and device layout on its own; see `step._over_members`). So a replay
retrains the member's whole group, in a sweep of the run's original shape (its
stored config and group size) on the same device count, and compares every
record and the final parameters with what the run directory holds. On the
same device configuration they are identical (tested); elsewhere the replay
says how far apart they are.

Stopping the chunk at extra steps to keep parameters there does not change a
bit (the stop is an argument of the same compiled chunk), so a replay can
return the member's parameters at steps no snapshot kept:

    replay = gj.train.replay("runs/quickstart", member=5, steps=[100, 1000])
    replay.identical          # True on the run's device configuration
    replay.params[1000]       # the member's parameters after 1000 updates
"""

from __future__ import annotations

import dataclasses

import jax
import numpy as np

from grokjax.config import ConfigError
from grokjax.grid import Grid
from grokjax.io.rundir import RunDir, group_history
from grokjax.layout import Layout
from grokjax.train import checkpoint as ckpt_lib
from grokjax.train import plan as plan_lib
from grokjax.train import signals
from grokjax.train import training as training_lib
from grokjax.train import sharding as shard_lib


@dataclasses.dataclass
class Replay:
  """One replayed member.

  history: the member's records ([T] per key: ``record_step``, ``step_*``,
    ``eval_step`` and the eval keys), as the replay computed them.
  params: the member's parameters after each requested step, and the last.
  differences: key -> the largest |replay - stored| where they differ
    (``"final_params"`` for the parameters); empty when identical.
  devices: how many devices the replay's sweep used (the run's, if it could).
  """
  member: int
  group: int
  group_size: int
  values: dict  # its swept values that vary in the grid (members.csv)
  history: dict[str, np.ndarray]
  params: dict[int, object]
  differences: dict[str, float]
  devices: int

  @property
  def identical(self) -> bool:
    return not self.differences


class _Collector:
  """Keeps one member's parameters at the snapshot steps (in memory)."""

  def __init__(self, row: int):
    self.row, self.params = row, {}

  def save(self, step: int, state) -> None:
    self.params[int(step)] = jax.tree.map(
        lambda x: np.asarray(shard_lib.to_host(x))[self.row], state.params)

  def close(self) -> None:
    pass


class _ReplayTraining(training_lib.Training):
  """Trains one group, writing nothing, keeping one member's parameters."""

  def __init__(self, plan, row: int, log):
    super().__init__(plan, None, None, None, None, log,
                     signals.SignalFlag(log))
    self.collector = _Collector(row)

  def snapshots(self, g):
    return self.collector


def _stored_group_size(run: RunDir, ckpts: ckpt_lib.RunCheckpoints) -> int:
  size = ckpts.group_size()
  if size is None:
    raise ConfigError(f"--workdir={run.path}: no checkpoint says how its "
                      "members were grouped, so its sweep's shape is unknown")
  return size


def _max_difference(a: np.ndarray, b: np.ndarray) -> float:
  a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
  if a.shape != b.shape:
    return float("inf")
  both_nan = np.isnan(a) & np.isnan(b)
  diff = np.where(both_nan, 0.0, np.abs(a - b))
  return float(np.nan_to_num(diff, nan=np.inf).max(initial=0.0))


def replay(workdir: str, member: int, steps=(), devices: list | None = None,
           log=None) -> Replay:
  """Retrains `member`'s group of the finished run in `workdir`; writes nothing.

  Args:
    workdir: a finished run directory.
    member: the member's index (a row of members.csv).
    steps: steps after which to keep the member's parameters (0 = the
      initialization); the last step's are always kept.
    devices: the devices to shard over (default: all). Bitwise only with as
      many devices as the run used (config.json's ``devices``).
    log: progress lines (None: silent).
  Raises:
    ConfigError: no finished run there, a member or step out of range.
  """
  log = log or (lambda _: None)
  run = RunDir(workdir)
  config = run.config()
  stored = run.read_config()
  num_members = int(stored.get("num_members", 0)) or len(run.members())
  if not 0 <= member < num_members:
    raise ConfigError(f"--member={member}: the run in {workdir} has members "
                      f"0 to {num_members - 1}")
  steps = sorted({int(s) for s in steps})
  if steps and not 0 <= steps[0] <= steps[-1] <= config.steps:
    raise ConfigError(f"--steps={','.join(map(str, steps))}: the run trained "
                      f"steps 0 to {config.steps}")
  if jax.process_count() > 1:
    raise ConfigError("replay runs in one process; start it without "
                      "--multihost")
  ckpts = ckpt_lib.RunCheckpoints(run.path, config.steps, num_members)
  try:
    return _replay(run, config, ckpts, member, steps, devices, log)
  finally:
    ckpts.close()


def _replay(run: RunDir, config, ckpts, member: int, steps: list[int],
            devices, log) -> Replay:
  """`replay` once the inputs are checked and the checkpoints are open."""
  workdir = run.path
  stored_layout = run.layout() if "layout" in run.read_config() else None
  if stored_layout is None:  # a run from before layouts: uniform groups
    stored_layout = Layout.uniform(
        len(run.members()), _stored_group_size(run, ckpts), 0)
  g, row = stored_layout.where(member)
  try:
    final = run.read_final(g)
  except FileNotFoundError:
    raise ConfigError(f"--member={member}: its group ({g}) of the run in "
                      f"{workdir} has not finished; finish the run (run the "
                      "same command again), then replay") from None
  flag = signals.SignalFlag(log)
  plan = plan_lib.make_plan(
      config, devices, ckpts, workdir, flag,
      run.layout() if "layout" in run.read_config() else None,
      compile_all=False)
  flag.phase = None
  G = plan.group(g).size
  plan = dataclasses.replace(
      plan, snapshot_steps=np.array(sorted(set(steps) | {config.steps}),
                                    np.int64))
  training = _ReplayTraining(plan, row, log)
  training.train_group(g)
  history = {k: v if k in ("record_step", "eval_step") else v[row]
             for k, v in training.parts[-1].items()}
  # The final state may come from a stop before config.steps.
  done = int(training.parts[-1]["eval_step"][-1])
  params = {s: p for s, p in training.collector.params.items() if s in steps}
  params[done] = jax.tree.map(lambda x: np.asarray(x)[row],
                              shard_lib.to_host(training.finals[g].params))

  stored_history = group_history(run.read_records(
      g, config.steps + 1, until=int(final["eval_step"][0])), final)
  differences = {}
  for key, value in history.items():
    mine = stored_history[key] if key in ("record_step", "eval_step") else \
        stored_history[key][row]
    if not np.array_equal(value, mine, equal_nan=True):
      differences[key] = _max_difference(value, mine)
  stored_state = ckpts.restore_final(g, plan.abstract(G))
  stored_params = jax.tree.map(lambda x: np.asarray(x)[row],
                               shard_lib.to_host(stored_state.params))
  leaves = zip(jax.tree.leaves(params[done]), jax.tree.leaves(stored_params))
  gap = max((_max_difference(a, b) for a, b in leaves
             if not np.array_equal(a, b, equal_nan=True)), default=None)
  if gap is not None:
    differences["final_params"] = gap
  varied = Grid.from_config(config).varied
  values = {k: v for k, v in run.members()[member].items() if k in varied}
  return Replay(member, g, G, values, history, params, differences,
                plan.mesh.size)


__all__ = ["Replay", "replay"]
