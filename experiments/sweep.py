"""Trains a whole grokking sweep as one compiled program and writes its run directory.

    python experiments/sweep.py --flagfile=experiments/flags/quickstart.flags
    python experiments/sweep.py --task=x/y --p=97 --train_fraction=0.3,0.5 \\
        --seed=0:8 --weight_decay=0.1,1 --steps=100000 --workdir=runs/div

Every grokjax.Config field is a flag; swept flags take lists and ranges
(`--seed=0:8`, `--learning_rate=log:1e-4:1e-2:5`) and the grid is their product.
"""

import math
import os
import signal
import sys


from grokjax import cli
import jax
import grokjax as gj

cli.define_config_flags()
cli.define_multihost_flags()
cli.define_cache_flags()
cli.flags.adopt_module_key_flags(cli)  # --help lists them
FLAGS = cli.FLAGS
# EX_TEMPFAIL (sysexits.h): stopped by SIGTERM/SIGINT with a checkpoint saved;
# the same command resumes.
PREEMPTED_EXIT = 75
# EX_IOERR (sysexits.h): a run directory file could not be written (a full
# disk, a quota); the same command resumes once there is room.
WRITE_FAILED_EXIT = 74


def _stop(signum, frame):
  """SIGTERM/SIGINT before gj.sweep installs its own handlers: nothing written yet."""
  del frame
  raise gj.Preempted(None, None, None, "reading the flags "
                     f"({signal.Signals(signum).name})")


def _quiet_closed_loop_callbacks():
  """When a checkpoint write fails, tensorstore's pending writes complete
  later and call back into orbax's already closed event loop; each prints a
  traceback of "Event loop is closed" (through sys.excepthook) that says
  nothing the one-line WriteError does not."""
  previous = sys.excepthook

  def hook(kind, value, tb):
    if kind is RuntimeError and str(value) == "Event loop is closed":
      return
    previous(kind, value, tb)
  sys.excepthook = hook


def main(argv):
  if len(argv) > 1:
    raise gj.ConfigError(f"unexpected arguments {argv[1:]}; flags look like "
                         "--name=value")
  _quiet_closed_loop_callbacks()
  try:
    for s in (signal.SIGTERM, signal.SIGINT):
      signal.signal(s, _stop)
    config = cli.config_from_flags()
    cli.enable_compilation_cache()
    if config.needs_x64:  # a float64 model, loss or optimizer
      jax.config.update("jax_enable_x64", True)
    cli.init_multihost()
    workdir = FLAGS.workdir or cli.default_workdir(config)
    result = gj.sweep(config, workdir=workdir, overwrite=FLAGS.overwrite)
  except gj.Preempted as e:
    if jax.process_index() == 0:
      print(f"{os.path.basename(argv[0])}: {e}", file=sys.stderr)
    sys.exit(PREEMPTED_EXIT)
  except gj.io.WriteError as e:
    print(f"{os.path.basename(argv[0])}: {e}; what was written before is "
          "intact: make room (or fix the permissions), then run the same "
          "command again to resume", file=sys.stderr)
    sys.exit(WRITE_FAILED_EXIT)
  signal.signal(signal.SIGTERM, signal.SIG_DFL)  # the run is written
  signal.signal(signal.SIGINT, signal.default_int_handler)
  if jax.process_index() != 0:
    return
  phases = [row["phase"] for row in result.summary]
  counts = ", ".join(f"{p} {phases.count(p)}" for p in gj.analysis.PHASES
                     if p in phases)
  print(f"done in {result.seconds:.0f}s: {counts}")
  axes = [a for a in gj.Grid.from_config(config).varied
          if a not in ("seed", "data_seed")]
  when = lambda v: f"{v:g}" if math.isfinite(v) else "never"
  for row in gj.analysis.group_medians(result.summary, axes):
    point = ", ".join(f"{a}={row[a]:g}" for a in axes) or "all members"
    print(f"  {point}: generalized {row['generalized']}/{row['members']}; "
          f"median t_mem {when(row['median_t_mem'])}, t_gen "
          f"{when(row['median_t_gen'])}, delay {when(row['median_delay'])}")
  print(f"wrote {workdir}/summary.csv, {workdir}/history.npz and "
        f"{workdir}/plots/")


if __name__ == "__main__":
  cli.run_main(main)
