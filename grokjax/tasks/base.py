"""A task: every example of a finite dataset as device arrays, shared by all members."""

from __future__ import annotations

import dataclasses

import jax
import numpy as np


class DataError(ValueError):
  """A missing or malformed data file (the message names the path and the layout)."""


@dataclasses.dataclass(frozen=True)
class Task:
  """A dataset of `N` sequences of `L` tokens, each with one class label.

  Attributes:
    name: the task string it was built from (e.g. ``"x+y"``, ``"s5:x*y"``).
    inputs: ``int32[N, L]`` token ids, ``x op y =`` (or ``x y =``).
    labels: ``int32[N]`` the answer, a class in ``[0, num_classes)``.
    vocab_size: number of distinct input tokens.
    num_classes: number of distinct labels.
    operand_positions: positions of the two operands inside a sequence.
    commutative: whether ``a op b == b op a`` for every pair in the table.
    train_labels: the labels training sees when some are corrupted
      (``--label_noise``; None: the true labels); validation always uses
      `labels`.
    corrupted: ``bool[N]`` the corrupted rows (None without label noise).
    num_pool: rows [0, num_pool) are the training pool and the rest a fixed
      test set (image tasks); None: every row may train, the rest validate.
    operand_offsets: the token id of element 0 at each operand position
      (() : 0 everywhere); Gu et al.'s str.py puts y at an offset.
    validate_pool: with `num_pool`, validation also counts the pool rows a
      member does not train on (Gu et al. 2025's test set after a
      structured hold-out); False: validation is exactly the fixed test set.
    image_shape: (H, W, C) of an image task's flat pixel vectors.
  """
  name: str
  inputs: np.ndarray
  labels: np.ndarray
  vocab_size: int
  num_classes: int
  operand_positions: tuple[int, ...]
  commutative: bool
  train_labels: np.ndarray | None = None
  corrupted: np.ndarray | None = None
  num_pool: int | None = None
  operand_offsets: tuple[int, ...] = ()
  validate_pool: bool = False
  image_shape: tuple[int, int, int] | None = None

  @property
  def num_examples(self) -> int:
    return int(self.inputs.shape[0])

  @property
  def seq_len(self) -> int:
    return int(self.inputs.shape[1])

  @property
  def pool_size(self) -> int:
    """Rows a training subset is drawn from (a training fraction counts these)."""
    return self.num_examples if self.num_pool is None else self.num_pool

  @property
  def float_inputs(self) -> bool:
    """Inputs are float feature vectors (images), not token ids."""
    return bool(np.issubdtype(self.inputs.dtype, np.floating))

  def operands(self) -> np.ndarray:
    """int32[N, P] the elements at the operand positions (tokens less their offsets)."""
    tokens = self.inputs[:, list(self.operand_positions)]
    return tokens - np.asarray(self.operand_offsets or 0, tokens.dtype)

  def device_arrays(self) -> tuple[jax.Array, jax.Array]:
    """Puts inputs and labels on the default device once."""
    return jax.device_put(self.inputs), jax.device_put(self.labels)


def corrupt_labels(labels: np.ndarray, num_classes: int, fraction: float,
                   seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
  """(noisy labels, bool mask of the corrupted rows): round(fraction * N) rows get a wrong class.

  The rows are a uniform random subset (from `seed`); each gets a class drawn
  uniformly among the num_classes - 1 wrong ones. Labels [A, N] (several
  tables) are corrupted at the same rows.
  """
  rng = np.random.default_rng(seed)
  n = labels.shape[-1]
  rows = rng.permutation(n)[:int(round(fraction * n))]
  mask = np.zeros(n, bool)
  mask[rows] = True
  shift = rng.integers(1, num_classes, rows.size)
  noisy = labels.copy()
  noisy[..., rows] = (labels[..., rows] + shift) % num_classes
  return noisy, mask


def with_label_noise(task: Task, fraction: float, seed: int = 0) -> Task:
  """The task with round(fraction * N) rows' training labels replaced by a wrong class."""
  noisy, mask = corrupt_labels(task.labels, task.num_classes, fraction, seed)
  return dataclasses.replace(task, train_labels=noisy.astype(np.int32),
                             corrupted=mask)


def table_task(name: str, x: np.ndarray, y: np.ndarray, z: np.ndarray,
               num_elements: int, *, op_token: bool, symmetric: bool,
               commutative: bool, y_offset: int = 0) -> Task:
  """Builds `x op y = z` sequences from flat operand/answer arrays.

  Tokens ``0..num_elements-1`` are the elements, ``num_elements`` is the
  operator token and ``num_elements + 1`` is ``=``. With `y_offset` the
  second operand's element e is token ``y_offset + e`` (Gu et al.'s
  Grokking-Insight ``str.py``: ``j + d``, d = 60), and the operator and
  ``=`` follow the highest element token.
  """
  x, y, z = (np.asarray(a, np.int32) for a in (x, y, z))
  if symmetric:
    if not commutative:
      raise ValueError(f"--symmetric: task {name} is not commutative, so a∘b "
                       "and b∘a differ; drop --symmetric")
    keep = x <= y
    x, y, z = x[keep], y[keep], z[keep]
  op = num_elements + y_offset
  eq = op + 1
  n = x.shape[0]
  if op_token:
    inputs = np.stack([x, np.full(n, op), y + y_offset, np.full(n, eq)],
                      axis=1)
    positions = (0, 2)
  else:
    inputs = np.stack([x, y + y_offset, np.full(n, eq)], axis=1)
    positions = (0, 1)
  return Task(name=name, inputs=inputs.astype(np.int32), labels=z,
              vocab_size=eq + 1, num_classes=num_elements,
              operand_positions=positions, commutative=commutative,
              operand_offsets=(0, y_offset) if y_offset else ())
