"""Gu et al. 2025's own code (Qihuai27/Grokking-Insight, transformer/rec.py or str.py), unedited, at a row's setup.

    python experiments/peers/gu2025.py --peer_dir=../Grokking-Insight \\
        --out=runs/peers/gu2025_square_seed0 --script=transformer/rec.py \\
        --k=30 --steps=30000 --seed=0

Their script's `__main__` trains four hold-outs (k = 40, 50, 60, 67) for 300
epochs on CUDA and then plots; its model, its `Trainer` and its functions
read a module-level `config`. So the driver loads the script as a module
(its `__main__` block does not run), sets that module's `config` to their
`Config(k, d, num_epochs, seed, device=cpu)` (their defaults otherwise: p =
97, d_vocab 98 with a no-op token, 1 layer, d_model 128, 4 heads, ReLU, no
LayerNorm, frac_train 0.3 of all p^2 pairs, the (k+1) x (k+1) corner never
trained on, AdamW lr 1e-3 wd 1 betas (0.9, 0.98), a 10-step warm-up), builds
`Trainer(config)` and calls `Trainer.do_a_training_step(epoch)` once per
step, as their `train_model` does (without its final save and plot).
Nothing of theirs is edited:
- their code seeds only the split (`random.seed(config.seed)`): the driver
  calls `torch.manual_seed(--seed)` before `Trainer` (the init follows);
- their step records, before its update, the full train and test loss and
  accuracy and MED (their `calculate_embedding_diff`) at every step; the
  curve keeps every `--eval_every`-th (the parameters after `step` updates,
  grokjax's convention) and adds the final parameters, measured with their
  own `full_loss`, `calculate_accuracy` and `calculate_embedding_diff`.

`peer.json` records the repository, commit, torch, the device, the command,
the time, the curve and the row's quantities: `test acc at the end (the
corner and the unused pairs)` (their test set), `test 99%`, `MED at the end
over its first value`, and `Spearman(MED, test loss) over the snapshots`,
here over the curve's points (every `--eval_every` steps; grokjax's row
takes its parameter snapshots, log-spaced and every 500 steps).
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys

import common

REPO = "Qihuai27/Grokking-Insight"
SCRIPTS = ("transformer/rec.py", "transformer/str.py")


def parse(argv):
  p = common.parser(__doc__)
  p.add_argument("--script", default=SCRIPTS[0], choices=SCRIPTS)
  p.add_argument("--k", type=int, default=30, help="their Config.k (the "
                 "held-out corner or strip is 0..k, inclusive)")
  p.add_argument("--d", type=int, default=None, help="their Config.d (the "
                 "y operand's token offset; their default 0)")
  p.add_argument("--d_vocab", type=int, default=None, help="their "
                 "Config.d_vocab (default theirs: 98)")
  p.add_argument("--steps", type=int, default=30000, help="their "
                 "num_epochs (full-batch steps)")
  p.add_argument("--seed", type=int, default=0)
  p.add_argument("--eval_every", type=int, default=100)
  return p.parse_args(argv)


def load(peer_dir: str, script: str):
  """Their script as a module named after it (its __main__ block not run),
  with its folder first on sys.path."""
  path = os.path.join(os.path.abspath(peer_dir), script)
  sys.path.insert(0, os.path.dirname(path))
  spec = importlib.util.spec_from_file_location(
      "gu_" + os.path.splitext(os.path.basename(script))[0], path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


def spearman(x, y) -> float | None:
  import scipy.stats  # their requirements  # pylint: disable=import-outside-toplevel
  if len(x) < 3:
    return None
  return float(scipy.stats.spearmanr(x, y).statistic)


def main(argv=None):
  args = parse(sys.argv[1:] if argv is None else argv)
  info = common.checkout(args.peer_dir, REPO, args.script)
  if args.steps <= 0 or args.eval_every <= 0:
    raise common.PeerError(f"--steps={args.steps} --eval_every="
                           f"{args.eval_every}: give positive counts")
  common.new_folder(args.out)
  import torch  # pylint: disable=import-outside-toplevel
  theirs = load(args.peer_dir, args.script)
  fields = {"k": args.k, "num_epochs": args.steps, "seed": args.seed,
            "device": torch.device("cpu")}
  if args.d is not None:
    fields["d"] = args.d
  if args.d_vocab is not None:
    fields["d_vocab"] = args.d_vocab
  theirs.config = config = theirs.Config(**fields)
  torch.manual_seed(args.seed)
  clock = common.StepClock(every=100)
  world = theirs.Trainer(config=config)
  old = os.getcwd()
  os.chdir(args.out)
  try:
    for epoch in range(args.steps):
      world.do_a_training_step(epoch)
  finally:
    os.chdir(old)
  timing = clock.close()
  curve = [{"step": s, "train_loss": world.train_losses[s],
            "test_loss": world.test_losses[s],
            "train_acc": world.train_accuracies[s],
            "test_acc": world.test_accuracies[s],
            "med": world.embedding_diffs[s]}
           for s in range(0, args.steps, args.eval_every)]
  with torch.no_grad():  # after the last update, with their functions
    curve.append({
        "step": args.steps,
        **{f"{name}_loss": theirs.full_loss(config, world.model, data).item()
           for name, data in (("train", world.train), ("test", world.test))},
        **{f"{name}_acc": theirs.calculate_accuracy(config, world.model, data)
           for name, data in (("train", world.train), ("test", world.test))},
        "med": theirs.calculate_embedding_diff(
            world.model.embed.W_E.data.cpu(), 0, config.p - 1, config.d,
            config.d + config.p - 1)})
  with open(os.path.join(args.out, "curve.jsonl"), "w") as f:
    f.writelines(json.dumps(p) + "\n" for p in curve)
  steps = [p["step"] for p in curve]
  record = {
      **info, **common.environment(),
      "command": [args.script, "config = Config(" + ", ".join(
          f"{k}={str(v) if k == 'device' else v!r}" for k, v in
          fields.items()) + "); Trainer(config).do_a_training_step per step"],
      "n_train": len(world.train), "n_test": len(world.test),
      "substitutions": [
          f"the module's config set to their Config({', '.join(fields)}=...)"
          " (their __main__ loops k over 40-67 on CUDA)",
          f"torch.manual_seed({args.seed}) before Trainer (their code seeds "
          "only the split)"], **timing, "curve": curve,
      "metrics": {
          "test acc at the end (the corner and the unused pairs)":
              curve[-1]["test_acc"],
          "test 99%": common.first_at_or_above(
              steps, [p["test_acc"] for p in curve], 0.99),
          "MED at the end over its first value":
              curve[-1]["med"] / curve[0]["med"],
          "Spearman(MED, test loss) over the snapshots": spearman(
              [p["med"] for p in curve], [p["test_loss"] for p in curve]),
      }}
  path = common.write_record(args.out, record)
  print(f"wrote {path}: {json.dumps(record['metrics'])}")


if __name__ == "__main__":
  common.main_with_errors(main)
