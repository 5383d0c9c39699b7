"""Prieto et al. 2025's own code (LucasPrietoAl/grokking-at-the-edge-of-numerical-stability), unedited, at a row's setup.

    python experiments/peers/prieto2025.py --peer_dir=../grokking-at-the-edge-of-numerical-stability \\
        --out=runs/peers/prieto2025_stablemax --seed=0

runs their `grokking_experiments.py` as their run_main_experiments.sh does for
figure 1 (StableMax: `--lr 0.01 --num_epochs 80000 --train_fraction 0.4
--loss_function stablemax --beta2 0.999`; the rows prieto2025_stablemax*),
with `--device cpu`, `--seed` and `--log_frequency` (default 1000: their
logger evaluates the full train and test sets at every multiple). Their code
is not edited:
- `datasets.py` imports torchvision, which the modular-addition path never
  uses: where torchvision is not installed a placeholder stands in (any use
  of it raises);
- their `MetricsLogger.log_metrics` is wrapped from outside so each row it
  logs is also appended to `curve.jsonl` as it is made (their own log is
  written only at the end of the run);
- a global torch optimizer-step hook counts steps and records the
  parameters' L2 norm every 100 steps (a blow-up shows there).
Their script writes its own files (checkpoints, `loggs/`) into `--out`.
`peer.json` records the repository, commit, torch, the device, the command,
the time, the curves and the row's quantities: `train 99%` and `test 99%`
(the first logged epoch with train / test accuracy >= 0.99, grokjax's t_mem
and t_gen on the same grid; None if never) and `final test acc` (their model after the last epoch, on their test
set, as their script's last line prints it).
"""

from __future__ import annotations

import json
import os
import sys

import common

REPO = "LucasPrietoAl/grokking-at-the-edge-of-numerical-stability"
SCRIPT = "grokking_experiments.py"
FIGURE_1 = ["--lr", "0.01", "--num_epochs", "80000", "--train_fraction",
            "0.4", "--loss_function", "stablemax", "--beta2", "0.999"]


def parse(argv):
  p = common.parser(__doc__)
  p.add_argument("--seed", type=int, default=42, help="their --seed "
                 "(their default 42)")
  p.add_argument("--epochs", type=int, default=80000, help="their "
                 "--num_epochs (full-batch steps)")
  p.add_argument("--log_frequency", type=int, default=1000)
  p.add_argument("--peer_args", default=" ".join(FIGURE_1), help="their "
                 "command line before --num_epochs/--seed/--device/"
                 "--log_frequency are set (default: figure 1's StableMax)")
  return p.parse_args(argv)


def curve_row(step: int, records) -> dict:
  """One curve point from their logger's rows of one logged epoch (dicts with
  input_type, metric_name and value, as MetricsLogger.compute_* build them):
  train/test accuracy and loss."""
  row = {"step": int(step)}
  for r in records:
    if r["metric_name"] in ("accuracy", "loss") and r["input_type"] in (
        "train", "test"):
      row[f"{r['input_type']}_{r['metric_name']}"] = float(r["value"])
  return row


def _wrap_logger(curve_path: str) -> None:
  import logger  # their module  # pylint: disable=import-outside-toplevel
  original = logger.MetricsLogger.log_metrics

  def log_metrics(self, *args, **kwargs):
    original(self, *args, **kwargs)
    epoch = kwargs.get("epoch", args[1] if len(args) > 1 else None)
    df = self.metrics_df
    rows = df[df["epoch"] == self._get_epoch_position(epoch)]  # pylint: disable=protected-access
    with open(curve_path, "a") as f:
      f.write(json.dumps(curve_row(epoch, rows.to_dict("records"))) + "\n")
  logger.MetricsLogger.log_metrics = log_metrics


def main(argv=None):
  args = parse(sys.argv[1:] if argv is None else argv)
  info = common.checkout(args.peer_dir, REPO, SCRIPT)
  common.new_folder(args.out)
  their_argv = [*args.peer_args.split(), "--num_epochs", str(args.epochs),
                "--seed", str(args.seed), "--device", "cpu",
                "--log_frequency", str(args.log_frequency)]
  substitutions = []
  try:
    import torchvision  # noqa: F401  pylint: disable=import-outside-toplevel,unused-import
  except ImportError:
    sys.modules["torchvision"] = common.placeholder_module(
        "torchvision", "datasets.py imports it; add_mod never uses it")
    sys.modules["torchvision.datasets"] = common.placeholder_module(
        "torchvision.datasets", "as above")
    substitutions.append("torchvision: a placeholder module (their add_mod "
                         "path never uses it)")
  sys.path.insert(0, os.path.abspath(args.peer_dir))
  curve_path = os.path.join(args.out, "curve.jsonl")
  _wrap_logger(curve_path)
  substitutions.append("logger.MetricsLogger.log_metrics wrapped: each "
                       "logged row is also appended to curve.jsonl")
  clock = common.StepClock(every=100)
  g = common.run_script(args.peer_dir, SCRIPT, their_argv, args.out)
  timing = clock.close()
  import torch  # pylint: disable=import-outside-toplevel
  model = g["model"].to("cpu")
  with torch.no_grad():
    data = g["all_test_data"].to("cpu").to(next(model.parameters()).dtype)
    final = float((model(data).argmax(-1) == g["all_test_targets"].to("cpu"))
                  .double().mean())
  with open(curve_path) as f:
    curve = [json.loads(line) for line in f]
  steps = [r["step"] for r in curve]
  record = {
      **info, **common.environment(), "command": [SCRIPT, *their_argv],
      "substitutions": substitutions, **timing,
      "curve": curve,
      "metrics": {
          "train 99%": common.first_at_or_above(
              steps, [r["train_accuracy"] for r in curve], 0.99),
          "test 99%": common.first_at_or_above(
              steps, [r["test_accuracy"] for r in curve], 0.99),
          "final test acc": final,
          "largest param norm": max((n for _, n in timing["param_norm"]),
                                    default=None),
      }}
  path = common.write_record(args.out, record)
  print(f"wrote {path}: {json.dumps(record['metrics'])}")


if __name__ == "__main__":
  common.main_with_errors(main)
