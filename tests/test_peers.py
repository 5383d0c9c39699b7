"""The peer drivers' own logic (experiments/peers/common.py) without torch:
the checkout must be the repository, unedited, and the time of a threshold is
read on their evaluation grid as grokjax reads its own."""

import os
import subprocess
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))), "experiments", "peers"))

import common  # pylint: disable=wrong-import-position


def test_first_at_or_above_is_the_first_logged_step_reaching_it():
  steps, acc = [10, 20, 30, 40], [0.2, 0.95, 0.94, 0.99]
  assert common.first_at_or_above(steps, acc, 0.95) == 20
  assert common.first_at_or_above(steps, acc, 0.99) == 40
  assert common.first_at_or_above(steps, acc, 0.999) is None


def _git(path, *args):
  subprocess.run(["git", "-C", str(path), *args], check=True,
                 capture_output=True)


def test_checkout_names_the_commit_and_refuses_what_is_not_theirs_unedited(
    tmp_path):
  with pytest.raises(common.PeerError, match="no main.py"):
    common.checkout(str(tmp_path), "ironjr/grokfast", "main.py")
  (tmp_path / "main.py").write_text("print('theirs')\n")
  with pytest.raises(common.PeerError, match="not a git checkout"):
    common.checkout(str(tmp_path), "ironjr/grokfast", "main.py")
  _git(tmp_path, "init", "-q")
  _git(tmp_path, "add", "main.py")
  _git(tmp_path, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm",
       "theirs")
  info = common.checkout(str(tmp_path), "ironjr/grokfast", "main.py")
  assert info["repo"] == "ironjr/grokfast" and len(info["commit"]) == 40
  (tmp_path / "main.py").write_text("print('edited')\n")
  with pytest.raises(common.PeerError, match="edited"):
    common.checkout(str(tmp_path), "ironjr/grokfast", "main.py")


def test_placeholder_module_fails_on_use_only():
  m = common.placeholder_module("torchvision", "not used")
  assert not hasattr(m, "datasets")  # hasattr / inspect see a plain module
  with pytest.raises(AttributeError, match="torchvision.datasets: not "
                     "installed"):
    m.datasets  # pylint: disable=pointless-statement
