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


@contextlib.contextmanager
def _replacing(path: str):
  """Yields a temporary path beside `path`; what was written there replaces
  `path` at the end, and on any error it is removed and `path` is left as
  it was (an OSError becomes one WriteError naming `path`)."""
  tmp = f"{path}.tmp{os.getpid()}"
  try:
    yield tmp
    os.replace(tmp, path)
  except BaseException as e:
    with contextlib.suppress(OSError):
      os.remove(tmp)
    if isinstance(e, OSError):
      raise WriteError(f"cannot write {path} ({e.strerror or e})") from e
    raise


def write_bytes(path: str, data: bytes) -> None:
  """Writes `path` whole or not at all."""
  with _replacing(path) as tmp, open(tmp, "wb") as f:
    f.write(data)
    f.flush()
    os.fsync(f.fileno())


def write_text(path: str, text: str) -> None:
  write_bytes(path, text.encode())


def savefig(fig, path: str, **kwargs) -> None:
  """A matplotlib figure saved whole or not at all (the format from `path`)."""
  with _replacing(path) as tmp:
    fig.savefig(tmp, format=os.path.splitext(path)[1].lstrip(".") or "png",
                **kwargs)


__all__ = ["WriteError", "write_bytes", "write_text", "savefig"]
