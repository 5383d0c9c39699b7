"""The documentation against the code: docs/flags.md is what the scripts
define, every flag has help, and every command in README.md and docs/ names a
script that exists, flags that script accepts and files that exist."""

import concurrent.futures
import glob
import os
import re
import shlex
import subprocess
import sys

import pytest

from grokjax import cli

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PAGES = [os.path.join(ROOT, "README.md")] + sorted(
    glob.glob(os.path.join(ROOT, "docs", "*.md")))
README_MAX_LINES = 250  # issue 29: a README that fits a screen


@pytest.fixture(scope="module")
def reference():
  """Every experiments/*.py script's flags, from its own --helpxml (the
  scripts in parallel: each is a process importing grokjax)."""
  scripts = sorted(os.path.relpath(p, ROOT) for p in
                   glob.glob(os.path.join(ROOT, "experiments", "*.py")))
  with concurrent.futures.ThreadPoolExecutor(4) as pool:
    found = pool.map(lambda s: cli.script_flags(os.path.join(ROOT, s)),
                     scripts)
    return dict(zip(scripts, found))


def test_flag_reference_is_the_generated_one(reference):
  """docs/flags.md is exactly what the scripts define: a flag added, renamed
  or re-documented without `python experiments/flags_reference.py` fails."""
  expected = cli.flag_reference(
      {s: f for s, f in reference.items() if not s.endswith(
          "flags_reference.py")})
  with open(os.path.join(ROOT, "docs", "flags.md")) as f:
    assert f.read() == expected


def test_every_flag_has_help(reference):
  """A flag whose help is empty or only its own name documents nothing."""
  bare = [f"{s} --{n}" for s, flags_ in reference.items()
          for n, f in flags_.items() if cli.own_flag(f["file"])
          and f["meaning"].strip() in ("", n)]
  assert not bare


def _commands(text: str):
  """`python <script> ...` commands in a page's code blocks (continuation
  lines joined, `&&` chains split, comments dropped) and inline code spans."""
  blocks = re.findall(r"```[a-z]*\n(.*?)```", text, flags=re.S)
  prose = re.sub(r"```.*?```", "", text, flags=re.S)
  blocks += re.findall(r"`(python3? [^`]+)`", prose)
  for block in blocks:
    for line in block.replace("\\\n", " ").splitlines():
      for part in line.split("&&"):
        try:
          words = shlex.split(part, comments=True)
        except ValueError:
          continue
        if len(words) >= 2 and words[0] in ("python", "python3") and (
            words[1].endswith(".py")):
          yield words[1], words[2:]


def _peer_flags(script: str) -> set[str]:
  """A peer driver's flags, from its argparse --help (no torch needed)."""
  proc = subprocess.run([sys.executable, os.path.join(ROOT, script), "--help"],
                        capture_output=True, text=True, check=True)
  return set(re.findall(r"--([a-z_0-9]+)", proc.stdout))


def test_every_command_in_the_docs_names_real_scripts_flags_and_files(
    reference):
  """Each command: the script exists; each --flag is one that script accepts
  (absl's --noX for a boolean X too); each --flagfile exists. Placeholders
  (<name>, [optional] brackets) are read as the flags they wrap."""
  checked, bad = 0, []
  peers: dict[str, set[str]] = {}
  for page in PAGES:
    with open(page) as f:
      text = f.read()
    for script, args in _commands(text):
      where = f"{os.path.relpath(page, ROOT)}: python {script}"
      if not os.path.isfile(os.path.join(ROOT, script)):
        bad.append(f"{where}: no such script")
        continue
      if script in reference:  # and absl's own --flagfile
        known = set(reference[script]) | {"flagfile"}
      elif script.startswith("experiments/peers/"):
        known = peers.setdefault(script, _peer_flags(script))
      else:
        known = None  # tests/golden_cases.py and the like: exists is all
      for arg in args:
        arg = arg.strip("[]")
        if not arg.startswith("--") or known is None:
          continue
        name, _, value = arg[2:].partition("=")
        ok = name in known or (name.startswith("no") and name[2:] in known)
        if not ok:
          bad.append(f"{where}: unknown flag --{name}")
        if name == "flagfile" and "<" not in value and not os.path.isfile(
            os.path.join(ROOT, value)):
          bad.append(f"{where}: no flagfile {value}")
      checked += 1
  assert not bad, "\n".join(bad)
  assert checked >= 25  # the pages held 31 on 2026-12-05: the reader works


def test_readme_fits_a_screen_and_links_pages_that_exist():
  with open(os.path.join(ROOT, "README.md")) as f:
    text = f.read()
  assert len(text.splitlines()) <= README_MAX_LINES
  for page in PAGES:
    with open(page) as f:
      for link in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", f.read()):
        if "://" in link:
          continue
        target = os.path.normpath(os.path.join(os.path.dirname(page), link))
        assert os.path.exists(target), f"{page}: broken link {link}"
