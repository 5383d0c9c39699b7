"""TensorBoard event files of a sweep: one run per member, and the HParams dashboard.

Layout, under ``<workdir>/tensorboard/`` (``tensorboard --logdir`` on it):

- ``<run>/events.out.tfevents.curves``: the member's eval curves (tags
  ``eval/<field>``: train/val loss and accuracy, parameter norm, the
  softmax-collapse fraction ``train_zero_loss``; the errors for linear tasks)
  and its per-step training loss and accuracy (``train/step_train_loss``...),
  thinned to at most `STEP_POINTS` steps over the run. Appended after every
  chunk.
- ``<run>/events.out.tfevents.hparams``: the member's HParams session (its
  swept values, status) and its outcome as scalars (``hparams/t_mem``,
  ``t_gen``, ``delay``, ``final_train_acc``, ``final_val_acc``), rewritten
  whole at the end of the run.
- ``events.out.tfevents.hparams``: the experiment (which hyperparameters and
  metrics the HParams table, parallel coordinates and scatter views show).

A run is named by the member's values of the swept axes that vary
(``seed=3,train_fraction=0.5``; ``member=0`` when nothing varies). Written
with TensorBoard's own protos and record writer; no TensorFlow.

Resuming: the restored group's curve files are rewritten from the records up
to the checkpoint, so a resumed run has each point once.
"""

from __future__ import annotations

import math
import os
import shutil
import time
from typing import Mapping, Sequence

import numpy as np
from tensorboard.compat.proto import event_pb2, summary_pb2
from tensorboard.plugins.hparams import api_pb2, metadata, plugin_data_pb2
from tensorboard.summary.writer.record_writer import RecordWriter

from google.protobuf import struct_pb2

DIRNAME = "tensorboard"
CURVES = "events.out.tfevents.curves"
HPARAMS = "events.out.tfevents.hparams"
STEP_POINTS = 1000  # per-step training curves keep at most this many steps
METRICS = ("t_mem", "t_gen", "delay", "final_train_acc", "final_val_acc",
           "final_train_error", "final_val_error")


def run_name(values: Mapping[str, object], varied: Sequence[str],
             member: int) -> str:
  """``seed=3,train_fraction=0.5``: the member's values of the varied axes."""
  if not varied:
    return f"member={member}"
  return ",".join(f"{k}={_short(values[k])}" for k in varied)


def _short(value) -> str:
  value = float(value)
  return str(int(value)) if value.is_integer() else f"{value:g}"


def step_stride(steps: int) -> int:
  """Keep every k-th step of the per-step curves: at most STEP_POINTS."""
  return max(1, -(-steps // STEP_POINTS))


def _scalar_events(tag_values: Mapping[str, np.ndarray], steps: np.ndarray,
                   wall_time: float) -> list[bytes]:
  """One serialized Event per step with every tag's value at that step."""
  out = []
  for j, step in enumerate(steps):
    values = [summary_pb2.Summary.Value(tag=tag, simple_value=float(v[j]))
              for tag, v in tag_values.items() if math.isfinite(float(v[j]))]
    if values:
      out.append(event_pb2.Event(
          wall_time=wall_time, step=int(step),
          summary=summary_pb2.Summary(value=values)).SerializeToString())
  return out


def _file_version(wall_time: float) -> bytes:
  return event_pb2.Event(wall_time=wall_time,
                         file_version="brain.Event:2").SerializeToString()


def _append(path: str, records: list[bytes], new: bool) -> None:
  os.makedirs(os.path.dirname(path), exist_ok=True)
  writer = RecordWriter(open(path, "wb" if new else "ab"))  # pylint: disable=consider-using-with
  try:
    if new:
      writer.write(_file_version(time.time()))
    for r in records:
      writer.write(r)
  finally:
    writer.close()


class TensorBoardWriter:
  """Writes a sweep's members as TensorBoard runs (process 0 only)."""

  def __init__(self, workdir: str, members: list[dict], varied: list[str],
               steps: int):
    self.root = os.path.join(workdir, DIRNAME)
    self.members, self.varied, self.steps = members, list(varied), steps
    self.stride = step_stride(steps)
    self.names = [run_name(m, self.varied, i) for i, m in enumerate(members)]
    self.seconds = 0.0  # spent writing, for the progress log

  def path(self, member: int, name: str = CURVES) -> str:
    return os.path.join(self.root, self.names[member], name)

  def write_chunk(self, lo: int, chunk: Mapping[str, np.ndarray],
                  fresh: bool = False) -> None:
    """Appends a chunk's records of members lo.. (rows of `chunk`'s arrays).

    `fresh`: start each member's curve file anew (the first chunk, or the
    records up to a checkpoint when resuming).
    """
    t0, now = time.time(), time.time()
    rec_step = np.asarray(chunk.get("record_step", np.zeros(0, np.int64)))
    keep = rec_step % self.stride == 0
    step_keys = [k for k in chunk if k.startswith("step_")]
    eval_keys = [k for k in chunk if k not in step_keys and
                 k not in ("record_step", "eval_step", "diverged_step")]
    rows = (chunk[eval_keys[0]] if eval_keys else chunk[step_keys[0]]).shape[0]
    for r in range(min(rows, len(self.members) - lo)):
      records = _scalar_events(
          {f"train/{k}": np.asarray(chunk[k][r])[keep] for k in step_keys},
          rec_step[keep], now)
      records += _scalar_events(
          {f"eval/{k}": np.asarray(chunk[k][r]) for k in eval_keys},
          np.asarray(chunk["eval_step"]), now)
      path = self.path(lo + r)
      _append(path, records, fresh or not os.path.exists(path))
    self.seconds += time.time() - t0

  def write_hparams(self, summary: list[dict]) -> None:
    """The experiment and each member's session and outcome (rewritten whole)."""
    t0, now = time.time(), time.time()
    metrics = [m for m in METRICS if summary and m in summary[0]]
    experiment = api_pb2.Experiment(
        hparam_infos=[api_pb2.HParamInfo(name=k, type=api_pb2.DATA_TYPE_FLOAT64)
                      for k in self.varied],
        metric_infos=[api_pb2.MetricInfo(name=api_pb2.MetricName(
            tag=f"hparams/{m}")) for m in metrics])
    _append(os.path.join(self.root, HPARAMS),
            [_plugin_event(metadata.EXPERIMENT_TAG,
                           plugin_data_pb2.HParamsPluginData(
                               experiment=experiment), now)], new=True)
    for i, row in enumerate(summary):
      start = plugin_data_pb2.SessionStartInfo(start_time_secs=now)
      for k in self.varied:
        start.hparams[k].CopyFrom(struct_pb2.Value(
            number_value=float(self.members[i][k])))
      records = [_plugin_event(metadata.SESSION_START_INFO_TAG,
                               plugin_data_pb2.HParamsPluginData(
                                   session_start_info=start), now)]
      values = {f"hparams/{m}": np.array([_number(row[m])]) for m in metrics}
      records += _scalar_events(values, np.array([self.steps]), now)
      end = plugin_data_pb2.SessionEndInfo(
          status=api_pb2.STATUS_SUCCESS, end_time_secs=now)
      records.append(_plugin_event(metadata.SESSION_END_INFO_TAG,
                                   plugin_data_pb2.HParamsPluginData(
                                       session_end_info=end), now))
      _append(self.path(i, HPARAMS), records, new=True)
    self.seconds += time.time() - t0


def _number(value) -> float:
  try:
    return float(value)
  except (TypeError, ValueError):
    return float("nan")


def _plugin_event(tag: str, data: plugin_data_pb2.HParamsPluginData,
                  wall_time: float) -> bytes:
  value = summary_pb2.Summary.Value(
      tag=tag, metadata=metadata.create_summary_metadata(data))
  return event_pb2.Event(wall_time=wall_time, step=0,
                         summary=summary_pb2.Summary(value=[value])
                         ).SerializeToString()


def write_run(workdir: str, history: Mapping[str, np.ndarray],
              members: list[dict], varied: list[str], steps: int,
              summary: list[dict]) -> TensorBoardWriter:
  """Every member's event files from a finished run's history and summary
  (what `analyze.py --tensorboard` writes for an existing run directory)."""
  shutil.rmtree(os.path.join(workdir, DIRNAME), ignore_errors=True)
  writer = TensorBoardWriter(workdir, members, varied, steps)
  writer.write_chunk(0, history, fresh=True)
  writer.write_hparams(summary)
  return writer


__all__ = ["TensorBoardWriter", "write_run", "run_name", "step_stride",
           "DIRNAME", "STEP_POINTS"]
