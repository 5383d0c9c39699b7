"""Grokfast's own code (ironjr/grokfast main.py), unedited, at a row's setup.

    python experiments/peers/grokfast2024.py --peer_dir=../grokfast \\
        --out=runs/peers/grokfast2024_baseline_like --seed=0 --budget=50000

runs their `main.py` as `__main__` (x*y mod 97 without y = 0, 50% train,
their 2-layer decoder, Adam lr 1e-3 betas (0.9, 0.98), no weight decay,
batch 512: the rows grokfast2024_baseline_like*), with `--budget` optimizer
steps (their loop runs budget // 10 epochs of 10 steps), `--seed` and any
other of their flags in `--peer_args` (`--filter ma --window_size 100 --lamb
5 --weight_decay 0.01` is the MA row). Nothing of theirs is edited; their
script saves its curves (`results/res_<label>.pt`, train and validation
accuracy once per epoch) and plots into `--out`, which the driver reads back.
A global torch optimizer-step hook counts steps and records the parameters'
L2 norm every 100 steps.

`peer.json`: the repository, commit, torch, the device, the command, the
time, the curves, and `val 95%` (the first epoch's step count at which
validation accuracy >= 0.95, as the paper's "steps to 95% val"; None if
never) and `final val acc`.
"""

from __future__ import annotations

import glob
import json
import os
import sys

import common

REPO = "ironjr/grokfast"
SCRIPT = "main.py"


def parse(argv):
  p = common.parser(__doc__)
  p.add_argument("--seed", type=int, default=0)
  p.add_argument("--budget", type=int, default=50000, help="optimizer steps "
                 "(a multiple of 10: their loop runs budget // 10 epochs)")
  p.add_argument("--peer_args", default="", help="their other flags "
                 "(default: none, the baseline)")
  return p.parse_args(argv)


def curve_from_results(res: dict) -> list[dict]:
  """Their results/res_<label>.pt (a dict of per-epoch lists: its, the step
  count after the epoch's training; train_acc/loss; val_acc/loss measured
  after it) as curve points."""
  return [{"step": int(s), "train_acc": float(ta), "val_acc": float(va),
           "train_loss": float(tl), "val_loss": float(vl)}
          for s, ta, va, tl, vl in zip(res["its"], res["train_acc"],
                                       res["val_acc"], res["train_loss"],
                                       res["val_loss"])]


def main(argv=None):
  args = parse(sys.argv[1:] if argv is None else argv)
  info = common.checkout(args.peer_dir, REPO, SCRIPT)
  if args.budget <= 0 or args.budget % 10:
    raise common.PeerError(f"--budget={args.budget}: give a positive "
                           "multiple of 10 (their epoch is 10 steps)")
  common.new_folder(args.out)
  os.makedirs(os.path.join(args.out, "results"), exist_ok=True)
  their_argv = [*args.peer_args.split(), "--budget", str(args.budget),
                "--seed", str(args.seed), "--label", f"seed{args.seed}"]
  import matplotlib  # pylint: disable=import-outside-toplevel
  matplotlib.use("Agg")  # their plt.savefig needs no screen
  clock = common.StepClock(every=100)
  common.run_script(args.peer_dir, SCRIPT, their_argv, args.out)
  timing = clock.close()
  import torch  # pylint: disable=import-outside-toplevel
  saved = sorted(glob.glob(os.path.join(args.out, "results", "res_*.pt")))
  if not saved:
    raise common.PeerError(f"--budget={args.budget}: their script saves its "
                           "curves every 100 epochs; give at least 1000 steps")
  curve = curve_from_results(torch.load(saved[-1], weights_only=False))
  record = {
      **info, **common.environment(), "command": [SCRIPT, *their_argv],
      "substitutions": ["matplotlib's Agg backend (no screen)"], **timing,
      "curve": curve,
      "metrics": {
          "val 95%": common.first_at_or_above(
              [r["step"] for r in curve], [r["val_acc"] for r in curve], 0.95),
          "final val acc": curve[-1]["val_acc"] if curve else None,
      }}
  path = common.write_record(args.out, record)
  print(f"wrote {path}: {json.dumps(record['metrics'])}")


if __name__ == "__main__":
  common.main_with_errors(main)
