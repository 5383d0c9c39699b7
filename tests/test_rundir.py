"""The run directory (io/rundir.py): a lost or damaged record is named, never read
as a shorter history; one run per workdir; refusals before anything is written."""

import os
import subprocess
import sys

import pytest

import grokjax as gj
from grokjax.io import RunDir

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SWEEP = os.path.join(ROOT, "experiments", "sweep.py")

# 3 chunks of 10 steps (records/g0000_s000000000, ..010, ..020).
CONFIG = gj.Config(task="x+y", p=7, model="mlp", mlp_hidden=(8,), d_model=4,
                   steps=30, chunk_steps=10, eval_every=5, seed=(0, 1),
                   checkpoint_every=10)


@pytest.fixture()
def finished(tmp_path):
  workdir = str(tmp_path / "run")
  gj.sweep(CONFIG, workdir=workdir, log=None)
  with open(os.path.join(workdir, "history.npz"), "rb") as f:
    return workdir, f.read()


def _history_bytes(workdir):
  with open(os.path.join(workdir, "history.npz"), "rb") as f:
    return f.read()


def test_the_manifest_lists_every_chunk_with_its_steps(finished):
  workdir, _ = finished
  run = RunDir(workdir)
  entries = run._manifest(0)  # pylint: disable=protected-access
  chunks = sorted((e["start"], e["end"]) for e in entries.values()
                  if e["start"] != "final")
  assert chunks == [(0, 10), (10, 20), (20, 30)]
  history, _, done = run.history_so_far()
  assert done and history["record_step"].tolist() == list(range(30))


def test_a_lost_chunk_is_named_and_the_history_is_kept(finished):
  workdir, good = finished
  os.remove(os.path.join(workdir, "records", "g0000_s000000010.npz"))
  with pytest.raises(gj.ConfigError,
                     match=r"records/g0000_s000000010.npz is missing "
                     r"\(steps 10-19 of group 0\).*--overwrite"):
    gj.sweep(CONFIG, workdir=workdir, log=None)
  assert _history_bytes(workdir) == good
  with pytest.raises(gj.ConfigError, match="g0000_s000000010.npz is missing"):
    RunDir(workdir).history_so_far()


def test_a_truncated_chunk_is_named_corrupt(finished):
  workdir, good = finished
  path = os.path.join(workdir, "records", "g0000_s000000020.npz")
  with open(path, "rb") as f:
    data = f.read()
  with open(path, "wb") as f:
    f.write(data[: len(data) // 2])
  with pytest.raises(gj.ConfigError, match="g0000_s000000020.npz is corrupt"):
    gj.sweep(CONFIG, workdir=workdir, log=None)
  assert _history_bytes(workdir) == good


def test_a_lost_chunk_and_its_manifest_line_is_still_a_gap(finished):
  workdir, good = finished
  run = RunDir(workdir)
  os.remove(os.path.join(workdir, "records", "g0000_s000000010.npz"))
  with open(run.manifest_path(0)) as f:
    lines = [l for l in f if "s000000010" not in l]
  with open(run.manifest_path(0), "w") as f:
    f.writelines(lines)
  with pytest.raises(gj.ConfigError, match="steps 10-19 of group 0"):
    gj.sweep(CONFIG, workdir=workdir, log=None)
  assert _history_bytes(workdir) == good


def test_history_npz_is_never_replaced_by_a_shorter_one(finished):
  workdir, good = finished
  run = RunDir(workdir)
  short = {k: v[..., :3] for k, v in run.history().items()}
  with pytest.raises(gj.ConfigError, match="history.npz holds 30 record_steps"):
    run.write_history(short)
  assert _history_bytes(workdir) == good


def test_one_run_per_workdir(tmp_path):
  workdir = str(tmp_path / "run")
  with RunDir(workdir).lock():
    with pytest.raises(gj.ConfigError, match=r"another run owns it \(host .* "
                       rf"pid {os.getpid()} since"):
      gj.sweep(CONFIG, workdir=workdir, log=None)
    assert not os.path.exists(os.path.join(workdir, "config.json"))
  gj.sweep(CONFIG, workdir=workdir, log=None)  # released: runs


def test_a_second_process_is_refused_in_one_line(tmp_path):
  workdir = str(tmp_path / "run")
  with RunDir(workdir).lock():
    proc = subprocess.run(
        [sys.executable, SWEEP, "--task=x+y", "--p=7", "--model=mlp",
         "--mlp_hidden=8", "--d_model=4", "--steps=10", f"--workdir={workdir}"],
        capture_output=True, text=True, timeout=300)
  assert proc.returncode == 2, proc.stderr
  lines = proc.stderr.strip().splitlines()
  assert len(lines) == 1 and "another run owns it" in lines[0], proc.stderr


def test_run_files_without_config_json_are_not_a_new_run(finished):
  workdir, good = finished
  os.remove(os.path.join(workdir, "config.json"))
  with pytest.raises(gj.ConfigError, match="no config.json.*--overwrite"):
    gj.sweep(CONFIG, workdir=workdir, log=None)
  assert _history_bytes(workdir) == good


def test_a_workdir_that_is_a_file_is_one_line(tmp_path):
  path = tmp_path / "file"
  path.write_text("not a directory")
  with pytest.raises(gj.ConfigError, match="cannot be used as a run directory"):
    gj.sweep(CONFIG, workdir=str(path), log=None)
  assert path.read_text() == "not a directory"
