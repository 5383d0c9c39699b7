"""Replays one member of a finished sweep bit for bit and saves its parameters at any steps.

    python experiments/replay.py --workdir=runs/quickstart --member=5 \\
        --steps=100,500,1000 --out=member5.npz

Retrains the member's group in a sweep of the run's original shape (stored
config and group size) on this machine's devices, writes nothing into the run
directory, and compares every record and the final parameters with the
stored ones: identical on the run's device configuration (see README,
"Reproducibility"); elsewhere it prints the largest difference per record.
`--out` saves the member's parameters after each of `--steps` (and the last
step) as `step<S>/<param path>` arrays in one .npz.
"""

import os


from absl import flags
import jax
import numpy as np

from grokjax import cli
import grokjax as gj

flags.DEFINE_string("workdir", None, "a finished run directory")
flags.DEFINE_integer("member", None, "the member's index (members.csv)")
flags.DEFINE_list("steps", [], "steps after which to keep its parameters")
flags.DEFINE_string("out", "", ".npz for the parameters (empty: none)")
cli.define_cache_flags()
FLAGS = flags.FLAGS


def main(argv):
  del argv
  if not FLAGS.workdir:
    raise gj.ConfigError("--workdir: give the finished run directory")
  if FLAGS.member is None:
    raise gj.ConfigError("--member: give the member's index (members.csv)")
  try:
    steps = [int(s) for s in FLAGS.steps]
  except ValueError:
    raise gj.ConfigError(f"--steps={','.join(FLAGS.steps)}: give integers"
                         ) from None
  if FLAGS.out and os.path.exists(FLAGS.out):
    raise gj.ConfigError(f"--out={FLAGS.out}: exists; give a new file")
  cli.enable_compilation_cache()
  replay = gj.train.replay(FLAGS.workdir, FLAGS.member, steps, log=print)
  values = ", ".join(f"{k}={v}" for k, v in replay.values.items())
  where = (f"member {replay.member} ({values}; group {replay.group}, "
           f"{replay.group_size} members, {replay.devices} device(s))")
  if replay.identical:
    print(f"{where}: replayed bit for bit (every record and the final "
          "parameters)")
  else:
    print(f"{where}: differs from the stored run: " + ", ".join(
        f"{k} by up to {v:.3g}" for k, v in replay.differences.items()))
  if FLAGS.out:
    arrays = {}
    for step, params in replay.params.items():
      for path, leaf in jax.tree_util.tree_flatten_with_path(params)[0]:
        name = jax.tree_util.keystr(path, simple=True, separator="/")
        arrays[f"step{step}/{name}"] = np.asarray(leaf)
    np.savez(FLAGS.out, **arrays)
    print(f"wrote {FLAGS.out} (steps {', '.join(map(str, replay.params))})")


if __name__ == "__main__":
  cli.run_main(main)
