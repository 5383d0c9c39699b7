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

Host memory is planned too (`HostNeeds`): every member's history (each kept
step record and eval) stays on the host until the run's history.npz is
written, a grouped sweep keeps each finished group's final state there, and on
the CPU the "device" arrays are host RAM as well. The budget is the memory
the OS reports available (`MemAvailable`), or `--host_memory_limit_gb`; plans
keep 20% of it in reserve. A grid that cannot fit is refused with the largest
member count (and the `--record_every`) that would.
"""

from __future__ import annotations

import dataclasses
import os

import jax
import numpy as np

from grokjax.config import Config, ConfigError
from grokjax.grid import Grid
from grokjax.tasks import LinearTask, Task
from grokjax.train import sharding as shard_lib
from grokjax.train.state import abstract_ensemble
from grokjax.objective import Data, objective_of
from grokjax.train.step import compile_sweep_chunk, eval_schedule

GiB = 1 << 30
RESERVE = 0.9  # use at most this fraction of the device budget
# XLA:CPU's per-member figure can step up ~20% past E ~ 16 for tiny models
# (other layouts); probing at 16 catches that and is as quick to compile.
_PROBE_SIZES = (4, 16)
HOST_RESERVE = 0.8  # use at most this fraction of the available host memory
# Measured (MLP on x+y mod 13, 4000 steps, record_every=1, one group): peak RSS
# grew by 175 KiB a member from 1024 to 4096 members for 47.9 KiB of history
# a member (3.7 copies: the chunks, the group's history, the merged history
# and the file's bytes are alive together while history.npz is written).
HOST_COPIES = 4
HOST_PER_MEMBER = 4096.0  # its grid row and summary row (Python objects)
HOST_SHARED = 256.0 * (1 << 20)  # the runtime's and compiler's own growth


def size(num_bytes: float) -> str:
  """'3.2 GiB', '410 MiB', '12 KiB', '96 B': a byte count a person can read."""
  for unit, scale in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
    if num_bytes >= scale:
      return f"{num_bytes / scale:.3g} {unit}"
  return f"{num_bytes:.0f} B"


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


@dataclasses.dataclass(frozen=True)
class HostNeeds:
  """Host bytes of one member: its history, and its state (kept when grouped)."""
  history: float
  state: float

  def per_member(self, grouped: bool) -> float:
    # A grouped sweep keeps each group's final state, then concatenates them.
    return (HOST_COPIES * self.history + HOST_PER_MEMBER +
            (2 * self.state if grouped else 0.0))


def history_bytes(config: Config) -> float:
  """One member's float32 history: every kept step record and every eval."""
  objective = objective_of(config)
  kept = -(-config.steps // config.record_every) if config.record_every else 0
  return 4.0 * (len(objective.step_record._fields) * kept +
                len(objective.eval_fields) * eval_schedule(config).size)


def host_needs(config: Config, state_bytes: float) -> HostNeeds:
  return HostNeeds(history_bytes(config), state_bytes)


def host_budget(config: Config) -> float:
  """Bytes of host memory the sweep may use (before the reserve)."""
  if config.host_memory_limit_gb > 0:
    return config.host_memory_limit_gb * GiB
  try:
    with open("/proc/meminfo", encoding="ascii") as f:
      for line in f:
        if line.startswith("MemAvailable:"):
          return float(line.split()[1]) * 1024
  except OSError:
    pass
  try:
    return float(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES"))
  except (ValueError, OSError):  # macOS has no SC_AVPHYS_PAGES: half the RAM
    return float(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")) / 2


def _grid_flags(config: Config) -> str:
  varied = Grid.from_config(config).varied
  return ", ".join(f"--{k}" for k in varied) or "the sweep"


def check_host(config: Config, num_members: int, grouped: bool,
               needs: HostNeeds, device_bytes: float = 0.0) -> None:
  """ConfigError (the grid's flags, the largest that fits) if the host cannot hold the sweep.

  `device_bytes`: what the devices' arrays take of the same RAM (on the CPU).
  """
  budget = host_budget(config) * HOST_RESERVE
  per = needs.per_member(grouped)
  need = HOST_SHARED + device_bytes + num_members * per
  if need <= budget:
    return
  fit = max(int((budget - HOST_SHARED - device_bytes) // per), 0)
  hint = ""
  for k in (2, 5, 10, 20, 50, 100, 200, 500, 1000):
    if config.record_every and k > config.record_every and k < config.steps:
      thinner = HostNeeds(history_bytes(config.replace(record_every=k)),
                          needs.state)
      if (HOST_SHARED + device_bytes + num_members *
          thinner.per_member(grouped)) <= budget:
        hint = (f"; or keep every {k}th step record: --record_every={k} "
                "holds these histories")
        break
  source = ("--host_memory_limit_gb" if config.host_memory_limit_gb > 0
            else "what the OS reports available")
  raise ConfigError(
      f"{_grid_flags(config)}: {num_members} members need {size(need)} of "
      f"host memory ({size(needs.history)} of history a member, kept "
      f"{HOST_COPIES} times over while it is written"
      f"{f', and its final state of {size(needs.state)}' if grouped else ''}"
      f") but "
      f"{size(budget)} is usable ({HOST_RESERVE:.0%} of {source}); "
      f"at most {fit} members fit{hint}")


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


def _group_size(config: Config, num_members: int, num_devices: int,
                est: MemoryEstimate | None, budget: float) -> int:
  """The members of one group (see `plan_groups`) under a per-device budget."""
  full = shard_lib.padded_size(num_members, num_devices)
  requested = config.members_per_group
  group = (min(shard_lib.padded_size(requested, num_devices), full)
           if requested else full)
  if est is None:
    return group
  per_device = lambda g: est.bytes_for(g // num_devices)
  fits = int((budget - est.shared) //
             (est.per_member + est.records_per_member)) * num_devices
  if per_device(num_devices) > budget:
    if config.memory_limit_gb > 0:
      raise ConfigError(
          f"--memory_limit_gb={config.memory_limit_gb:g}: one member needs "
          f"{size(per_device(num_devices))} per device but the limit leaves "
          f"{size(budget)} ({RESERVE:.0%} of it); raise it, or pass 0 to "
          "use what the device reports")
    raise ConfigError(
        f"--model: one member needs {size(per_device(num_devices))} per "
        f"device but {size(budget)} is available; shrink the model or "
        "--batch_size")
  if requested and per_device(group) > budget:
    raise ConfigError(
        f"--members_per_group={requested}: needs "
        f"{size(per_device(group))} per device but {size(budget)} is "
        f"available; at most {fits} members fit "
        "(pass --members_per_group=0 to split automatically)")
  if not requested and per_device(group) > budget:
    # As few groups as fit, then as even as the device count allows.
    groups = -(-num_members // max(fits, num_devices))
    group = shard_lib.padded_size(-(-num_members // groups), num_devices)
  return group


def plan_groups(config: Config, num_members: int, num_devices: int,
                estimate_fn=None, rough_per_member: float | None = None,
                host: HostNeeds | None = None) -> GroupPlan:
  """Chooses the member groups; raises ConfigError naming the flag when nothing fits.

  `--members_per_group=0` (auto): one group when the whole sweep fits, else the
  largest group that fits. A group size given by hand is checked against the
  budget (and rounded up to a multiple of the device count).

  With `host`, the plan also fits host memory (`check_host`): the histories
  are checked first (before any probe compiles), and on the CPU, where the
  devices' arrays are host RAM too, the device budget is what the histories
  (and a grouped sweep's final states) leave.
  """
  full = shard_lib.padded_size(num_members, num_devices)
  budget = device_budget(config) * RESERVE
  shares_ram = (host is not None and not config.memory_limit_gb and
                jax.local_devices()[0].platform == "cpu")
  local = min(jax.local_device_count(), num_devices)
  left = lambda grouped: (host_budget(config) * HOST_RESERVE - HOST_SHARED -
                          num_members * host.per_member(grouped)) / local
  if host is not None:
    check_host(config, num_members, False, host)
  if shares_ram:
    budget = min(budget, left(False))
  if rough_per_member is not None and 4 * rough_per_member * (
      full // num_devices) < budget:
    estimate_fn = None  # four times the generous figure fits: no need to probe
  est = estimate_fn() if estimate_fn else None
  group = _group_size(config, num_members, num_devices, est, budget)
  if shares_ram and group < num_members and left(True) < budget:
    if left(True) <= 0:
      check_host(config, num_members, True, host)  # raises
    budget = left(True)
    group = _group_size(config, num_members, num_devices, est, budget)
  num_groups = -(-num_members // group)
  if host is not None:
    device_bytes = 0.0
    if shares_ram:
      device_bytes = local * (est.bytes_for(group // num_devices) if est else
                              (rough_per_member or 0.0) * group / num_devices)
    check_host(config, num_members, num_groups > 1, host, device_bytes)
  return GroupPlan(group, num_groups, est, budget)


__all__ = ["MemoryEstimate", "GroupPlan", "HostNeeds", "estimate",
           "device_budget", "host_budget", "host_needs", "history_bytes",
           "check_host", "plan_groups", "chunk_memory", "size", "GiB"]
