"""Files written whole or not at all: a temporary file beside the target, then a rename.

Every tool that rewrites a finished result (a run directory's files, the
README's generated table, results.json, drift.json, a figure) writes through
these, so an error or a signal half way leaves the old file byte for byte.
"""

from __future__ import annotations

import contextlib
import os


class WriteError(Exception):
  """A file could not be written (a full disk, a quota, a read-only
  filesystem, a missing folder). What was written before is intact."""


def _tmp(path: str) -> str:
  return f"{path}.tmp{os.getpid()}"


def write_bytes(path: str, data: bytes) -> None:
  """Writes `path` whole or not at all."""
  tmp = _tmp(path)
  try:
    with open(tmp, "wb") as f:
      f.write(data)
      f.flush()
      os.fsync(f.fileno())
    os.replace(tmp, path)
  except OSError as e:
    with contextlib.suppress(OSError):
      os.remove(tmp)
    raise WriteError(f"cannot write {path} ({e.strerror or e})") from e


def write_text(path: str, text: str) -> None:
  write_bytes(path, text.encode())


def savefig(fig, path: str, **kwargs) -> None:
  """A matplotlib figure saved whole or not at all (the format from `path`)."""
  tmp = _tmp(path)
  fmt = os.path.splitext(path)[1].lstrip(".") or "png"
  try:
    fig.savefig(tmp, format=fmt, **kwargs)
    os.replace(tmp, path)
  except OSError as e:
    with contextlib.suppress(OSError):
      os.remove(tmp)
    raise WriteError(f"cannot write {path} ({e.strerror or e})") from e


__all__ = ["WriteError", "write_bytes", "write_text", "savefig"]
