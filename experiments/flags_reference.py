"""Writes docs/flags.md: every flag of every script in experiments/, from the scripts themselves.

    python experiments/flags_reference.py [--out=docs/flags.md]
"""

import glob
import os

from absl import flags

from grokjax import cli
from grokjax.io import atomic

HERE = os.path.dirname(os.path.abspath(__file__))
SCRIPTS = sorted(os.path.relpath(p, os.path.dirname(HERE)) for p in
                 glob.glob(os.path.join(HERE, "*.py"))
                 if not p.endswith("flags_reference.py"))

flags.DEFINE_string("out", os.path.join(os.path.dirname(HERE), "docs",
                                        "flags.md"), "the page to write")
FLAGS = flags.FLAGS


def main(argv):
  del argv
  root = os.path.dirname(HERE)
  text = cli.flag_reference({s: cli.script_flags(os.path.join(root, s))
                             for s in SCRIPTS})
  atomic.write_text(FLAGS.out, text)
  print(f"wrote {FLAGS.out} ({len(SCRIPTS)} scripts)")


if __name__ == "__main__":
  cli.run_main(main)
