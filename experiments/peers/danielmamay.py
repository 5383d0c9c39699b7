"""danielmamay/grokking's own code (grokking/cli.py), unedited, at its CLI defaults.

    python experiments/peers/danielmamay.py --peer_dir=../danielmamay-grokking \\
        --out=runs/peers/danielmamay_seed0 --seed=0 --steps=100000

runs their `grokking/cli.py` as `__main__` with `--device cpu` and
`--num_steps` (their defaults otherwise: x/y mod 97 over y = 1..96, 50%
train, 2 post-LayerNorm decoder blocks of width 128, 4 heads, ReLU MLP 4x,
no biases, a 99-way head, AdamW lr 1e-3 betas (0.9, 0.98) weight decay 1,
LinearLR from 0.1x over 10 steps, batches of 512 from a fresh permutation
each epoch; the row danielmamay_cli). Nothing of theirs is edited:
- their code seeds nothing: the driver calls `torch.manual_seed(--seed)`
  before their main (the split, the init and the batch order follow);
- `wandb` (their logger) is a stand-in module put in place from outside: its
  `init` keeps their config, its `log` appends each row they log (the full
  train and validation sets at loop index 1, 10 and every 100) to
  `curve.jsonl` as it is made; nothing goes online;
- a global torch optimizer-step hook counts steps and records the
  parameters' L2 norm every 100 steps.

Their loop logs after the update of loop index i, so a row logged at i
measures the parameters after i + 1 updates: the curve's `step` is i + 1,
grokjax's convention (an evaluation at step s measures the parameters after
s updates). `peer.json` holds the repository, commit, torch, the device,
the command, the time, the curve, and `train 99%` / `val 99%` (the first
curve step with accuracy >= 0.99, as grokjax's t_mem and t_gen with their
default thresholds; None if never) and `final val acc`.
"""

from __future__ import annotations

import json
import os
import sys
import types

import common

REPO = "danielmamay/grokking"
SCRIPT = "grokking/cli.py"


def parse(argv):
  p = common.parser(__doc__)
  p.add_argument("--seed", type=int, default=0, help="torch.manual_seed "
                 "before their main (their code seeds nothing)")
  p.add_argument("--steps", type=int, default=100000, help="their "
                 "--num_steps (their default 100000)")
  p.add_argument("--peer_args", default="", help="their other flags "
                 "(default: none, their CLI defaults)")
  return p.parse_args(argv)


def curve_point(row: dict, step: int) -> dict:
  """One curve point from a row their loop passes to wandb.log (keys
  training/loss, training/accuracy, validation/loss, validation/accuracy)
  at loop index `step`: the parameters after step + 1 updates."""
  return {"step": int(step) + 1,
          "train_loss": float(row["training/loss"]),
          "train_acc": float(row["training/accuracy"]),
          "val_loss": float(row["validation/loss"]),
          "val_acc": float(row["validation/accuracy"])}


def stand_in_wandb(curve_path: str, curve: list) -> types.ModuleType:
  """A `wandb` module for their training.py: init keeps the config, log
  records each row (in `curve` and as a line of `curve_path`)."""
  wandb = types.ModuleType("wandb")

  def init(project=None, config=None, **kwargs):
    del project, kwargs
    wandb.config = types.SimpleNamespace(**(config or {}))
    wandb.run = types.SimpleNamespace(id="offline")
    return wandb.run

  def log(row, step=None, **kwargs):
    del kwargs
    point = curve_point(row, step)
    curve.append(point)
    with open(curve_path, "a") as f:
      f.write(json.dumps(point) + "\n")

  wandb.init, wandb.log, wandb.run, wandb.config = init, log, None, None
  return wandb


def main(argv=None):
  args = parse(sys.argv[1:] if argv is None else argv)
  info = common.checkout(args.peer_dir, REPO, SCRIPT)
  if args.steps <= 0:
    raise common.PeerError(f"--steps={args.steps}: give a positive count")
  common.new_folder(args.out)
  their_argv = [*args.peer_args.split(), "--device", "cpu", "--num_steps",
                str(args.steps)]
  curve: list = []
  sys.modules["wandb"] = stand_in_wandb(
      os.path.join(args.out, "curve.jsonl"), curve)
  import torch  # pylint: disable=import-outside-toplevel
  torch.manual_seed(args.seed)
  clock = common.StepClock(every=100)
  folder, script = os.path.split(SCRIPT)
  common.run_script(os.path.join(args.peer_dir, folder), script, their_argv,
                    args.out)
  timing = clock.close()
  steps = [r["step"] for r in curve]
  record = {
      **info, **common.environment(), "command": [SCRIPT, *their_argv],
      "seed": args.seed,
      "substitutions": [
          f"torch.manual_seed({args.seed}) before their main (their code "
          "seeds nothing)",
          "wandb: a stand-in module that records each logged row "
          "(curve.jsonl); nothing goes online"], **timing,
      "curve": curve,
      "metrics": {
          "train 99%": common.first_at_or_above(
              steps, [r["train_acc"] for r in curve], 0.99),
          "val 99%": common.first_at_or_above(
              steps, [r["val_acc"] for r in curve], 0.99),
          "final val acc": curve[-1]["val_acc"] if curve else None,
      }}
  path = common.write_record(args.out, record)
  print(f"wrote {path}: {json.dumps(record['metrics'])}")


if __name__ == "__main__":
  common.main_with_errors(main)
