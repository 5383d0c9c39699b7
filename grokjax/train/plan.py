"""A sweep's plan: everything fixed before its first step (the task, the
members, the devices, the groups and their compiled chunks), `make_plan`
builds it, and `log_start` says it."""

from __future__ import annotations

import dataclasses
from typing import Callable

import jax
import numpy as np

from grokjax.io import snapshots as snap_lib
from grokjax.config import Config, ConfigError
from grokjax.grid import Grid
from grokjax.layout import Group, Layout, plan_layout
from grokjax.models import make_model
from grokjax.objective import objective_of
from grokjax.tasks import LinearTask, Task
from grokjax.train import memory
from grokjax.train import sharding as shard_lib
from grokjax.train.state import (Data, Hypers, MemberState,
                                 abstract_ensemble, abstract_state,
                                 count_params, make_hypers, member_splits)
from grokjax.train.step import (compile_sweep_chunk, compile_sweep_eval,
                                eval_schedule, padded_eval_mask)


def label_noise_record(config: Config, task, num_members: int) -> dict:
  """config.json's record of --label_noise: the corrupted rows, and each member's corrupted share of its train rows."""
  if getattr(task, "corrupted", None) is None:
    return {}
  is_train = np.asarray(member_splits(config, task,
                                      np.arange(num_members)).is_train)
  share = (is_train & task.corrupted[None]).sum(1) / np.maximum(
      is_train.sum(1), 1)
  return {"label_noise": {"corrupted_rows": int(task.corrupted.sum()),
                          "corrupted_train_fraction": share.tolist()}}


@dataclasses.dataclass
class Plan:
  """Everything fixed before the first step: the task, members, devices, groups, compiled functions."""
  config: Config
  task: Task | LinearTask
  model: object
  grid: Grid
  members: list[dict]
  hypers: Hypers  # host arrays [E]
  max_n: int
  n_params: int
  mesh: object
  groups: memory.GroupPlan  # the memory plan: the largest group that fits
  layout: Layout  # the groups that train, in order
  eval_steps: np.ndarray
  snapshot_steps: np.ndarray
  data: Data
  chunk_jit: Callable
  chunk_traces: object
  eval_fn: Callable
  programs: dict  # (size, max_n) -> the chunk compiled for those shapes

  @property
  def num_members(self) -> int:
    return len(self.members)

  def group(self, g: int) -> Group:
    return self.layout.groups[g]

  def group_hypers(self, g: int) -> Hypers:
    """Host arrays [size] of group g: its members, then copies of the last."""
    group = self.group(g)
    return shard_lib.pad_members(jax.tree.map(
        lambda x: np.asarray(x)[list(group.members)], self.hypers), group.size)

  def abstract(self, size: int) -> MemberState:
    """The state of a group of `size` rows, abstract and sharded (a restore's target)."""
    return abstract_state(self.config, self.task, self.max_n, size,
                          shard_lib.member_sharding(self.mesh))

  def val_rows(self, g: int) -> int:
    """The most validation rows a member of group g has (an evaluation over
    the validation rows gathers that many; the same for every group of one
    program: a bucket's members share n_train, and without buckets it is
    the sweep's largest)."""
    task = self.task
    N = getattr(task, "num_examples", 0)
    pool = getattr(task, "num_pool", None)
    if pool is not None and not task.validate_pool:
      return N - pool  # a fixed test set
    members = (list(self.group(g).members) if self.layout.bucketed
               else slice(None))
    return N - int(np.min(np.asarray(self.hypers.n_train)[members]))

  def program(self, g: int) -> Callable:
    """Group g's compiled chunk (compiled once per (size, max_n))."""
    group = self.group(g)
    if group.program not in self.programs:
      self.programs[group.program] = compile_chunk(
          self.chunk_jit, self.config, self.task, group.max_n, group.size,
          self.data, self.mesh, self.abstract(group.size), self.val_rows(g))
    return self.programs[group.program]


def check_precision(config: Config) -> None:
  if config.needs_x64 and not jax.config.jax_enable_x64:
    raise ConfigError(f"{config.x64_flag}: 64-bit JAX is off; set "
                      "JAX_ENABLE_X64=1 or call jax.config.update("
                      "'jax_enable_x64', True) before the sweep "
                      "(experiments/sweep.py does)")


def _plan_groups(config, task, E, D, max_n, n_params, ckpts, workdir
                 ) -> memory.GroupPlan:
  """A resumed run keeps its checkpoint's group size; a new one plans by memory."""
  group_size = ckpts.group_size() if ckpts else None
  one = abstract_state(config, task, max_n, 1, None)
  host = memory.host_needs(config, sum(x.size * x.dtype.itemsize
                                       for x in jax.tree.leaves(one)))
  if group_size is None:
    return memory.plan_groups(
        config, E, D, lambda: memory.estimate(config, task, max_n),
        memory.rough_bytes_per_member(config, task, max_n, n_params), host)
  if group_size % D:
    raise ConfigError(f"--workdir={workdir}: its checkpoint trains groups of "
                      f"{group_size} members, which {D} devices cannot "
                      "share evenly; resume on a device count that divides "
                      "it, or pass --overwrite")
  memory.check_host(config, E, E > group_size, host)
  return memory.GroupPlan(group_size, -(-E // group_size), None, None)


def compile_chunk(chunk_fn, config, task, max_n, group_size, data, mesh,
                   abstract, val_rows):
  """The chunk compiled ahead of time for one group's shapes and placements."""
  _, _, hypers, split, _ = abstract_ensemble(config, task, max_n, group_size,
                                             1)
  msh, rep = shard_lib.member_sharding(mesh), shard_lib.replicated(mesh)
  place = lambda tree, sharding: jax.tree.map(
      lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=sharding),
      tree)
  step = jax.ShapeDtypeStruct((), np.int32, sharding=rep)
  return chunk_fn.lower(abstract, place(hypers, msh), place(split, msh), data,
                        step, step, val_rows=val_rows).compile()


def _layout(config: Config, objective, hypers: Hypers, max_n: int,
            groups: memory.GroupPlan, D: int, stored: Layout | None,
            resuming: bool, workdir) -> Layout:
  """The stored layout of a resumed run, else buckets by size (full batch) in
  groups that fit; a resumed run from before layouts keeps its uniform groups."""
  if stored is not None:
    if stored.num_members != len(hypers.n_train) or any(
        g.size % D for g in stored.groups):
      raise ConfigError(f"--workdir={workdir}: its groups of "
                        f"{sorted({g.size for g in stored.groups})} rows "
                        f"cannot be split over {D} devices; resume on a "
                        "device count that divides them, or pass --overwrite")
    return stored
  return plan_layout(hypers.n_train, groups.group_size, D,
                     config.bucket_by_size and not resuming and
                     objective.gathers_max_n(config, max_n))


def make_plan(config: Config, devices, ckpts, workdir, flag,
          stored: Layout | None = None, compile_all: bool = True) -> Plan:
  """Builds the task and members, plans the groups, compiles their chunks.

  `stored`: a resumed run's layout (config.json). `compile_all`: compile
  every group's chunk now (else on its first use). `flag.phase` names each
  phase for a signal that arrives in it.
  """
  flag.phase = "planning the sweep"
  task = config.build_task()
  grid = Grid.from_config(config)
  members = grid.rows()
  hypers = make_hypers(grid, task, config.train_size)
  max_n = int(hypers.n_train.max())
  model = make_model(config, task)
  mesh = shard_lib.member_mesh(devices)
  rep = shard_lib.replicated(mesh)
  n_params = count_params(jax.eval_shape(
      lambda: model.init(jax.random.key(0), task.inputs[:1]))["params"])
  flag.phase = "planning memory (probe compiles)"
  groups = _plan_groups(config, task, len(members), mesh.size, max_n,
                        n_params, ckpts, workdir)
  layout = _layout(config, objective_of(config), hypers, max_n, groups,
                   mesh.size, stored, ckpts is not None, workdir)
  flag.phase = "compiling the sweep"
  eval_steps = eval_schedule(config)
  K = min(config.chunk_steps, config.steps)
  data = shard_lib.global_array(
      Data(task.inputs, task.labels,
           padded_eval_mask(eval_steps, -(-config.steps // K) * K),
           getattr(task, "train_labels", None)), rep)
  chunk_jit, chunk_traces = compile_sweep_chunk(model.apply, config, K, mesh)
  plan = Plan(
      config, task, model, grid, members, hypers, max_n, n_params, mesh, groups,
      layout, eval_steps,
      (snap_lib.snapshot_schedule(config) if workdir
       else np.zeros(0, np.int64)), data, chunk_jit, chunk_traces,
      compile_sweep_eval(model.apply, config, mesh), {})
  for g in range(layout.num_groups if compile_all else 0):
    plan.program(g)
  return plan


def log_start(plan: Plan, restored, log) -> None:
  config, groups, D = plan.config, plan.groups, plan.mesh.size
  layout = plan.layout
  fit = ""
  if layout.bucketed:
    sizes = sorted({g.max_n for g in layout.groups})
    fit = (f"; {len(sizes)} buckets by training-set size ({sizes[0]}.."
           f"{sizes[-1]} rows), {layout.num_groups} groups, "
           f"{len(layout.programs)} programs, "
           f"{100 * layout.useful_fraction(plan.hypers.n_train):.0f}% of "
           f"the rows gathered are real (without buckets "
           f"{100 * Layout.uniform(plan.num_members, groups.group_size, plan.max_n).useful_fraction(plan.hypers.n_train):.0f}%)")
  elif layout.num_groups > 1:
    fit = f"; {layout.num_groups} groups of {layout.groups[0].size} members"
  if groups.estimate is not None:
    fit += (f" (estimate {groups.estimate.bytes_for(groups.group_size // D) / memory.GiB:.2f}"
            f" of {groups.budget / memory.GiB:.2f} GiB per device)")
  log(f"grokjax: {plan.num_members} members x {config.steps} steps, task "
      f"{plan.task.name} (N={plan.task.num_examples}, max n_train="
      f"{plan.max_n}), {config.model} with {plan.n_params:,} params/member, "
      f"{D} {jax.default_backend()} device(s) in {jax.process_count()} "
      f"process(es){fit}")
  if restored:
    p = restored[0]
    log(f"resuming from the checkpoint at step {p['step']} of group "
        f"{p['group']}{' (finished)' if p['finished'] else ''}")
