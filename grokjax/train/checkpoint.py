"""Resume checkpoints (orbax) and the per-chunk history records of a run directory.

Layout under ``workdir``:

- ``checkpoints/<index>/``: orbax checkpoints of one member group's state
  (params, optimizer state, diverged step; sharded like the live arrays) and a
  JSON ``progress`` item (group, step, finished, progress flags). Orbax writes
  each into a temporary directory and renames it when complete, so a save
  interrupted at any point leaves the previous checkpoint intact. The two
  latest are kept, plus the final one of every group.
- ``records/g<group>_s<start>.npz``: the per-step and eval records of one chunk,
  written atomically by process 0 before the checkpoint that covers them. A
  resumed run reads the records below its checkpoint's step and overwrites the
  rest, so histories survive any interruption.

Checkpoint index = ``group * (steps + 2) + step`` while a group trains, and
``group * (steps + 2) + steps + 1`` when it has finished; indices grow with
progress, as orbax requires.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import shutil
from typing import Any, Callable

import jax
import orbax.checkpoint as ocp
from jax.experimental import multihost_utils
from orbax.checkpoint import checkpoint_managers

from grokjax.config import Config, ConfigError
from grokjax.io.rundir import RunDir, WriteError
from grokjax.layout import Layout, scatter
from grokjax.train import state as state_lib


def index_of(group: int, step: int, steps: int, finished: bool) -> int:
  return group * (steps + 2) + (steps + 1 if finished else step)


def _failed_write(text: str) -> bool:
  return "os_error_code" in text or "Failed writing" in text


class _QuietFailedWrites(logging.Filter):
  """Drops orbax's own tracebacks of a failed write (one per thread, hundreds
  of lines): `RunCheckpoints` reports it in one line (WriteError)."""

  def filter(self, record: logging.LogRecord) -> bool:
    if "orbax" not in record.pathname or record.levelno < logging.ERROR:
      return True
    text = record.getMessage()
    if record.exc_info and record.exc_info[1] is not None:
      text += str(record.exc_info[1])
    return not _failed_write(text)


logging.getLogger("absl").addFilter(_QuietFailedWrites())


class RunCheckpoints:
  """The resume checkpoints of one run directory."""

  def __init__(self, workdir: str, steps: int, max_groups: int):
    """`max_groups` bounds the group count (the member count will do), so the
    manager can be opened before the groups are planned."""
    self.directory = RunDir(workdir).checkpoints
    self.steps = steps
    finals = [index_of(g, 0, steps, True) for g in range(max_groups)]
    policy = checkpoint_managers.AnyPreservationPolicy([
        checkpoint_managers.LatestN(2), checkpoint_managers.CustomSteps(finals)])
    self.manager = ocp.CheckpointManager(
        self.directory, options=ocp.CheckpointManagerOptions(
            preservation_policy=policy, create=True))

  def save(self, state: Any, progress: dict[str, Any]) -> None:
    """Saves asynchronously (arrays are copied off the device before it returns).

    WriteError if this or the previous (background) save could not write.
    """
    index = index_of(progress["group"], progress["step"], self.steps,
                     progress["finished"])
    with self._writing():
      self.manager.save(index, args=ocp.args.Composite(
          state=ocp.args.StandardSave(state),
          progress=ocp.args.JsonSave(progress)), force=True)

  def wait(self) -> None:
    with self._writing():
      self.manager.wait_until_finished()

  def abandon(self) -> None:
    """After a failed write: lets orbax's threads end (their errors are the
    one already raised) so the process exits without their tracebacks."""
    for finish in (self.manager.wait_until_finished, self.manager.close):
      with contextlib.suppress(Exception):
        finish()

  @contextlib.contextmanager
  def _writing(self):
    """Orbax's failed writes (raised from its threads) as one WriteError."""
    try:
      yield
    except Exception as e:  # pylint: disable=broad-except
      text = str(e)
      if not (isinstance(e, OSError) or _failed_write(text)):
        raise
      reason = re.search(r"Failed to write [^:]*: ([^\[]+)", text)
      reason = (reason.group(1).strip() if reason else
                getattr(e, "strerror", None) or text.splitlines()[0][:200])
      raise WriteError(f"cannot write a checkpoint in {self.directory} "
                       f"({reason})") from None

  def progress(self, index: int) -> dict[str, Any]:
    return self.manager.restore(index, args=ocp.args.Composite(
        progress=ocp.args.JsonRestore()))["progress"]

  def group_size(self) -> int | None:
    """The member group size of the newest checkpoint whose progress reads (None: none)."""
    for index in sorted(self.manager.all_steps(), reverse=True):
      try:
        return int(self.progress(index)["group_size"])
      except Exception:  # pylint: disable=broad-except
        continue  # `restore` reports and sets it aside
    return None

  def _restore_state(self, index: int, abstract_state: Any) -> Any:
    return self.manager.restore(index, args=ocp.args.Composite(
        state=ocp.args.StandardRestore(abstract_state)))["state"]

  def restore(self, abstract_of: Callable[[int], Any],
              log: Callable[[str], None]) -> tuple[dict, Any] | None:
    """(progress, state) of the latest readable checkpoint, or None if there is none.

    `abstract_of(group)`: ShapeDtypeStructs (with shardings) of that group's
    state (groups may differ in size: `grokjax.layout`).
    A checkpoint that cannot be read is reported and the previous one is used;
    when none can be read, ConfigError says so (`--overwrite` starts fresh).
    """
    indices = sorted(self.manager.all_steps(), reverse=True)
    for index in indices:
      try:
        return self.progress(index), self._restore_state(
            index, abstract_of(index // (self.steps + 2)))
      except Exception as e:  # pylint: disable=broad-except
        first = (str(e).strip().splitlines() or [type(e).__name__])[0][:200]
        aside = os.path.join(os.path.dirname(self.directory),
                             "checkpoints_corrupt", str(index))
        log(f"checkpoint {os.path.join(self.directory, str(index))} is "
            f"corrupt ({type(e).__name__}: {first}); moved to {aside}; trying "
            "the previous one")
        self._set_aside(index, aside)
    if indices:
      raise ConfigError(f"--workdir: every checkpoint in {self.directory} is "
                        "corrupt; pass --overwrite to start the run afresh")
    return None

  def _set_aside(self, index: int, aside: str) -> None:
    """Moves a corrupt checkpoint out of the manager's sight (kept for inspection)."""
    if jax.process_index() == 0:
      os.makedirs(os.path.dirname(aside), exist_ok=True)
      if os.path.exists(aside):
        shutil.rmtree(aside)
      os.replace(os.path.join(self.directory, str(index)), aside)
    if jax.process_count() > 1:
      multihost_utils.sync_global_devices(f"grokjax: set aside {index}")
    self.manager.reload()

  def restore_final(self, group: int, abstract_state: Any) -> Any:
    """The state of a finished group (its final checkpoint is always kept)."""
    return self._restore_state(index_of(group, 0, self.steps, True),
                               abstract_state)

  def close(self) -> None:
    self.manager.close()


def load_final_state(workdir: str) -> tuple[Config, Any]:
  """(config, final MemberState of every member as numpy [E]) of a finished run.

  Needs nothing but the run directory: the config and the groups come from
  config.json (a run from before layouts: its checkpoints' group size).
  """
  run = RunDir(workdir)
  stored = run.rebuild()
  config, num_members = stored.config, stored.num_members
  ckpts = RunCheckpoints(workdir, config.steps, 1)
  group_size = ckpts.group_size()
  if group_size is None:
    raise ConfigError(f"--workdir={workdir}: no readable checkpoint; the run "
                      "has not saved one yet")
  layout = (run.layout() if "layout" in run.read_config() else
            Layout.uniform(num_members, group_size, stored.max_n_train))
  device = jax.sharding.SingleDeviceSharding(jax.local_devices()[0])
  groups = []
  for g, group in enumerate(layout.groups):
    abstract = state_lib.abstract_state(config, stored.task, group.max_n,
                                        group.size, device)
    try:
      groups.append(jax.device_get(ckpts.restore_final(g, abstract)))
    except FileNotFoundError:
      raise ConfigError(f"--workdir={workdir}: group {g} has not finished; "
                        "resume the run first") from None
  ckpts.close()
  return config, jax.tree.map(lambda *xs: scatter(xs, layout), *groups)


__all__ = ["RunCheckpoints", "load_final_state", "index_of"]
