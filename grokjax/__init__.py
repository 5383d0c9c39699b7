"""grokjax: grokking sweeps as one compiled program (jit(vmap(scan(step)))).

    import grokjax as gj
    result = gj.sweep(gj.Config(task="x+y", p=31, seed=range(4), steps=3000))
    result.summary[0]["t_gen"]

Layers (each imports only those above it in this list; no cycles):
  settings               settings blocks owned by their code, and the View a
                         registry row reads them through
  tasks, models, optim   datasets, Flax modules, Optax transforms and losses,
                         each with its registry (tasks.FAMILIES,
                         models.MODELS, optim.chain.TRANSFORMS, LOSSES); they
                         know nothing of configs or training
  rules                  the checks across owners' settings
  config, grid           Config (every block composed, flat); the member Grid
  members, objective     each member's values, keys and split; the one
                         objective (classification or regression) of a task
  io                     RunDir (every path of a run directory), snapshots,
                         plots
  analysis               reads arrays and run directories; never `train`
  train                  the step, the chunk, the sweep's host loop
"""

from grokjax import (analysis, io, members, models, objective, optim,
                     settings, tasks, train)
from grokjax.config import Config, ConfigError
from grokjax.grid import Grid, parse_values
from grokjax.tasks import Task, make_task
from grokjax.train import Preempted, SweepResult, sweep

__version__ = "0.1.0"

__all__ = ["Config", "ConfigError", "Grid", "Preempted", "SweepResult", "Task",
           "analysis", "io", "make_task", "members", "models", "objective", "optim", "parse_values", "sweep",
           "settings", "tasks", "train"]
