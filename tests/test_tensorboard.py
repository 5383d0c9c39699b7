"""TensorBoard event files: every value against history.npz and summary.csv,
each point once after a resume, analyze.py's copy, and the real server."""

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request

import numpy as np
import pytest
from tensorboard.backend.event_processing import event_file_loader
from tensorboard.plugins.hparams import metadata, plugin_data_pb2

import grokjax as gj
from grokjax import io as gio
from grokjax.analysis import report
from grokjax.io import tensorboard as tb_lib

# 2 groups of 2 members (one axis of 2 values varies: run names from it).
CONFIG = gj.Config(task="x+y", p=11, depth=1, d_model=16, num_heads=2,
                   d_mlp=32, steps=120, chunk_steps=40, eval_every=20,
                   checkpoint_every=40, seed=(0, 1),
                   train_fraction=(0.5, 0.8), members_per_group=2)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
  workdir = str(tmp_path_factory.mktemp("tb") / "run")
  # At most 50 per-step points: every 3rd of 120 steps is kept.
  with pytest.MonkeyPatch.context() as mp:
    mp.setattr(tb_lib, "STEP_POINTS", 50)
    gj.sweep(CONFIG, workdir=workdir, log=None)
  return workdir


def _events(path):
  """Every event of one file, in order, as TensorBoard's loader reads them."""
  return list(event_file_loader.LegacyEventFileLoader(path).Load())


def _scalars(path):
  """{tag: [(step, value), ...]} in file order (duplicates kept)."""
  out = {}
  for event in _events(path):
    for value in event.summary.value:
      if value.HasField("simple_value"):
        out.setdefault(value.tag, []).append((event.step, value.simple_value))
  return out


def _names(workdir):
  members = gio.read_csv(os.path.join(workdir, "members.csv"))
  return [f"seed={m['seed']},train_fraction={float(m['train_fraction']):g}"
          for m in members]


def _check_curves(root, workdir, stride):
  history = gio.read_history(workdir)
  for i, name in enumerate(_names(workdir)):
    scalars = _scalars(os.path.join(root, name, tb_lib.CURVES))
    for key in ("train_loss", "train_acc", "val_loss", "val_acc",
                "param_norm", "train_zero_loss"):
      assert scalars[f"eval/{key}"] == [
          (int(s), float(v)) for s, v in zip(history["eval_step"],
                                             history[key][i])], (name, key)
    kept = history["record_step"] % stride == 0
    for key in ("step_train_loss", "step_train_acc"):
      assert scalars[f"train/{key}"] == [
          (int(s), float(v)) for s, v in zip(history["record_step"][kept],
                                             history[key][i][kept])], key


def test_every_value_matches_history_and_summary(run):
  root = os.path.join(run, "tensorboard")
  _check_curves(root, run, stride=3)
  summary = gio.read_csv(os.path.join(run, "summary.csv"))
  for i, name in enumerate(_names(run)):
    path = os.path.join(root, name, tb_lib.HPARAMS)
    scalars = _scalars(path)
    for key in ("t_mem", "t_gen", "delay", "final_train_acc",
                "final_val_acc"):
      value = float(summary[i][key]) if summary[i][key] else float("nan")
      (step, got), = scalars[f"hparams/{key}"]
      # float32 in the event; "never" is NaN.
      assert step == 120 and np.float32(value) == np.float32(got) or (
          np.isnan(value) and np.isnan(got)), key
    start = [plugin_data_pb2.HParamsPluginData.FromString(
        v.metadata.plugin_data.content).session_start_info
             for e in _events(path) for v in e.summary.value
             if v.tag == metadata.SESSION_START_INFO_TAG]
    assert len(start) == 1
    assert dict((k, v.number_value) for k, v in start[0].hparams.items()) == {
        "seed": float(summary[i]["seed"]),
        "train_fraction": float(summary[i]["train_fraction"])}


def test_a_resumed_run_has_each_point_once(run, tmp_path):
  """As if killed at step 80 of group 1 after its event files had step 120."""
  workdir = str(tmp_path / "run")
  shutil.copytree(run, workdir)
  from grokjax.train import checkpoint as ckpt_lib  # pylint: disable=import-outside-toplevel
  ckpt_dir = os.path.join(workdir, "checkpoints")
  for index in os.listdir(ckpt_dir):
    if int(index) > ckpt_lib.index_of(1, 80, CONFIG.steps, False):
      shutil.rmtree(os.path.join(ckpt_dir, index))
  for name in ("summary.csv", "history.npz"):
    os.remove(os.path.join(workdir, name))
  lines = []
  with pytest.MonkeyPatch.context() as mp:
    mp.setattr(tb_lib, "STEP_POINTS", 50)
    gj.sweep(CONFIG, workdir=workdir, log=lines.append)
  assert any("resuming from the checkpoint at step 80 of group 1" in l
             for l in lines)
  _check_curves(os.path.join(workdir, "tensorboard"), workdir, stride=3)


def test_analyze_writes_the_same_event_files_for_an_existing_run(run,
                                                                 tmp_path):
  out = str(tmp_path / "analysis")
  report.analyze_run(run, out, bootstrap=10, tensorboard=True, log=lambda _: 0)
  # Same curves (the stride follows --steps: every step of 120 is kept here).
  _check_curves(os.path.join(out, "tensorboard"), run, stride=1)


def _free_port():
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


def _get(url, body=None, timeout=10):
  data = None if body is None else json.dumps(body).encode()
  request = urllib.request.Request(url, data=data, headers={
      "Content-Type": "application/json"})
  with urllib.request.urlopen(request, timeout=timeout) as response:
    return json.loads(response.read())


# In the slow run (pytest -m slow, which .ci/run also runs).
@pytest.mark.slow
def test_the_tensorboard_server_serves_the_scalars_and_the_hparams(run):
  port = _free_port()
  server = subprocess.Popen(
      [sys.executable, "-m", "tensorboard.main", "--logdir",
       os.path.join(run, "tensorboard"), "--host", "127.0.0.1", "--port",
       str(port), "--load_fast=false"], stdout=subprocess.PIPE,
      stderr=subprocess.STDOUT)
  base = f"http://127.0.0.1:{port}"
  try:
    names = _names(run)
    deadline = time.time() + 120
    while True:  # until the server is up and has read every run
      try:
        if set(names) <= set(_get(f"{base}/data/runs")):
          break
      except OSError:
        pass
      assert server.poll() is None and time.time() < deadline
      time.sleep(0.5)
    history = gio.read_history(run)
    query = urllib.parse.urlencode({"run": names[3], "tag": "eval/val_acc"})
    points = _get(f"{base}/data/plugin/scalars/scalars?{query}")
    assert [(p[1], p[2]) for p in points] == [
        (int(s), float(v)) for s, v in zip(history["eval_step"],
                                            history["val_acc"][3])]
    groups = _get(f"{base}/data/plugin/hparams/session_groups", {
        "experimentName": "", "startIndex": 0, "sliceSize": 100,
        "allowedStatuses": ["STATUS_SUCCESS"],
        "colParams": [{"hparam": "seed"}, {"hparam": "train_fraction"},
                      {"metric": {"tag": "hparams/final_val_acc",
                                  "group": ""}}]})
    assert groups["totalSize"] == 4
    summary = gio.read_csv(os.path.join(run, "summary.csv"))
    by_name = {g["name"]: g for g in groups["sessionGroups"]}
    for i, name in enumerate(names):
      assert by_name[name]["hparams"] == {
          "seed": float(summary[i]["seed"]),
          "train_fraction": float(summary[i]["train_fraction"])}
      val = {m["name"]["tag"]: m["value"]
             for m in by_name[name]["metricValues"]}["hparams/final_val_acc"]
      assert val == pytest.approx(float(summary[i]["final_val_acc"]),
                                  rel=1e-7)
  finally:
    server.terminate()
    server.wait(timeout=30)


def test_the_vectorized_encoder_writes_tensorboards_own_bytes():
  """scalar_records against event_pb2 + TensorBoard's RecordWriter, byte for
  byte: steps whose varints take 1, 2 and 3 bytes, NaN and Inf values."""
  import io  # pylint: disable=import-outside-toplevel
  from tensorboard.compat.proto import event_pb2, summary_pb2  # pylint: disable=import-outside-toplevel
  from tensorboard.summary.writer.record_writer import RecordWriter  # pylint: disable=import-outside-toplevel
  rng = np.random.default_rng(0)
  steps = np.array([0, 5, 127, 128, 300, 16383, 16384, 99999])
  values = rng.normal(size=(3, steps.size, 2)).astype(np.float32)
  values[1, 2, 0], values[2, 5, 1] = np.nan, np.inf
  tags = ["train/step_train_loss", "eval/val_acc"]
  got = tb_lib.scalar_records(tags, steps, values, wall_time=1234.5)
  for m in range(3):
    buf = io.BytesIO()
    writer = RecordWriter(buf)
    for j, step in enumerate(steps):
      writer.write(event_pb2.Event(wall_time=1234.5, step=int(step),
                                   summary=summary_pb2.Summary(value=[
                                       summary_pb2.Summary.Value(
                                           tag=t, simple_value=values[m, j, k])
                                       for k, t in enumerate(tags)]))
                   .SerializeToString())
    assert got[m] == buf.getvalue(), m
