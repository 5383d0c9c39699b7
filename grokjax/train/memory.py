"""How many members fit on a device: XLA's own memory figures, extrapolated in E.

The sweep's chunk is compiled for two small member counts (E = 4 and 16, one
step, on one device) and XLA's `memory_analysis()` of each gives the bytes the
program needs: arguments (state, split, data), outputs and temporaries
(activations, gradients, the eval over all N rows). The difference is the cost
of one more member; the rest is shared (the task table). A chunk of K steps
adds its per-step and eval records, ``7 * K * 4`` bytes a member. These two
probes are small and compile in seconds; the sweep itself is compiled only
after the plan below says it fits.

Device memory: an accelerator's allocator limit (`memory_stats()`), minus what
is already in use; on the CPU, the machine's RAM divided among its CPU devices.
`--memory_limit_gb` overrides both. Plans keep 10% of the budget in reserve.
"""

from __future__ import annotations

import dataclasses
import os

import jax
import numpy as np

from grokjax.config import Config, ConfigError
from grokjax.tasks import LinearTask, Task
from grokjax.train import sharding as shard_lib
from grokjax.train.state import abstract_ensemble
from grokjax.objective import Data, objective_of
from grokjax.train.step import compile_sweep_chunk

GiB = 1 << 30
RESERVE = 0.9  # use at most this fraction of the device budget
# XLA:CPU's per-member figure can step up ~20% past E ~ 16 for tiny models
# (other layouts); probing at 16 catches that and is as quick to compile.
_PROBE_SIZES = (4, 16)


@dataclasses.dataclass(frozen=True)
class MemoryEstimate:
  """Bytes on one device: `shared + per_member * members_on_device`."""
  per_member: float
  shared: float
  records_per_member: float  # per chunk of K steps, included in `bytes_for`

  def bytes_for(self, members_on_device: int) -> float:
    return self.shared + members_on_device * (self.per_member +
                                              self.records_per_member)


def _compiled_bytes(compiled) -> float:
  m = compiled.memory_analysis()
  return float(m.argument_size_in_bytes + m.output_size_in_bytes +
               m.temp_size_in_bytes - m.alias_size_in_bytes)


def chunk_memory(apply_fn, config: Config, ensemble_state, hypers, split,
                 data: Data, chunk_steps: int) -> float:
  """XLA's figure (bytes) for the compiled chunk on these (abstract) inputs."""
  fn, _ = compile_sweep_chunk(apply_fn, config, chunk_steps)
  start = jax.ShapeDtypeStruct((), np.int32)
  return _compiled_bytes(fn.lower(ensemble_state, hypers, split, data,
                                  start, start).compile())


def estimate(config: Config, task: Task, max_n_train: int) -> MemoryEstimate:
  """Per-member and shared bytes of the sweep's chunk, from two tiny XLA compiles."""
  figures = []
  for e in _PROBE_SIZES:
    model, state, hypers, split, data = abstract_ensemble(
        config, task, max_n_train, e, steps_in_mask=1)
    figures.append(chunk_memory(model.apply, config, state, hypers, split,
                                data, 1))
  (e0, e1), (m0, m1) = _PROBE_SIZES, figures
  # The larger of the marginal and the average cost: never below either probe.
  per_member = max((m1 - m0) / (e1 - e0), m1 / e1, 1.0)
  shared = max(m1 - e1 * per_member, 0.0)
  objective = objective_of(config)
  records = (4.0 * (len(objective.step_record._fields) +
                    len(objective.eval_fields)) *
             min(config.chunk_steps, config.steps))
  return MemoryEstimate(per_member, shared, records)


def rough_bytes_per_member(config: Config, task: Task | LinearTask,
                           max_n_train: int,
                           num_params: int) -> float:
  """A deliberately generous analytic figure (no compilation) to skip the probes.

  Parameters, optimizer state, gradients and updates (8 copies of the
  parameters), plus every float a forward/backward pass over the training rows
  and a forward pass over all N rows could keep: per row and layer, 16
  d_model + 4 d_mlp + 4 heads * L floats per position for the transformer, 4
  floats per hidden unit for the MLP, and 4 per class.
  """
  length = task.seq_len
  if config.model == "linear":  # the member's problem: X rows, y, weights
    return 4.0 * (8 * num_params + 4 * max_n_train * (task.n + 3))
  if config.model == "transformer":
    per_row = (length * config.depth * (16 * config.d_model + 4 * config.d_mlp
                                        + 4 * config.num_heads * length))
  else:
    per_row = 4 * (length * config.d_model + sum(config.mlp_hidden))
  per_row += 4 * task.num_classes
  rows = config.batch_size if 0 < config.batch_size < max_n_train else \
      max_n_train
  return 4.0 * (8 * num_params + per_row * (rows + task.num_examples))


def device_budget(config: Config) -> float:
  """Bytes one device may use for the sweep."""
  if config.memory_limit_gb > 0:
    return config.memory_limit_gb * GiB
  device = jax.local_devices()[0]
  stats = None
  try:
    stats = device.memory_stats()
  except Exception:  # pylint: disable=broad-except
    pass  # some backends do not implement it
  if stats and "bytes_limit" in stats:
    return float(stats["bytes_limit"] - stats.get("bytes_in_use", 0))
  ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
  return float(ram) / max(jax.local_device_count(), 1)


@dataclasses.dataclass(frozen=True)
class GroupPlan:
  """Members trained together (a multiple of the device count) and how many groups."""
  group_size: int
  num_groups: int
  estimate: MemoryEstimate | None
  budget: float | None

  @property
  def padded_members(self) -> int:
    return self.group_size * self.num_groups


def plan_groups(config: Config, num_members: int, num_devices: int,
                estimate_fn=None, rough_per_member: float | None = None
                ) -> GroupPlan:
  """Chooses the member groups; raises ConfigError naming the flag when nothing fits.

  `--members_per_group=0` (auto): one group when the whole sweep fits, else the
  largest group that fits. A group size given by hand is checked against the
  budget (and rounded up to a multiple of the device count).
  """
  full = shard_lib.padded_size(num_members, num_devices)
  requested = config.members_per_group
  budget = device_budget(config) * RESERVE
  if rough_per_member is not None and 4 * rough_per_member * (
      full // num_devices) < budget:
    estimate_fn = None  # four times the generous figure fits: no need to probe
  est = estimate_fn() if estimate_fn else None
  if requested:
    group = min(shard_lib.padded_size(requested, num_devices), full)
  else:
    group = full
  if est is not None:
    per_device = lambda g: est.bytes_for(g // num_devices)
    fits = int((budget - est.shared) //
               (est.per_member + est.records_per_member)) * num_devices
    if per_device(num_devices) > budget:
      raise ConfigError(
          f"--members_per_group: one member needs "
          f"{per_device(num_devices) / GiB:.2f} GiB per device but "
          f"{budget / GiB:.2f} GiB is available; shrink the model or "
          "--batch_size, or raise --memory_limit_gb")
    if requested and per_device(group) > budget:
      raise ConfigError(
          f"--members_per_group={requested}: needs "
          f"{per_device(group) / GiB:.2f} GiB per device but "
          f"{budget / GiB:.2f} GiB is available; at most {fits} members fit "
          "(pass --members_per_group=0 to split automatically)")
    if not requested and per_device(group) > budget:
      # As few groups as fit, then as even as the device count allows.
      groups = -(-num_members // max(fits, num_devices))
      group = shard_lib.padded_size(-(-num_members // groups), num_devices)
  num_groups = -(-num_members // group)
  return GroupPlan(group, num_groups, est, budget)


__all__ = ["MemoryEstimate", "GroupPlan", "estimate", "device_budget",
           "plan_groups", "chunk_memory", "GiB"]
