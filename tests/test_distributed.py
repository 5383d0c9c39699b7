"""The member axis over devices and processes: 4 CPU devices, and 2 processes on localhost.

Each case runs in fresh subprocesses, since the device count is fixed when JAX
starts (`--xla_force_host_platform_device_count`).

What is bitwise, and what is not (the reproducibility contract):
- the same sweep on the same device configuration is bitwise: the sharded
  sweep run twice in one 4-device process gives identical histories and
  parameters;
- another device configuration is not, even at the same per-device member
  count: XLA:CPU compiles each configuration's program on its own (fusions,
  thread splits), and Adam amplifies the rounding. Measured for this config
  (120 steps): the sharded sweep against one device first differs at step 4,
  by 4.8e-7 in a loss of ~2.4, and by 4.4e-6 in the final parameters; the
  largest difference seen in any clean run of the old rtol/atol 1e-5 check
  was 1.9e-5. The cross-configuration checks below allow BOUND = 1e-3
  absolute: 50x the largest drift measured, and 100x below what a wrong
  member order, a dropped padding row or a lost shard gives (any two
  members' final unembeddings differ by at least 0.13, max abs).
"""

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import grokjax as gj
from grokjax import io as gio

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SWEEP = os.path.join(ROOT, "experiments", "sweep.py")

# 6 members: padded to 8 over 4 devices (two padding members to drop).
ARGS = ["--task=x+y", "--p=11", "--depth=1", "--d_model=16", "--num_heads=2",
        "--d_mlp=32", "--steps=120", "--chunk_steps=40", "--eval_every=20",
        "--checkpoint_every=40", "--seed=0:3", "--learning_rate=1e-3,3e-3",
        "--batch_size=16"]
CONFIG = gj.Config(task="x+y", p=11, depth=1, d_model=16, num_heads=2,
                   d_mlp=32, steps=120, chunk_steps=40, eval_every=20,
                   checkpoint_every=40, seed=(0, 1, 2), learning_rate=(1e-3, 3e-3),
                   batch_size=16)
BOUND = dict(rtol=0, atol=1e-3)  # see the module docstring


def _env(devices):
  env = dict(os.environ, XLA_FLAGS=f"--xla_force_host_platform_device_count="
             f"{devices}", PYTHONPATH=ROOT)
  env.pop("JAX_PLATFORMS", None)
  return env


def _assert_histories_close(a, b):
  assert a.keys() == b.keys()
  for key in a:
    assert a[key].shape == b[key].shape, key
    np.testing.assert_allclose(a[key], b[key], err_msg=key, **BOUND)


@pytest.mark.slow  # ~20 s; the default run stays under 10 min on 2 cores
def test_four_devices_equal_one_device(tmp_path):
  script = textwrap.dedent(f"""
      import jax, numpy as np, grokjax as gj
      config = gj.Config(**{CONFIG.to_dict()!r})
      assert jax.device_count() == 4
      sharded = gj.sweep(config, log=None)
      again = gj.sweep(config, log=None)
      single = gj.sweep(config, log=None, devices=jax.devices()[:1])
      np.savez("{tmp_path}/sharded.npz", **sharded.history)
      np.savez("{tmp_path}/again.npz", **again.history)
      np.savez("{tmp_path}/single.npz", **single.history)
      leaves = lambda r: [np.asarray(x) for x in jax.tree.leaves(r.state.params)]
      np.savez("{tmp_path}/params.npz", *leaves(sharded), *leaves(single))
      np.savez("{tmp_path}/params_again.npz", *leaves(again))
      print("devices", len(jax.tree.leaves(sharded.state.params)[0].sharding.device_set))
  """)
  proc = subprocess.run([sys.executable, "-c", script], env=_env(4),
                        capture_output=True, text=True, timeout=600)
  assert proc.returncode == 0, proc.stderr
  sharded = dict(np.load(tmp_path / "sharded.npz"))
  single = dict(np.load(tmp_path / "single.npz"))
  assert sharded["step_train_loss"].shape == (6, 120)  # padding dropped
  # Same sweep, same device configuration: bitwise.
  again = dict(np.load(tmp_path / "again.npz"))
  assert again.keys() == sharded.keys()
  for key in sharded:
    np.testing.assert_array_equal(again[key], sharded[key], err_msg=key)
  params = np.load(tmp_path / "params.npz")
  params_again = np.load(tmp_path / "params_again.npz")
  n = len(params.files) // 2
  for i in range(n):
    np.testing.assert_array_equal(params_again[f"arr_{i}"], params[f"arr_{i}"])
  # One device: the same numbers up to the measured drift.
  _assert_histories_close(sharded, single)
  for i in range(n):
    a, b = params[f"arr_{i}"], params[f"arr_{i + n}"]
    assert a.shape[0] == 6
    np.testing.assert_allclose(a, b, **BOUND)


# In the slow run (pytest -m slow, which .ci/run also runs): keeps the default run under 10 minutes.
@pytest.mark.slow
def test_two_processes_on_localhost_equal_one_process(tmp_path):
  """launch/local.sh: the program a TPU pod or SLURM job runs, over 127.0.0.1."""
  workdir = str(tmp_path / "run")
  proc = subprocess.run(
      [os.path.join(ROOT, "launch", "local.sh"), "2", "2", "--", *ARGS,
       f"--workdir={workdir}"], cwd=ROOT, capture_output=True, text=True,
      timeout=600, env=dict(_env(1), PYTHON=sys.executable))
  assert proc.returncode == 0, proc.stderr[-3000:]
  # Process 0 alone logs: each chunk's line appears once.
  assert "4 cpu device(s) in 2 process(es)" in proc.stdout
  assert proc.stdout.count("step     120/120") == 1, proc.stdout
  config = gio.read_config(workdir)
  assert config["devices"]["process_count"] == 2
  assert len(config["devices"]["devices"]) == 4
  # Both processes wrote their shards of the checkpoint.
  final = os.path.join(workdir, "checkpoints", "121", "state")
  assert {"ocdbt.process_0", "ocdbt.process_1"} <= set(os.listdir(final))

  reference = gj.sweep(CONFIG, log=None)
  _assert_histories_close(gio.read_history(workdir), reference.history)
  # One process reads the two-process checkpoint back.
  loaded_config, state = gj.train.load_final_state(workdir)
  assert loaded_config == CONFIG
  for a, b in zip(np.asarray(state.params["unembed"]["kernel"]),
                  np.asarray(reference.state.params["unembed"]["kernel"])):
    np.testing.assert_allclose(a, b, **BOUND)


# In the slow run (pytest -m slow, which .ci/run also runs).
@pytest.mark.slow
def test_a_nan_member_in_a_grouped_sharded_run_leaves_the_others_bitwise(
    tmp_path):
  """6 members in 2 groups of 4 over 4 devices; the members with learning
  rate 1e30 (SGD) diverge. Against the same sweep shape with 0.4 in their
  place, every other member is bit for bit the same (same program)."""
  base = CONFIG.replace(optimizer="sgd", warmup_steps=0, weight_decay=(0.0,),
                        members_per_group=4)
  script = textwrap.dedent(f"""
      import jax, numpy as np, grokjax as gj
      base = gj.Config(**{base.to_dict()!r})
      assert jax.device_count() == 4
      for name, lrs in (("healthy", (0.5, 0.4)), ("mixed", (0.5, 1e30))):
        r = gj.sweep(base.replace(learning_rate=lrs), log=None,
                     workdir="{tmp_path}/" + name)
        assert r.groups == 2, r.groups
  """)
  proc = subprocess.run([sys.executable, "-c", script], env=_env(4),
                        capture_output=True, text=True, timeout=600)
  assert proc.returncode == 0, proc.stderr
  healthy = gio.read_history(str(tmp_path / "healthy"))
  mixed = gio.read_history(str(tmp_path / "mixed"))
  summary = gio.read_csv(str(tmp_path / "mixed" / "summary.csv"))
  bad = [i for i, row in enumerate(summary)
         if float(row["learning_rate"]) > 1]
  assert len(bad) == 3
  for i, row in enumerate(summary):
    if i in bad:
      assert row["diverged"] == "True" and int(row["diverged_step"]) < 5
      continue
    assert row["diverged"] == "False"
    for key in ("step_train_loss", "val_loss", "param_norm"):
      np.testing.assert_array_equal(mixed[key][i], healthy[key][i],
                                    err_msg=f"{key} of member {i}")
