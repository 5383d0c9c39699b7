"""(n, k) sparse parity (Barak et al. 2022; Prieto et al. 2025): the XOR of k of n random bits.

`num_samples` strings of n uniform bits are drawn once from `seed` (every
member sees the same dataset and splits it by its own data seed); the label
is the parity of the first k bits, the other n - k are noise. (The hidden
subset's position is without loss of generality: the models treat bit
positions symmetrically at initialization.) Each sequence is the n bits then
an ``=`` token (token 2), so the transformer's last-position readout sees
them all; the MLP reads the n bit positions.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from grokjax.settings import setting
from grokjax.tasks.base import Task


@dataclasses.dataclass(frozen=True)
class ParitySettings:
  """--task=parity: the strings and their label."""
  parity_n: int = setting(40, "--task=parity: bits per string")
  parity_k: int = setting(3, "--task=parity: the label is the parity of k of "
                          "them (the rest are noise)")
  num_samples: int = setting(2000, "--task=parity: strings drawn (the "
                             "dataset that members split)")


def check_parity(n: int, k: int, num_samples: int) -> None:
  if not 1 <= k <= n:
    raise ValueError(f"--parity_k={k}: must be in 1..--parity_n={n}")
  if num_samples < 2:
    raise ValueError(f"--num_samples={num_samples}: must be >= 2")


def parity_task(n: int = 40, k: int = 3, num_samples: int = 2000,
                seed: int = 0) -> Task:
  check_parity(n, k, num_samples)
  rng = np.random.default_rng(seed)
  bits = rng.integers(0, 2, (num_samples, n), dtype=np.int64)
  labels = bits[:, :k].sum(axis=1) % 2
  inputs = np.concatenate([bits, np.full((num_samples, 1), 2)], axis=1)
  return Task(name=f"parity(n={n},k={k})", inputs=inputs.astype(np.int32),
              labels=labels.astype(np.int32), vocab_size=3, num_classes=2,
              operand_positions=tuple(range(n)), commutative=False)


__all__ = ["parity_task", "check_parity"]
