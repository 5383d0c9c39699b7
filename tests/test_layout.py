"""Buckets by training-set size: a full-batch sweep over fractions computes only real rows.

The layout (grokjax/layout.py) is planned from the members' n_train; every
reader of a run directory (history, final state, snapshots, replay, the
metrics log, resume) finds each member where its bucket put it.
"""

import os
import shutil

import jax
import numpy as np
import pytest

import grokjax as gj
from grokjax.layout import Group, Layout, plan_layout, scatter
from grokjax.reproductions import history_from_metrics
from grokjax.train import checkpoint as ckpt_lib

# Full batch, three fractions x two seeds: x+y mod 11 has N = 121 rows, so
# n_train = round(f * 121) = 36, 60, 85 (round half to even; members in grid order: fraction
# fastest, so members 0 and 3 share the 0.3 bucket).
CONFIG = gj.Config(task="x+y", p=11, model="transformer", depth=1, d_model=16,
                   num_heads=2, d_mlp=32, steps=120, eval_every=20,
                   chunk_steps=40, checkpoint_every=40, snapshot_count=3,
                   seed=(0, 1), train_fraction=(0.3, 0.5, 0.7))


def test_plan_layout_makes_one_bucket_per_training_set_size():
  n = np.array([36, 36, 61, 61, 85, 85])
  layout = plan_layout(n, group_size=8, num_devices=1, bucket=True)
  assert layout.groups == (Group((0, 1), 2, 36), Group((2, 3), 2, 61),
                           Group((4, 5), 2, 85))
  # Rows a step gathers: 2 * (36 + 61 + 85) = 364, all real; padded to the
  # largest fraction it would be 6 * 85 = 510 (71%).
  assert layout.useful_fraction(n) == 1.0
  assert Layout.uniform(6, 6, 85).useful_fraction(n) == pytest.approx(364 / 510)
  # Members keep their order inside a bucket; a bucket is padded to the
  # device count and split by the memory plan's group size.
  n = np.array([5, 9, 5, 5, 9])
  assert plan_layout(n, 2, 2, True).groups == (
      Group((0, 2), 2, 5), Group((3,), 2, 5), Group((1, 4), 2, 9))
  assert plan_layout(n, 8, 4, True).groups == (
      Group((0, 2, 3), 4, 5), Group((1, 4), 4, 9))
  # No buckets (or one size): consecutive groups, the last padded.
  assert plan_layout(n, 2, 1, False) == Layout.uniform(5, 2, 9)
  assert Layout.uniform(5, 2, 9).groups[-1] == Group((4,), 2, 9)
  assert plan_layout(np.array([7, 7, 7]), 4, 1, True) == Layout.uniform(3, 4, 7)


def test_scatter_puts_each_groups_rows_at_its_members():
  layout = Layout((Group((1, 3), 2, 5), Group((0, 2), 4, 9)))
  parts = [np.array([10, 30]), np.array([0, 20, -1, -1])]  # -1: padding rows
  np.testing.assert_array_equal(scatter(parts, layout), [0, 10, 20, 30])
  assert layout.where(2) == (1, 1) and layout.programs == [(2, 5), (4, 9)]
  assert Layout.from_json(layout.to_json()) == layout


def test_a_minibatch_or_linear_sweep_has_one_bucket():
  minibatch = CONFIG.replace(batch_size=16, snapshot_count=0)
  result = gj.sweep(minibatch.replace(steps=20), log=None)
  assert result.groups == 1
  # A linear task draws its measurements at shape [max_n_train]: no buckets.
  linear = gj.Config(task="sparse_recovery", model="linear", linear_dim=20,
                     linear_k=3, steps=10, eval_every=5, optimizer="sgd",
                     warmup_steps=0, train_fraction=(0.5, 0.8))
  assert gj.sweep(linear, log=None).groups == 1


@pytest.fixture(scope="module")
def bucketed(tmp_path_factory):
  workdir = str(tmp_path_factory.mktemp("layout") / "run")
  lines = []
  result = gj.sweep(CONFIG, workdir=workdir, log=lines.append)
  return workdir, result, lines


def test_a_bucketed_run_trains_each_bucket_on_its_own_rows(bucketed):
  workdir, result, lines = bucketed
  layout = gj.io.RunDir(workdir).layout()
  assert [(g.members, g.max_n) for g in layout.groups] == [
      ((0, 3), 36), ((1, 4), 60), ((2, 5), 85)]
  assert result.groups == 3
  assert "3 buckets by training-set size (36..85 rows), 3 groups, 3 programs, " \
         "100% of the rows gathered are real (without buckets 71%)" in lines[0]
  assert [m["train_fraction"] for m in result.members] == [0.3, 0.5, 0.7,
                                                         0.3, 0.5, 0.7]


def test_a_bucketed_run_directory_reads_back_in_member_order(bucketed):
  workdir, result, _ = bucketed
  run = gj.io.RunDir(workdir)
  history, diverged, finished = run.history_so_far()
  assert finished and (diverged == -1).all()
  for key, value in result.history.items():
    np.testing.assert_array_equal(history[key], value, err_msg=key)
    np.testing.assert_array_equal(run.history()[key], value, err_msg=key)
  logged = history_from_metrics(os.path.join(workdir, "metrics.jsonl"))
  np.testing.assert_array_equal(logged["val_acc"], result.history["val_acc"])
  _, state = ckpt_lib.load_final_state(workdir)
  jax.tree.map(np.testing.assert_array_equal, state,
               jax.device_get(result.state))
  snapshot = gj.io.load_snapshot(workdir, CONFIG.steps, members=[5, 0, 3])
  jax.tree.map(lambda s, r: np.testing.assert_array_equal(
      s, np.asarray(r)[[5, 0, 3]]), snapshot.params, result.state.params)


def test_a_member_of_a_bucketed_run_replays_bit_for_bit(bucketed):
  workdir, result, _ = bucketed
  replay = gj.train.replay(workdir, 4, steps=[50])  # seed 1, fraction 0.5
  assert replay.identical, replay.differences
  assert (replay.group, replay.group_size) == (1, 2)
  np.testing.assert_array_equal(replay.history["val_acc"],
                                result.history["val_acc"][4])


def test_a_bucketed_run_resumes_inside_its_last_bucket(bucketed, tmp_path):
  workdir, reference, _ = bucketed
  copy = str(tmp_path / "run")
  shutil.copytree(workdir, copy)
  # As if killed inside group 2 (the 0.7 bucket): the checkpoints kept are
  # each group's final one and the latest two; drop group 2's final one.
  ckpt_dir = os.path.join(copy, "checkpoints")
  final = ckpt_lib.index_of(2, 0, CONFIG.steps, True)
  shutil.rmtree(os.path.join(ckpt_dir, str(final)))
  latest = max(int(i) for i in os.listdir(ckpt_dir))
  step = latest - ckpt_lib.index_of(2, 0, CONFIG.steps, False)
  assert 0 < step < CONFIG.steps
  for name in ("summary.csv", "history.npz"):
    os.remove(os.path.join(copy, name))
  lines = []
  resumed = gj.sweep(CONFIG, workdir=copy, log=lines.append)
  assert any(f"resuming from the checkpoint at step {step} of group 2" in l
             for l in lines), lines
  for key, value in reference.history.items():
    np.testing.assert_array_equal(resumed.history[key], value, err_msg=key)
  jax.tree.map(np.testing.assert_array_equal, jax.device_get(resumed.state),
               jax.device_get(reference.state))


@pytest.mark.slow  # two float64 sweeps (the golden cases check float32)
def test_buckets_change_a_member_at_rounding_level_only():
  """In float64 the bucketed and the padded sweep agree to rounding.

  Only the padded slots of a full-batch weighted mean (weight 0) differ, so
  the sum's order differs and nothing else. Measured here: the float32
  records equal, the parameters 8e-15 apart after 120 Adam steps; bound 1e-10.
  (In float32 Adam amplifies the rounding: the golden transformer cases moved
  by up to 4.9e-7 when buckets came in.)
  """
  with jax.enable_x64(True):
    config = CONFIG.replace(snapshot_count=0, checkpoint_every=0,
                            precision="float64", loss_dtype="float64")
    a = gj.sweep(config, log=None)
    b = gj.sweep(config.replace(bucket_by_size=False), log=None)
  assert (a.groups, b.groups) == (3, 1)
  for key, value in a.history.items():
    np.testing.assert_allclose(value, b.history[key], rtol=0, atol=1e-6,
                               err_msg=key)
  gap = max(float(np.max(np.abs(np.asarray(x) - np.asarray(y))))
            for x, y in zip(jax.tree.leaves(a.state.params),
                            jax.tree.leaves(b.state.params)))
  assert gap < 1e-10
