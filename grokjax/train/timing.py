"""Timing the sweep's compiled program (what experiments/benchmark.py and
speed_table.py report): the chunk's steady-state member-steps/s and XLA's
FLOPs per member-step, the same members one after another through a jitted
step, the loop with evaluations at a cadence, and the device's float32
matmul peak. Importable, so a notebook can time its own setup:

    gj.train.timing.time_sweep(gj.Config(task="x+y", p=31), num_members=8)
"""

from __future__ import annotations

import functools
import time

import jax
import jax.numpy as jnp

from grokjax import models
from grokjax.config import Config, ConfigError
from grokjax.io import StoredRun
from grokjax.train import sharding as shard_lib
from grokjax.train import state as state_lib
from grokjax.train import step as step_lib


def setup_group(config: Config, num_members: int, steps: int):
  """`num_members` members of `config` (seeds 0..E-1) ready for a chunk of
  `steps` steps: (config, model, hypers, state, split, data)."""
  config = config.replace(seed=tuple(range(num_members)), steps=10**9)
  run = StoredRun.from_config(config)
  model = models.make_model(config, run.task)
  state, split = state_lib.init_group(model, config, run.task,
                                      run.max_n_train, run.hypers)
  inputs, labels = run.task.device_arrays()
  data = step_lib.Data(inputs, labels, jnp.zeros(steps, bool))
  return config, model, jax.device_put(run.hypers), state, split, data


def step_flops(model, config, state, hypers, split, data) -> float:
  """XLA's FLOP count of one vmapped training step (a scan's body is counted once, so not the chunk)."""
  step = jax.vmap(functools.partial(step_lib.train_step, model.apply, config),
                  in_axes=(0, 0, 0, None, None))
  cost = jax.jit(step).lower(state, hypers, split, data,
                             jnp.int32(0)).compile().cost_analysis()
  cost = cost[0] if isinstance(cost, (list, tuple)) else cost
  return float(cost.get("flops", float("nan")))


def time_sweep(config: Config, num_members: int, steps: int = 100) -> dict:
  """Steady-state member-steps/s of the compiled chunk of `steps` steps with
  E = `num_members` members (the sweep's own program), XLA's FLOPs per
  member-step, the FLOP/s and the compile time."""
  config, model, hypers, state, split, data = setup_group(config, num_members,
                                                     steps)
  # The sweep's own path: members sharded over a 1-D mesh of every device.
  mesh = shard_lib.member_mesh()
  if num_members % mesh.size:
    raise ConfigError(f"--members={num_members}: must be a multiple of "
                      f"the {mesh.size} devices")
  members, shared = shard_lib.member_sharding(mesh), shard_lib.replicated(mesh)
  state, hypers, split = jax.device_put((state, hypers, split), members)
  data = jax.device_put(data, shared)
  chunk, _ = step_lib.compile_sweep_chunk(model.apply, config, steps, mesh)
  t = time.perf_counter()
  start = lambda i: jax.device_put(jnp.int32(i), shared)
  stop = start(config.steps)
  compiled = chunk.lower(state, hypers, split, data, start(0), stop).compile()
  compile_s = time.perf_counter() - t
  flops = step_flops(model, config, state, hypers, split, data) / num_members
  state, _ = compiled(state, hypers, split, data, start(0), stop)  # warm-up
  jax.block_until_ready(state)
  t = time.perf_counter()
  state, _ = compiled(state, hypers, split, data, start(steps), stop)
  jax.block_until_ready(state)
  seconds = time.perf_counter() - t
  rate = steps * num_members / seconds
  return {"E": num_members, "member_steps_per_s": rate,
          "flops_per_member_step": flops, "flops_per_s": flops * rate,
          "compile_s": compile_s}


def time_sequential(config: Config, num_members: int, steps: int = 100
                    ) -> float:
  """Member-steps/s of the same members trained one after another with a
  jitted step (how single-run codebases train)."""
  config, model, hypers, state, split, data = setup_group(config, num_members,
                                                     steps)
  step = jax.jit(functools.partial(step_lib.train_step, model.apply, config),
                 donate_argnums=(0,))
  take = lambda tree, i: jax.tree.map(lambda x: x[i], tree)
  members = [(take(state, i), take(hypers, i), take(split, i))
             for i in range(num_members)]
  s, h, sp = members[0]
  warm, _ = step(jax.tree.map(jnp.copy, s), h, sp, data, jnp.int32(0))
  jax.block_until_ready(warm)  # compiled; members[0]'s own state is untouched
  t = time.perf_counter()
  for s, h, sp in members:
    for i in range(steps):
      s, rec = step(s, h, sp, data, jnp.int32(i))
    jax.block_until_ready(rec)
  return steps * num_members / (time.perf_counter() - t)


def matmul_peak(n: int = 2048, repeats: int = 10) -> float:
  """FLOP/s of a dense float32 n x n matmul: the device's practical limit."""
  a = jax.random.normal(jax.random.key(0), (n, n), jnp.float32)
  f = jax.jit(lambda x: x @ x)
  jax.block_until_ready(f(a))
  best = float("inf")
  for _ in range(repeats):
    t = time.perf_counter()
    jax.block_until_ready(f(a))
    best = min(best, time.perf_counter() - t)
  return 2 * n**3 / best


def time_loop(config: Config, eval_every: int, members: int = 1,
              steps: int = 100, repeats: int = 3) -> float:
  """Steps/s of the compiled chunk of `steps` steps and `members` members
  (the sweep's program) with an evaluation every `eval_every` steps (0:
  none); the fastest of `repeats`. Member-steps/s: times `members`."""
  config, model, hypers, state, split, data = setup_group(config, members, steps)
  if eval_every:
    data = data._replace(eval_at=jnp.arange(steps) % eval_every == 0)
  task = StoredRun.from_config(config).task
  val_rows = task.num_examples - int(hypers.n_train.min())
  chunk, _ = step_lib.compile_sweep_chunk(model.apply, config, steps)
  start = lambda i: jnp.int32(i)
  compiled = chunk.lower(state, hypers, split, data, start(0), start(10**9),
                         val_rows=val_rows).compile()
  state, _ = compiled(state, hypers, split, data, start(0), start(10**9))
  jax.block_until_ready(state)
  best = float("inf")
  for _ in range(repeats):
    t = time.perf_counter()
    state, _ = compiled(state, hypers, split, data, start(0), start(10**9))
    jax.block_until_ready(state)
    best = min(best, time.perf_counter() - t)
  return steps / best


__all__ = ["setup_group", "time_sweep", "time_sequential", "time_loop", "step_flops",
           "matmul_peak"]
