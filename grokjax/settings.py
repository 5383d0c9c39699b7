"""Settings owned by the code that uses them.

Each task family, model, optimizer, regularizer and the run itself declares
its settings as a small frozen dataclass beside its code (a *block*: one
field per flag, with its default and help), and each registry row names the
blocks it reads. `grokjax.config.Config` composes every block into one flat,
frozen run config (one flag per field, the same name, flat `config.json`),
and a registry row is handed a `View` of it: the fields of its own blocks,
nothing else, so a row that reads a setting it does not own fails loudly
(`ForeignSetting`) instead of coupling silently.

    @dataclasses.dataclass(frozen=True)
    class ParitySettings:
      '''--task=parity.'''
      parity_n: int = setting(40, "bits per string")

A block's `check(self)` (optional) raises ValueError naming its flag for a
value out of range; checks across blocks live in `Config.validate`, the one
place that sees every block.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Iterable


def setting(default: Any, help: str, **kw) -> Any:  # pylint: disable=redefined-builtin
  """A block's field: its default and help; `kw` goes into the metadata
  (``kind="int_list" | "str_list"``; ``swept="index" | "fraction" |
  "positive" | "nonnegative"`` for a swept axis, ``optional=True`` for one
  that may be empty)."""
  if isinstance(default, (list, tuple)):
    return dataclasses.field(default_factory=lambda: tuple(default),
                             metadata={"help": help, **kw})
  return dataclasses.field(default=default, metadata={"help": help, **kw})


class ConfigError(ValueError):
  """A bad setting; the message is one line that names the flag and the fix."""


def show(value: Any) -> str:
  """A setting's value as on the command line (a tuple as `a,b`)."""
  if isinstance(value, tuple):
    return ",".join(f"{v:g}" if isinstance(v, (int, float)) else str(v)
                    for v in value) or "(empty)"
  return str(value)


def check_choice(flag: str, value: str, allowed) -> None:
  """ValueError `--flag=value: choose one of ...` unless `value` is allowed."""
  if value not in allowed:
    raise ValueError(f"--{flag}={value}: choose one of {', '.join(allowed)}")


def check_positive(block: Any, *names: str, strict: bool = True) -> None:
  """ValueError `--name=v: must be > 0` (>= 0 unless `strict`) for finite
  numbers only."""
  for name in names:
    v = getattr(block, name)
    if not (math.isfinite(v) and (v > 0 if strict else v >= 0)):
      raise ValueError(f"--{name}={v}: must be {'>' if strict else '>='} 0")


def check_at_least(block: Any, low: int, *names: str) -> None:
  """ValueError `--name=v: must be >= low` for each of `names` below `low`."""
  for name in names:
    if getattr(block, name) < low:
      raise ValueError(f"--{name}={getattr(block, name)}: must be >= {low}")


def names_of(*blocks: type) -> tuple[str, ...]:
  """The field names of `blocks`, in order."""
  return tuple(f.name for b in blocks for f in dataclasses.fields(b))


class ForeignSetting(LookupError):
  """A registry row read a setting its declared blocks do not hold (not an
  AttributeError, so that no `getattr(view, name, default)` can hide it)."""


class View:
  """The fields of `blocks`, read from `source` (a Config, or block instances).

  `reader` names who reads (for the error). `replace(**kw)` returns the view
  of the source with those fields replaced.
  """

  __slots__ = ("_source", "_blocks", "_names", "_reader")

  def __init__(self, source: Any, blocks: Iterable[type], reader: str):
    blocks = tuple(dict.fromkeys(blocks))
    object.__setattr__(self, "_source", source)
    object.__setattr__(self, "_blocks", blocks)
    object.__setattr__(self, "_names", frozenset(names_of(*blocks)))
    object.__setattr__(self, "_reader", reader)

  def __getattr__(self, name: str) -> Any:
    if name in self._names:
      return getattr(self._source, name)
    if name.startswith("__"):
      raise AttributeError(name)  # copy/pickle probes
    owned = ", ".join(b.__name__ for b in self._blocks) or "none"
    raise ForeignSetting(f"{self._reader} reads --{name}, which is not in "
                         f"the settings it declares ({owned}); add the "
                         "owner's block to the row's `settings`")

  def __setattr__(self, name, value):
    raise dataclasses.FrozenInstanceError(f"cannot assign to field {name!r}")

  def replace(self, **kw) -> "View":
    for name in kw:
      self.__getattr__(name)  # a foreign field is refused here too
    return View(self._source.replace(**kw), self._blocks, self._reader)

  def __repr__(self) -> str:
    inner = ", ".join(f"{n}={getattr(self._source, n)!r}"
                      for n in names_of(*self._blocks))
    return f"View[{self._reader}]({inner})"


class Blocks:
  """Block instances read as one source (for code that builds a row's
  settings without a Config, e.g. `tasks.make_task`)."""

  def __init__(self, *instances: Any):
    self._values = {f.name: getattr(i, f.name)
                    for i in instances for f in dataclasses.fields(i)}

  def __getattr__(self, name: str) -> Any:
    try:
      return self.__dict__["_values"][name]
    except KeyError:
      raise AttributeError(name) from None


def checked(block: type, values: dict[str, Any]):
  """`block(**values)` (defaults for the rest), after its own `check`
  (ValueError naming the flag)."""
  instance = block(**values)
  check = getattr(instance, "check", None)
  if check is not None:
    check()
  return instance


def check_blocks(source: Any, blocks: Iterable[type]) -> None:
  """Runs each block's own `check` on its fields of `source` (a Config or
  `Blocks`; ValueError)."""
  for block in blocks:
    checked(block, {n: getattr(source, n) for n in names_of(block)})


__all__ = ["ConfigError", "show", "setting", "check_choice", "check_positive",
           "check_at_least", "names_of", "View", "Blocks", "ForeignSetting",
           "checked", "check_blocks"]
