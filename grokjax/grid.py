"""Swept values and the member grid: `parse_values` reads a swept flag's
lists and ranges; `Grid` is the flattened Cartesian product of the swept axes
(`config.SWEPT`, the first varying slowest), one row per member."""

from __future__ import annotations

import dataclasses
import itertools
import math

import numpy as np

from grokjax.config import INT_AXES, SWEPT, Config, ConfigError


def parse_values(flag: str, text: str, integer: bool = False) -> tuple:
  """Parses a swept flag's value.

  Forms (combinable with commas): ``0.3``; ``0.3,0.5``; ``a:b`` or ``a:b:step``
  (integer range, ``b`` excluded, like Python's range); ``log:a:b:n`` (n values
  log-spaced from a to b inclusive); ``lin:a:b:n`` (n values evenly spaced).
  """
  values: list[float] = []
  empty = None
  try:
    for part in (p.strip() for p in text.split(",")):
      if not part:
        continue
      head, *rest = part.split(":")
      if head in ("log", "lin"):
        a, b, n = float(rest[0]), float(rest[1]), int(rest[2])
        if len(rest) != 3 or n < 1:
          raise ValueError
        space = np.geomspace if head == "log" else np.linspace
        values += [float(v) for v in space(a, b, n)]
      elif rest:
        bounds = [int(v) for v in [head] + rest]
        if len(bounds) > 3:
          raise ValueError
        if not range(*bounds):
          empty = part
        values += list(range(*bounds))
      else:
        values.append(float(part))
  except (ValueError, IndexError):
    raise ConfigError(
        f"--{flag}={text}: expected numbers, 'a,b,c', 'start:stop[:step]', "
        "'log:a:b:n' or 'lin:a:b:n'") from None
  if empty is not None:
    raise ConfigError(f"--{flag}={text}: the range {empty} is empty (like "
                      "Python's range, start:stop needs start < stop, and "
                      "stop is excluded)")
  if integer:
    if any(v != int(v) for v in values):
      raise ConfigError(f"--{flag}={text}: must be integers")
    return tuple(int(v) for v in values)
  return tuple(float(v) for v in values)


@dataclasses.dataclass(frozen=True)
class Grid:
  """The flattened Cartesian product of the swept axes: one row per member."""
  axes: dict[str, tuple]

  @classmethod
  def from_config(cls, config: Config) -> "Grid":
    return cls(config.swept_values())

  @property
  def varied(self) -> list[str]:
    """Axes that take more than one value."""
    return [k for k, v in self.axes.items() if len(v) > 1]

  def rows(self) -> list[dict[str, float]]:
    names = [k for k in SWEPT if self.axes[k]]
    rows = []
    for combo in itertools.product(*(self.axes[k] for k in names)):
      row = dict(zip(names, combo))
      row.setdefault("data_seed", row["seed"])
      rows.append({k: row[k] for k in SWEPT})
    return rows

  def __len__(self) -> int:
    return math.prod(len(v) for v in self.axes.values() if v)

  def columns(self) -> dict[str, np.ndarray]:
    """Each swept axis as an [E] array (int32 seeds, float32 otherwise)."""
    rows = self.rows()
    return {k: np.array([r[k] for r in rows],
                        np.int32 if k in INT_AXES else np.float32)
            for k in SWEPT}


__all__ = ["Grid", "parse_values"]
