"""Which members train together: buckets by training-set size, groups by memory.

A sweep trains its members in one or more *groups*, one after another; each
group is one call of the compiled chunk over its rows ``[size]`` (its
members, then padding rows that copy the last member and are dropped from
every output). Two things split a sweep into groups:

- **Buckets by training-set size** (``--bucket_by_size``, full-batch sweeps
  only). A full-batch step gathers ``max_n_train`` rows for every member and
  weights the ones that are not its own by 0, so a sweep over training
  fractions would compute every member's step on the largest fraction's
  rows. Members with the same training-set size form a bucket; each bucket
  is compiled for its own ``max_n``, so only real rows are computed, with one
  compiled program per distinct (rows, size) pair. A member's own
  computation does not depend on ``max_n`` beyond the padded slots of its
  weighted mean (weight 0), so its result moves at rounding level only.
  Minibatch steps draw ``batch_size`` rows whatever ``max_n`` is: one bucket.
- **Memory** (``--members_per_group``; `train.memory.plan_groups`): a bucket
  larger than the group size that fits is split into groups of that size.

The layout is planned once and stored in ``config.json`` (``"layout"``), so a
resumed run, a replay, the snapshot reader and the history loader all see the
groups the run trained; a run directory written before layouts existed reads
as the old uniform groups (`Layout.uniform`).
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, Sequence

import numpy as np


@dataclasses.dataclass(frozen=True)
class Group:
  """Members trained together by one call of the compiled chunk.

  members: the run's member indices, in the order of the group's rows.
  size: rows of the group's arrays (members, then padding), a multiple of the
    device count.
  max_n: the size of its split arrays: the largest training set among its
    members (a bucket's) or of the whole sweep (no buckets).
  """
  members: tuple[int, ...]
  size: int
  max_n: int

  @property
  def program(self) -> tuple[int, int]:
    """What its compiled chunk depends on: (size, max_n)."""
    return self.size, self.max_n


@dataclasses.dataclass(frozen=True)
class Layout:
  """The groups of a sweep, in training order."""
  groups: tuple[Group, ...]

  @property
  def num_groups(self) -> int:
    return len(self.groups)

  @property
  def num_members(self) -> int:
    return sum(len(g.members) for g in self.groups)

  @property
  def programs(self) -> list[tuple[int, int]]:
    """The distinct (size, max_n) compiled programs, in first-use order."""
    return list(dict.fromkeys(g.program for g in self.groups))

  @property
  def bucketed(self) -> bool:
    return len({g.max_n for g in self.groups}) > 1

  @functools.cached_property
  def _where(self) -> dict[int, tuple[int, int]]:
    return {m: (g, row) for g, group in enumerate(self.groups)
            for row, m in enumerate(group.members)}

  def where(self, member: int) -> tuple[int, int]:
    """(group, row) of a member."""
    return self._where[member]

  def useful_fraction(self, n_train: Sequence[int]) -> float:
    """Of the training rows a full-batch step gathers (every group's rows
    times its max_n), the share that are members' own rows."""
    gathered = sum(g.size * g.max_n for g in self.groups)
    return float(np.sum(n_train)) / gathered

  def to_json(self) -> list[dict[str, Any]]:
    return [{"members": list(g.members), "size": g.size, "max_n": g.max_n}
            for g in self.groups]

  @classmethod
  def from_json(cls, groups: Sequence[dict[str, Any]]) -> "Layout":
    return cls(tuple(Group(tuple(int(m) for m in g["members"]),
                           int(g["size"]), int(g["max_n"])) for g in groups))

  @classmethod
  def uniform(cls, num_members: int, group_size: int, max_n: int) -> "Layout":
    """Consecutive members in groups of `group_size` (the last one padded)."""
    return cls(tuple(
        Group(tuple(range(lo, min(lo + group_size, num_members))), group_size,
              max_n) for lo in range(0, num_members, group_size)))


def _padded(n: int, multiple: int) -> int:
  return -(-n // multiple) * multiple


def plan_layout(n_train: np.ndarray, group_size: int, num_devices: int,
                bucket: bool) -> Layout:
  """Groups of at most `group_size` rows; with `bucket`, one bucket per training-set size.

  Without buckets (or with one size) this is `Layout.uniform`. A bucket of
  `e` members trains in groups of ``min(group_size, e rounded up to the device
  count)`` rows, the last one padded. Buckets go from the smallest training
  set to the largest; members keep their order inside a bucket.
  """
  n_train = np.asarray(n_train)
  E, max_n = len(n_train), int(n_train.max())
  sizes = np.unique(n_train)
  if not bucket or len(sizes) == 1:
    return Layout.uniform(E, group_size, max_n)
  groups = []
  for n in sizes:
    members = np.flatnonzero(n_train == n).tolist()
    size = min(group_size, _padded(len(members), num_devices))
    groups += [Group(tuple(members[lo:lo + size]), size, int(n))
               for lo in range(0, len(members), size)]
  return Layout(tuple(groups))


def scatter(parts: Sequence[np.ndarray], layout: Layout) -> np.ndarray:
  """The groups' row arrays (`parts[g]`: [size_g, ...]) as one [E, ...] array in member order."""
  first = np.asarray(parts[0])
  out = np.empty((layout.num_members,) + first.shape[1:], first.dtype)
  for group, part in zip(layout.groups, parts):
    out[list(group.members)] = np.asarray(part)[:len(group.members)]
  return out


__all__ = ["Group", "Layout", "plan_layout", "scatter"]
