"""Replaying one member of a finished sweep: bit for bit on the same device
configuration, with its parameters at steps no snapshot kept."""

import os
import subprocess
import sys

import jax
import numpy as np
import pytest

import grokjax as gj

REPLAY = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(
    __file__))), "experiments", "replay.py")
# Three members in groups of two: member 2 trains beside a padding copy.
CONFIG = gj.Config(task="x+y", p=11, depth=1, d_model=16, num_heads=2,
                   d_mlp=32, steps=120, chunk_steps=50, eval_every=20,
                   checkpoint_every=50, seed=(0, 1, 2), members_per_group=2,
                   snapshot_every=37)


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
  workdir = str(tmp_path_factory.mktemp("replay") / "run")
  return workdir, gj.sweep(CONFIG, workdir=workdir, log=None)


@pytest.mark.parametrize("member", [0, 2])
def test_a_member_replays_bit_for_bit_with_parameters_at_any_step(finished,
                                                                  member):
  workdir, result = finished
  replay = gj.train.replay(workdir, member, steps=[37, 74, 100])
  assert replay.identical, replay.differences
  assert (replay.group, replay.group_size) == (member // 2, 2)
  assert replay.values == {"seed": str(member)}
  for key, value in result.history.items():
    expected = value if key in ("record_step", "eval_step") else value[member]
    np.testing.assert_array_equal(replay.history[key], expected, err_msg=key)
  jax.tree.map(np.testing.assert_array_equal, replay.params[120],
               jax.tree.map(lambda x: np.asarray(x)[member],
                            result.state.params))
  # Steps the run's snapshots kept (every 37): the same bits.
  for step in (37, 74):
    snapshot = gj.io.load_snapshot(workdir, step, members=[member])
    jax.tree.map(np.testing.assert_array_equal, replay.params[step],
                 jax.tree.map(lambda x: np.asarray(x)[0], snapshot.params))
  # Step 100, which no snapshot kept, is stopped at the same way.
  assert sorted(replay.params) == [37, 74, 100, 120]


def test_a_replay_refuses_members_and_steps_outside_the_run(finished):
  workdir, _ = finished
  with pytest.raises(gj.ConfigError, match=r"^--member=3: the run in .* has "
                     r"members 0 to 2$"):
    gj.train.replay(workdir, 3)
  with pytest.raises(gj.ConfigError, match=r"^--steps=5,121: the run trained "
                     r"steps 0 to 120$"):
    gj.train.replay(workdir, 0, steps=[121, 5])


# In the slow run (pytest -m slow, which .ci/run also runs).
@pytest.mark.slow
def test_the_cli_replays_and_saves_the_parameters(finished, tmp_path):
  workdir, result = finished
  out = tmp_path / "m2.npz"
  proc = subprocess.run([sys.executable, REPLAY, f"--workdir={workdir}",
                         "--member=2", "--steps=50", f"--out={out}"],
                        capture_output=True, text=True, timeout=300)
  assert proc.returncode == 0, proc.stderr
  assert "member 2 (seed=2; group 1, 2 members, 1 device(s)): replayed bit " \
      "for bit" in proc.stdout
  saved = np.load(out)
  np.testing.assert_array_equal(
      saved["step120/embed/embedding"],
      np.asarray(result.state.params["embed"]["embedding"])[2])
  assert "step50/embed/embedding" in saved
