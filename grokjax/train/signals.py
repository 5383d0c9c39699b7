"""Signals in every phase of a sweep: `SignalFlag` (before training a
signal stops the sweep at once; while training it waits for the chunk's end
and a checkpoint) and `Preempted`, what the sweep raises."""

from __future__ import annotations

import contextlib
import signal




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


class SignalFlag:
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
