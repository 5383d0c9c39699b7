"""Nanda et al. 2023's own code (mechanistic-interpretability-grokking/progress-measures-paper, transformers.py), unedited, at a row's setup.

    python experiments/peers/nanda2023.py --peer_dir=../progress-measures-paper \\
        --out=runs/peers/nanda2023_measures_seed0 --p=59 --frac_train=0.4 \\
        --steps=8000 --seed=0

`transformers.py` has no command line: its `train_model` also takes Fourier
metrics every 1000 epochs with `is_train_is_test`, which looks for the
token 113 whatever `p` is, and saves and plots at the end. So the driver does
what `train_model`'s loop does for training and nothing else: it builds their
`Config(p, frac_train, num_epochs, seed, device=cpu, d_vocab)` and
`Trainer(config)`, and calls `Trainer.do_a_training_step(epoch)` (their full
train loss, their full test loss, backward, AdamW, the warm-up scheduler)
once per step. Nothing of theirs is edited:
- `from . import helpers` needs the folder as a package: a package module
  whose `__path__` is the checkout is registered from outside;
- their code seeds only the split (`random.seed(config.seed)`): the driver
  calls `torch.manual_seed(--seed)` before `Trainer` (the init follows);
- `wandb` (their `Trainer.__init__` calls `wandb.init`) is a stand-in module
  that does nothing; `plotly`, which `helpers.py` imports and the training
  step never uses, is a placeholder where it is not installed;
- their step logs only losses, so every `--eval_every` steps the driver
  evaluates their model without gradients on their train and test pairs
  (accuracy at the last position, their `full_loss`'s logits); an evaluation
  at step s measures the parameters after s updates (grokjax's convention:
  their `train_losses[s]` is the loss of the same parameters);
- `d_vocab`: their Config computes `d_vocab = p + 1` from the class default
  p = 113, so `Config(p=59)` would keep 114 tokens; `--d_vocab` (default
  p + 1, as grokjax's `--noop_token`) is passed explicitly.
At the end their `calculate_key_freqs` (the distinct frequencies the MLP
neurons pick, `np.unique` over neurons) runs on the final model.

`peer.json` records the repository, commit, torch, the device, the command,
the time, the curve and the row's quantities: `train 99%` and `test 95%`
(the first evaluation at or above the threshold; None: never), `final test
acc`, and `key frequencies (final model)` (the count their function returns).
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import os
import sys
import types

import common

REPO = "mechanistic-interpretability-grokking/progress-measures-paper"
SCRIPT = "transformers.py"
PACKAGE = "progress_measures_paper"


def parse(argv):
  p = common.parser(__doc__)
  p.add_argument("--p", type=int, default=113, help="their Config.p")
  p.add_argument("--frac_train", type=float, default=0.3)
  p.add_argument("--steps", type=int, default=50000, help="full-batch "
                 "steps (their num_epochs; their default 50000)")
  p.add_argument("--seed", type=int, default=0, help="their Config.seed "
                 "(the split) and torch.manual_seed (the init)")
  p.add_argument("--d_vocab", type=int, default=None, help="their "
                 "Config.d_vocab (default p + 1)")
  p.add_argument("--eval_every", type=int, default=100)
  return p.parse_args(argv)


def stand_ins(peer_dir: str) -> list[str]:
  """Modules put in place from outside (their files unchanged); returns the
  record's list of substitutions."""
  done = []
  wandb = types.ModuleType("wandb")
  wandb.init = lambda *a, **k: None
  wandb.log = lambda *a, **k: None
  sys.modules["wandb"] = wandb
  done.append("wandb: a stand-in whose init and log do nothing (Trainer "
              "calls wandb.init; the training step logs nothing)")
  try:
    importlib.import_module("plotly.express")
  except ImportError:
    for name in ("plotly", "plotly.express", "plotly.io",
                 "plotly.graph_objects"):
      sys.modules[name] = common.placeholder_module(
          name, "helpers.py imports it for plots; training never uses it")
    done.append("plotly: placeholder modules (helpers.py imports them for "
                "plots; the training step never uses them)")
  package = types.ModuleType(PACKAGE)
  package.__path__ = [os.path.abspath(peer_dir)]
  sys.modules[PACKAGE] = package
  done.append(f"the checkout registered as package {PACKAGE!r} so that "
              "transformers.py's `from . import helpers` resolves")
  return done


def accuracy(torch, model, data, labels) -> float:
  with torch.no_grad():
    logits = model(data)[:, -1]
    return float((logits.argmax(-1) == labels).double().mean())


def main(argv=None):
  args = parse(sys.argv[1:] if argv is None else argv)
  info = common.checkout(args.peer_dir, REPO, SCRIPT)
  if args.steps <= 0 or args.eval_every <= 0:
    raise common.PeerError(f"--steps={args.steps} --eval_every="
                           f"{args.eval_every}: give positive counts")
  common.new_folder(args.out)
  substitutions = stand_ins(args.peer_dir)
  import torch  # pylint: disable=import-outside-toplevel
  tr = importlib.import_module(f"{PACKAGE}.transformers")
  config = tr.Config(p=args.p, frac_train=args.frac_train,
                     num_epochs=args.steps, seed=args.seed,
                     device=torch.device("cpu"),
                     d_vocab=args.d_vocab or args.p + 1)
  torch.manual_seed(args.seed)
  substitutions.append(f"torch.manual_seed({args.seed}) before Trainer "
                       "(their code seeds only the split)")
  clock = common.StepClock(every=100)
  world = tr.Trainer(config)
  sets = {}
  for name, pairs in (("train", world.train), ("test", world.test)):
    sets[name] = (torch.tensor(pairs),
                  torch.tensor([config.fn(i, j) for i, j, _ in pairs]))
  curve, curve_path = [], os.path.join(args.out, "curve.jsonl")
  for epoch in range(args.steps + 1):
    if epoch % args.eval_every == 0 or epoch == args.steps:
      world.model.eval()
      point = {"step": epoch,
               **{f"{k}_acc": accuracy(torch, world.model, *v)
                  for k, v in sets.items()}}
      world.model.train()
      curve.append(point)
    if epoch == args.steps:
      with open(curve_path, "a") as f:
        f.write(json.dumps(curve[-1]) + "\n")
      break
    world.do_a_training_step(epoch)
    if curve[-1]["step"] == epoch:  # the losses of the same parameters
      curve[-1]["train_loss"] = world.train_losses[epoch]
      curve[-1]["test_loss"] = world.test_losses[epoch]
      with open(curve_path, "a") as f:
        f.write(json.dumps(curve[-1]) + "\n")
  timing = clock.close()
  all_data = torch.tensor([(i, j, config.p) for i in range(config.p)
                           for j in range(config.p)])
  key_freqs = tr.calculate_key_freqs(config=config, model=world.model,
                                     all_data=all_data)
  steps = [r["step"] for r in curve]
  fields = {k: (str(v) if k == "device" else v)
            for k, v in dataclasses.asdict(config).items()}
  record = {
      **info, **common.environment(),
      "command": [SCRIPT, "Trainer(Config(" + ", ".join(
          f"{k}={fields[k]!r}" for k in ("p", "frac_train", "num_epochs",
                                         "seed", "d_vocab", "device"))
                  + ")).do_a_training_step per step"],
      "config": fields, "n_train": len(world.train),
      "n_test": len(world.test), "substitutions": substitutions, **timing,
      "curve": curve,
      "key_frequencies": [int(k) for k in key_freqs],
      "metrics": {
          "train 99%": common.first_at_or_above(
              steps, [r["train_acc"] for r in curve], 0.99),
          "test 95%": common.first_at_or_above(
              steps, [r["test_acc"] for r in curve], 0.95),
          "final test acc": curve[-1]["test_acc"],
          "key frequencies (final model)": len(key_freqs),
      }}
  path = common.write_record(args.out, record)
  print(f"wrote {path}: {json.dumps(record['metrics'])}")


if __name__ == "__main__":
  common.main_with_errors(main)
