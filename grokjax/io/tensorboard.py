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

import os
import shutil
import time
from typing import Mapping, Sequence

import numpy as np
from tensorboard.compat.proto import event_pb2, summary_pb2
from tensorboard.plugins.hparams import api_pb2, metadata, plugin_data_pb2

from google.protobuf import struct_pb2

from grokjax.io.rundir import WriteError

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


def _varint(value: int) -> bytes:
  out = bytearray()
  while True:
    byte, value = value & 0x7F, value >> 7
    out.append(byte | (0x80 if value else 0))
    if not value:
      return bytes(out)


def _crc_table() -> np.ndarray:
  table = np.arange(256, dtype=np.uint32)
  for _ in range(8):  # CRC-32C (Castagnoli), reflected
    table = np.where(table & 1, (table >> 1) ^ np.uint32(0x82F63B78),
                     table >> 1).astype(np.uint32)
  return table


_CRC_TABLE = _crc_table()


def masked_crc32c(rows: np.ndarray) -> np.ndarray:
  """TFRecord's masked CRC-32C of each row of a uint8 matrix [n, L] (vectorized over rows)."""
  crc = np.full(rows.shape[0], 0xFFFFFFFF, np.uint32)
  for j in range(rows.shape[1]):
    crc = _CRC_TABLE[(crc ^ rows[:, j]) & 0xFF] ^ (crc >> 8)
  crc ^= np.uint32(0xFFFFFFFF)
  return ((crc >> 15) | (crc << 17)) + np.uint32(0xA282EAD8)


def _const(data: bytes, n: int) -> np.ndarray:
  return np.broadcast_to(np.frombuffer(data, np.uint8), (n, len(data)))


def _step_varints(steps: np.ndarray, width: int) -> np.ndarray:
  cols = [((steps >> (7 * i)) & 0x7F) | (0x80 if i < width - 1 else 0)
          for i in range(width)]
  return np.stack(cols, axis=1).astype(np.uint8)


def scalar_records(tags: Sequence[str], steps: np.ndarray, values: np.ndarray,
                   wall_time: float) -> list[bytes]:
  """Each member's framed TFRecords of scalar Events, built as byte matrices.

  values: [M, n, k] (member, step, tag). One Event per step holding every
  tag's ``simple_value`` (NaN included), encoded as protobuf by hand
  (Event: wall_time 1, step 2, summary 5; Summary.Value: tag 1,
  simple_value 2) and framed as TFRecords (length, masked CRC-32C of the
  length, data, masked CRC-32C of the data). Equal, byte for byte, to
  serializing `event_pb2.Event` and writing it with TensorBoard's
  `RecordWriter` (tested); vectorized because a sweep writes millions.
  """
  steps = np.asarray(steps, np.int64)
  values = np.asarray(values, np.float32)
  M, n = values.shape[0], steps.size
  if n == 0 or not tags:
    return [b""] * M
  entries = []
  for t in tags:
    tag_field = b"\x0a" + _varint(len(t.encode())) + t.encode()
    body = len(tag_field) + 5
    entries.append(b"\x0a" + _varint(body) + tag_field + b"\x15")
  summary_len = sum(len(e) + 4 for e in entries)
  head = b"\x09" + np.float64(wall_time).tobytes()
  # proto3 leaves out a field at its default: step 0 has no step field.
  widths = np.array([len(_varint(int(s))) if s else 0 for s in steps])
  per_member = [[] for _ in range(M)]
  for width in np.unique(widths):  # steps ascend: each width is one run
    idx = np.nonzero(widths == width)[0]
    rows = M * idx.size
    step_bytes = np.tile(_step_varints(steps[idx], int(width)), (M, 1)) \
        if width else None
    f32 = values[:, idx, :].reshape(rows, len(tags)).astype("<f4")
    f32 = f32.view(np.uint8).reshape(rows, len(tags), 4)
    blocks = ([_const(head + b"\x10", rows), step_bytes] if width else
              [_const(head, rows)])
    blocks.append(_const(b"\x2a" + _varint(summary_len), rows))
    for i, e in enumerate(entries):
      blocks += [_const(e, rows), f32[:, i, :]]
    data = np.concatenate(blocks, axis=1)
    length = np.frombuffer(np.uint64(data.shape[1]).tobytes(), np.uint8)
    header = np.broadcast_to(length, (rows, 8))
    framed = np.concatenate([
        header, masked_crc32c(header[:1]).astype("<u4").view(np.uint8)
        .reshape(1, 4).repeat(rows, 0), data,
        masked_crc32c(data).astype("<u4").view(np.uint8).reshape(rows, 4)],
                            axis=1)
    framed = framed.reshape(M, idx.size * framed.shape[1])
    for m in range(M):
      per_member[m].append(framed[m].tobytes())
  return [b"".join(parts) for parts in per_member]


def _frame(events: list[bytes]) -> bytes:
  """TFRecord frames of serialized events (the few non-scalar ones)."""
  out = []
  for data in events:
    header = np.frombuffer(np.uint64(len(data)).tobytes(), np.uint8)[None]
    body = np.frombuffer(data, np.uint8)[None]
    out += [header.tobytes(),
            masked_crc32c(header).astype("<u4").tobytes(), data,
            masked_crc32c(body).astype("<u4").tobytes()]
  return b"".join(out)


def _file_version(wall_time: float) -> bytes:
  return event_pb2.Event(wall_time=wall_time,
                         file_version="brain.Event:2").SerializeToString()


def _write(path: str, data: bytes, new: bool) -> None:
  """Appends (or starts) an event file; WriteError when it cannot be written."""
  try:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb" if new else "ab") as f:
      if new:
        f.write(_frame([_file_version(time.time())]))
      f.write(data)
  except OSError as e:  # a torn record: a resume rewrites the group's curves
    raise WriteError(f"cannot write {path} ({e.strerror})") from e


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

  def write_chunk(self, members: Sequence[int],
                  chunk: Mapping[str, np.ndarray], fresh: bool = False) -> None:
    """Appends a chunk's records of `members` (the first rows of `chunk`'s
    arrays, in that order; padding rows after them are left out).

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
    rows = min(rows, len(members))
    per_step = scalar_records(
        [f"train/{k}" for k in step_keys], rec_step[keep],
        np.stack([np.asarray(chunk[k])[:rows][:, keep] for k in step_keys],
                 axis=-1) if step_keys else np.zeros((rows, 0, 0)), now)
    per_eval = scalar_records(
        [f"eval/{k}" for k in eval_keys], np.asarray(chunk["eval_step"]),
        np.stack([np.asarray(chunk[k])[:rows] for k in eval_keys], axis=-1),
        now)
    for r in range(rows):
      path = self.path(members[r])
      _write(path, per_step[r] + per_eval[r],
             new=fresh or not os.path.exists(path))
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
    _write(os.path.join(self.root, HPARAMS), _frame([_plugin_event(
        metadata.EXPERIMENT_TAG, plugin_data_pb2.HParamsPluginData(
            experiment=experiment), now)]), new=True)
    outcomes = scalar_records(
        [f"hparams/{m}" for m in metrics], np.array([self.steps]),
        np.array([[[_number(row[m]) for m in metrics]] for row in summary],
                 np.float32).reshape(len(summary), 1, len(metrics)), now)
    for i in range(len(summary)):
      start = plugin_data_pb2.SessionStartInfo(start_time_secs=now)
      for k in self.varied:
        start.hparams[k].CopyFrom(struct_pb2.Value(
            number_value=float(self.members[i][k])))
      end = plugin_data_pb2.SessionEndInfo(
          status=api_pb2.STATUS_SUCCESS, end_time_secs=now)
      _write(self.path(i, HPARAMS), _frame([_plugin_event(
          metadata.SESSION_START_INFO_TAG, plugin_data_pb2.HParamsPluginData(
              session_start_info=start), now)]) + outcomes[i] + _frame([
                  _plugin_event(metadata.SESSION_END_INFO_TAG,
                                plugin_data_pb2.HParamsPluginData(
                                    session_end_info=end), now)]), new=True)
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
  writer.write_chunk(range(len(members)), history, fresh=True)
  writer.write_hparams(summary)
  return writer


__all__ = ["TensorBoardWriter", "write_run", "run_name", "step_stride",
           "DIRNAME", "STEP_POINTS"]
