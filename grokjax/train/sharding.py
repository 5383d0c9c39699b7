"""The member axis over devices and hosts: a 1-D mesh, padding, global arrays, host copies.

A sweep's member axis is sharded over every device of every process with one
`jax.sharding.Mesh` axis named ``members``. Each process builds the same host
values (the grid is deterministic), and `global_array` gives every device its
own rows, so the same code runs on one CPU, eight GPUs or a TPU pod.
"""

from __future__ import annotations

from typing import Any

import jax
import numpy as np
from jax.experimental import multihost_utils
from jax.sharding import Mesh, NamedSharding, PartitionSpec

AXIS = "members"


def member_mesh(devices: list | None = None) -> Mesh:
  """A 1-D mesh over all devices (of all processes) along the member axis."""
  return Mesh(np.array(devices if devices is not None else jax.devices()),
              (AXIS,))


def member_sharding(mesh: Mesh) -> NamedSharding:
  """Leading axis split over the mesh, everything else whole."""
  return NamedSharding(mesh, PartitionSpec(AXIS))


def replicated(mesh: Mesh) -> NamedSharding:
  return NamedSharding(mesh, PartitionSpec())


def padded_size(n: int, multiple: int) -> int:
  """The smallest multiple of `multiple` that is >= n."""
  return -(-n // multiple) * multiple


def pad_members(tree: Any, size: int) -> Any:
  """Pads the leading axis of host arrays to `size` by repeating the last member.

  Padding members are real, valid copies (so they train without NaNs); callers
  drop them from every output.
  """
  def pad(x):
    x = np.asarray(x)
    extra = size - x.shape[0]
    if extra <= 0:
      return x
    return np.concatenate([x, np.repeat(x[-1:], extra, axis=0)])
  return jax.tree.map(pad, tree)


def global_array(host: Any, sharding: NamedSharding) -> Any:
  """A global jax.Array from a host array every process holds in full."""
  def one(x):
    x = np.asarray(x)
    return jax.make_array_from_callback(x.shape, sharding, lambda idx: x[idx])
  return jax.tree.map(one, host)


def to_host(tree: Any) -> Any:
  """The whole global array on every process, as numpy (an all-gather across hosts)."""
  def one(x):
    if isinstance(x, jax.Array) and not x.is_fully_addressable:
      return np.asarray(multihost_utils.process_allgather(x, tiled=True))
    return np.asarray(jax.device_get(x))
  return jax.tree.map(one, tree)


def any_process(flag: bool) -> bool:
  """True on every process if `flag` is True on any (a cheap cross-host OR)."""
  if jax.process_count() == 1:
    return flag
  flags = multihost_utils.process_allgather(np.array([flag], np.int32))
  return bool(np.asarray(flags).any())


def is_primary() -> bool:
  """Process 0 writes logs, histories and summaries."""
  return jax.process_index() == 0


__all__ = ["AXIS", "member_mesh", "member_sharding", "replicated",
           "padded_size", "pad_members", "global_array", "to_host",
           "any_process", "is_primary"]
