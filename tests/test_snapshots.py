"""Parameter snapshots over training: schedule, bit-for-bit round trip, no effect on training."""

import jax
import numpy as np
import pytest

import grokjax as gj
from grokjax.config import ConfigError
from grokjax.io import snapshots as snap_lib
from grokjax.train import state as state_lib
from grokjax.train.step import evaluate_member

# 3 members in groups of 2 (the second group padded): members cross groups.
CONFIG = gj.Config(task="x+y", p=11, model="mlp", mlp_hidden=(16,), d_model=8,
                   steps=60, chunk_steps=25, eval_every=10, seed=(0, 1, 2),
                   train_fraction=(0.5,), learning_rate=(3e-3,),
                   members_per_group=2, snapshot_count=4, snapshot_every=20)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
  workdir = str(tmp_path_factory.mktemp("snap"))
  return gj.sweep(CONFIG, workdir=workdir, log=None), workdir


def test_schedule_is_step0_log_spaced_every_n_and_the_last():
  config = gj.Config(steps=1000, snapshot_count=4, snapshot_every=500)
  np.testing.assert_array_equal(snap_lib.snapshot_schedule(config),
                                [0, 1, 10, 100, 500, 1000])
  assert snap_lib.snapshot_schedule(gj.Config(steps=10)).size == 0
  assert snap_lib.next_stop(np.array([0, 8, 20]), 0, 25) == 8
  assert snap_lib.next_stop(np.array([0, 8, 20]), 20, 25) == 25


def test_snapshots_at_every_scheduled_step_round_trip_bit_for_bit(run):
  result, workdir = run
  # geomspace(1, 60, 4) = 1, 3.9, 15.3, 60; every 20: 0, 20, 40, 60.
  np.testing.assert_array_equal(snap_lib.snapshot_steps(workdir),
                                [0, 1, 4, 15, 20, 40, 60])
  final = jax.device_get(result.state.params)
  snap = gj.io.load_snapshot(workdir, 60, members=[2, 0])
  np.testing.assert_array_equal(snap.members, [2, 0])
  for i, m in enumerate((2, 0)):
    jax.tree.map(np.testing.assert_array_equal, snap.member(i),
                 jax.tree.map(lambda x, m=m: x[m], final))
  np.testing.assert_array_equal(snap.diverged_step, [-1, -1])
  # Step 0 is the initialization.
  run = gj.io.StoredRun.from_config(CONFIG)
  init = jax.device_get(state_lib.init_group(
      snap.model, CONFIG, run.task, run.max_n_train, run.hypers)[0].params)
  jax.tree.map(np.testing.assert_array_equal,
               gj.io.load_snapshot(workdir, 0).params, init)


def test_a_snapshot_reproduces_the_recorded_eval_at_its_step(run):
  result, workdir = run
  snap = gj.io.load_snapshot(workdir, 40)  # 40 is an eval step
  j = int(np.searchsorted(result.history["eval_step"], 40))
  data = gj.train.Data(*snap.task.device_arrays(), np.zeros(1, bool))
  for m in range(3):
    ev = evaluate_member(snap.model.apply, CONFIG, snap.member(m),
                         jax.tree.map(lambda x, m=m: x[m], snap.split), data)
    np.testing.assert_allclose(ev.val_loss, result.history["val_loss"][m, j],
                               rtol=1e-5)


def test_stopping_chunks_at_snapshots_leaves_training_unchanged(run):
  result, _ = run
  plain = gj.sweep(CONFIG.replace(snapshot_count=0, snapshot_every=0),
                   workdir=None, log=None)
  for key in ("step_train_loss", "val_loss", "param_norm"):
    np.testing.assert_array_equal(result.history[key], plain.history[key])


def test_a_run_without_snapshots_says_which_flag_keeps_them(tmp_path):
  gj.sweep(CONFIG.replace(snapshot_count=0, snapshot_every=0, steps=5,
                          seed=(0,)), workdir=str(tmp_path), log=None)
  with pytest.raises(ConfigError, match="--snapshot_count"):
    gj.io.load_snapshot(str(tmp_path), 5)


def test_unknown_step_or_member_is_a_clear_error(run):
  _, workdir = run
  with pytest.raises(ConfigError, match="--step=7"):
    gj.io.load_snapshot(workdir, 7)
  with pytest.raises(ConfigError, match="--members=3"):
    gj.io.load_snapshot(workdir, 0, members=[3])


def test_mlp_measures_hessian_landscape_and_local_complexity(run):
  result, workdir = run
  m = gj.analysis.compute_measures(
      workdir, ["norms", "landscape", "hessian", "complexity"],
      members=[0, 2], steps=[0, 40, 60], lanczos_steps=40, log=None)
  np.testing.assert_array_equal(m["step"], [0, 40, 60])
  history = result.history
  a0 = int(np.argmin(np.abs(m["landscape_alpha_final"])))
  a1 = int(np.argmin(np.abs(m["landscape_alpha_final"] - 1)))
  for i, member in enumerate((0, 2)):
    for j, step in enumerate((0, 40, 60)):
      k = int(np.searchsorted(history["eval_step"], step))
      train = history["train_loss"][member, k]
      np.testing.assert_allclose(m["landscape_final"][i, j, a0], train,
                                 rtol=1e-4)
      np.testing.assert_allclose(m["landscape_final"][i, j, a1],
                                 history["train_loss"][member, -1], rtol=1e-4)
  assert np.all(m["hessian_max"] > 0)
  # 40 Lanczos steps converge here (measured: lambda_min -0.08 to -0.07;
  # with 8 steps every lambda_min is unconverged, NaN).
  assert np.all(m["hessian_min"] < 0) and np.all(m["hessian_min"] > -1)
  np.testing.assert_allclose(m["hessian_ratio"], np.abs(
      m["hessian_min"] / m["hessian_max"]), rtol=1e-6)
  # A 16-unit ReLU layer and an 11-unit readout: between 0 and 27 units
  # change sign over a neighbourhood.
  for name in ("local_complexity", "local_complexity_test"):
    assert np.all((m[name] >= 0) & (m[name] <= 16 + 11))
  assert m["local_complexity"].max() > 0


def test_overwrite_replaces_the_old_runs_snapshots(run, tmp_path):
  """--overwrite with other flags: the snapshots at the same steps are the new run's, not the old one's."""
  _, old_workdir = run
  workdir = str(tmp_path / "run")
  gj.sweep(CONFIG, workdir=workdir, log=None)
  other = CONFIG.replace(learning_rate=(1e-2,))
  new = gj.sweep(other, workdir=workdir, log=None, overwrite=True)
  final = jax.device_get(new.state.params)
  jax.tree.map(np.testing.assert_array_equal,
               gj.io.load_snapshot(workdir, 60).params,
               jax.tree.map(lambda x: x[:3], final))
  # The old run's final parameters differ (so the check above can fail).
  old = gj.io.load_snapshot(old_workdir, 60).params
  assert not np.array_equal(old["readout"]["kernel"],
                            final["readout"]["kernel"][:3])
