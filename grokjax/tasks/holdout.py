"""Structured hold-outs of a table task (Gu et al. 2025): a region of the x-y table is never trained on.

``--holdout=square:k`` holds out the k x k square x < k, y < k of the table;
``strip:k`` the k rows x < k (every y). The held-out pairs become the task's
fixed test set: its rows move to the end (`Task.num_pool` marks where they
start), members draw their training rows (`--train_fraction` or
`--train_size`) from the other pairs only, and validation is exactly the
held-out region, so t_gen measures generalization to a part of the table the
network has seen nothing of.

Gu et al.'s code (Qihuai27/Grokking-Insight, ``transformer/rec.py`` for the
square, ``str.py`` for the strip) tests on the region *and* on the pool pairs
it did not train on: ``with_holdout(..., validate="untrained")``
(``--holdout_eval=untrained``) validates on those rows. Their ``k`` is
inclusive (``range(k + 1)``): their rec.py square k = 30 is ``square:31``,
their str.py strip k = 40 is ``strip:41``.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from grokjax.settings import setting
from grokjax.tasks.base import Task


def holdout_mask(task: Task, spec: str) -> np.ndarray:
  """bool[N]: the rows a ``square:k`` / ``strip:k`` hold-out removes."""
  kind, _, arg = spec.partition(":")
  if kind not in ("square", "strip") or not arg.isdigit() or int(arg) < 1:
    raise ValueError(f"--holdout={spec}: use none, square:<k> or strip:<k> "
                     "with k >= 1")
  k = int(arg)
  if len(task.operand_positions) != 2 or task.float_inputs:
    raise ValueError(f"--holdout={spec}: needs a two-operand table task "
                     f"(x op y), not {task.name}")
  x, y = task.operands().T
  mask = (x < k) & (y < k) if kind == "square" else x < k
  if mask.all() or not mask.any():
    raise ValueError(f"--holdout={spec}: holds out {int(mask.sum())} of "
                     f"{mask.size} rows; choose k so that both parts are "
                     "non-empty")
  return mask


HOLDOUT_EVAL = ("region", "untrained")


@dataclasses.dataclass(frozen=True)
class HoldoutSettings:
  """A structured hold-out of a two-operand table (Gu et al. 2025)."""
  holdout: str = setting("none", "structured hold-out of a two-operand table "
                         "(Gu et al. 2025): square:k (x, y < k) or strip:k "
                         "(x < k) is never trained on and is the validation "
                         "set (see --holdout_eval)")
  holdout_eval: str = setting("region", "with --holdout: validate on the "
                              "held-out region only (region) or on every row "
                              "a member does not train on, region and unused "
                              "pairs (untrained: Gu et al.'s code's test set)")

  def check(self) -> None:
    if self.holdout_eval not in HOLDOUT_EVAL:
      raise ValueError(f"--holdout_eval={self.holdout_eval}: choose one of "
                       f"{', '.join(HOLDOUT_EVAL)}")
    if self.holdout_eval != "region" and self.holdout == "none":
      raise ValueError(f"--holdout_eval={self.holdout_eval}: there is no "
                       "held-out region (--holdout=none); set --holdout or "
                       "drop the flag")


def with_holdout(task: Task, spec: str, validate: str = "region") -> Task:
  """The task with the held-out rows last, as its fixed test set.

  `validate`: ``region`` validates on the held-out rows only; ``untrained``
  on every row a member does not train on (the region and the unused pool
  rows: Gu et al.'s test set).
  """
  if validate not in HOLDOUT_EVAL:
    raise ValueError(f"--holdout_eval={validate}: choose from "
                     f"{', '.join(HOLDOUT_EVAL)}")
  mask = holdout_mask(task, spec)
  order = np.concatenate([np.flatnonzero(~mask), np.flatnonzero(mask)])
  take = lambda a: None if a is None else a[..., order]
  return dataclasses.replace(
      task, name=f"{task.name} holdout {spec}", inputs=task.inputs[order],
      labels=take(task.labels), train_labels=take(task.train_labels),
      corrupted=take(task.corrupted), num_pool=int((~mask).sum()),
      validate_pool=validate == "untrained")


__all__ = ["HOLDOUT_EVAL", "holdout_mask", "with_holdout"]
