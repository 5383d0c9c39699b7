"""Grokking time by algebraic structure: a sweep over --task=algebra, joined with each algebra's properties.

    python experiments/sweep.py --flagfile=experiments/flags/algebras_categories.flags
    python experiments/algebras.py --workdir=runs/algebras_categories

Writes into `<workdir>/analysis/` (or `--out`):
- `algebras.csv`: one row per algebra of the run (`--algebra` order): its
  properties (`grokjax.tasks.algebra.properties`: associative, commutative,
  unital, category, mode ranks, sparsity), the members that learned it, how
  many generalized, and their median t_mem / t_gen (never = empty);
- `algebras.json`: per category (``acu``: associative, commutative, unital;
  ``~`` negates), its algebras, members, how many generalized and their
  median t_gen (never counting as +inf, written Infinity);
- `plots/algebras.png`: t_gen of every member by category and against the
  tensor's total mode rank and its sparsity (members that never generalized
  sit on the top edge, marked x).
"""

import json
import os


from absl import flags
import numpy as np

from grokjax import cli
import grokjax as gj
from grokjax.io import plots
from grokjax.tasks import algebra as alg_lib

flags.DEFINE_string("workdir", None, "a run directory of --task=algebra")
flags.DEFINE_string("out", None, "output folder (default <workdir>/analysis)")
FLAGS = flags.FLAGS


def algebra_rows(config: gj.Config, summary: list[dict]) -> list[dict]:
  """Per algebra: properties and its members' grokking statistics."""
  rows = []
  for index, spec in enumerate(config.algebra):
    props = alg_lib.properties(alg_lib.make_algebra(spec, config.p,
                                                    config.dim))
    mine = [r for r in summary if int(r["task_index"]) == index]
    t_gen = np.array([r["t_gen"] for r in mine], np.float64)
    t_mem = np.array([r["t_mem"] for r in mine], np.float64)
    rows.append({
        "task_index": index, "algebra": spec,
        "category": props["category_ascii"],
        "associative": props["associative"],
        "commutative": props["commutative"], "unital": props["unital"],
        "mode_rank_1": props["mode_ranks"][0],
        "mode_rank_2": props["mode_ranks"][1],
        "mode_rank_3": props["mode_ranks"][2],
        "sparsity": props["sparsity"], "members": len(mine),
        "generalized": int(np.isfinite(t_gen).sum()),
        "median_t_mem": gj.analysis.median_time(t_mem),
        "median_t_gen": gj.analysis.median_time(t_gen)})
  return rows


def category_summary(rows: list[dict], summary: list[dict]) -> dict:
  """Per category: its algebras and the median t_gen over all their members."""
  out = {}
  for category in sorted({r["category"] for r in rows}):
    mine = [r for r in rows if r["category"] == category]
    index = {r["task_index"] for r in mine}
    t_gen = np.array([r["t_gen"] for r in summary
                      if int(r["task_index"]) in index], np.float64)
    out[category] = {"algebras": [r["algebra"] for r in mine],
                     "members": int(t_gen.size),
                     "generalized": int(np.isfinite(t_gen).sum()),
                     "median_t_gen": float(gj.analysis.median_time(t_gen))}
  return out


def main(argv):
  del argv
  config = gj.Config.from_dict(cli.stored_run(
      FLAGS.workdir, "a run directory of --task=algebra")["config"])
  if config.task != "algebra":
    raise gj.ConfigError(f"--workdir={FLAGS.workdir}: a run of --task="
                         f"{config.task}; this script needs --task=algebra")
  history, diverged, _ = gj.io.RunDir(FLAGS.workdir).history_so_far()
  members = gj.io.RunDir(FLAGS.workdir).members()
  members = [{k: gj.io.csv_float(v) for k, v in m.items() if k != "member"}
             for m in members]
  summary = gj.analysis.summarize_config(history, members, diverged, config)
  rows = algebra_rows(config, summary)
  out = FLAGS.out or os.path.join(FLAGS.workdir, "analysis")
  os.makedirs(os.path.join(out, "plots"), exist_ok=True)
  gj.io.write_csv(os.path.join(out, "algebras.csv"), rows)
  gj.io.atomic.write_text(os.path.join(out, "algebras.json"), json.dumps(
      {"categories": category_summary(rows, summary)}, indent=1))
  path = os.path.join(out, "plots", "algebras.png")
  by_index = {r["task_index"]: r for r in rows}
  points = [{**by_index[int(r["task_index"])], "t_gen": r["t_gen"]}
            for r in summary]
  plots.plot_algebras(path, points, config.steps)
  when = lambda v: f"{v:g}" if np.isfinite(v) else "never"
  for r in rows:
    print(f"  {r['algebra']:>12} {r['category']:>8} ranks "
          f"({r['mode_rank_1']}, {r['mode_rank_2']}, {r['mode_rank_3']}) "
          f"sparsity {r['sparsity']:.2f}: generalized {r['generalized']}/"
          f"{r['members']}, median t_gen {when(r['median_t_gen'])}")
  print(f"wrote {os.path.join(out, 'algebras.csv')}, algebras.json, {path}")


if __name__ == "__main__":
  cli.run_main(main)
