"""Reproductions as data: what a paper reports, how to re-run it, and what counts as a match.

A reproduction is one JSON file beside its flagfile in `experiments/flags/`
(`nanda2023_fractions.json` next to `nanda2023.flags`), read by
`experiments/reproduce.py`, which runs it and writes `results.json` and
`results.md`; the README's results table is generated from those. Fields:

- ``title``: the row's name; ``paper``: what the paper reports (text);
  ``notes``: caveats that hold for every run (text); ``differences``: for a
  like-for-like row, each remaining difference from the official code (a list
  of text; the table renders it).
- ``flagfile`` (beside the JSON) and ``flags``: the sweep's command line.
- ``suite``: ``"cpu"`` (fits a 2-core CPU) or ``"gpu"``; ``cost``: the expected
  member-steps and time, written down once measured.
- ``claim``: whose claim the row judges: ``"paper"`` (a paper's) or
  ``"recipe"`` (ours: a recipe of this library, such as the quickstart). The
  headline counts paper claims only; recipes get a table of their own.
- ``smoke``: flags appended for the smoke suite (a toy size that checks the
  pipeline, not the science; bands are not judged there).
- ``analysis``: commands run after the sweep, each a list of arguments whose
  first is a script in `experiments/`; ``{workdir}`` is replaced.
  ``smoke_analysis`` replaces them in the smoke suite (a shorter window, say);
  a JSON metric whose file the smoke analysis does not write shows n/a there.
- ``metrics``: each ``{"name", "kind", "where", "band", "paper", ...}``:

  ======================  ====================================================
  kind                    value over the members matching ``where``
  ======================  ====================================================
  t_mem, t_gen, delay     median over members, one that never got there
                          counting as +inf (`analysis.median_time`); the run's
                          own thresholds
  reached                 fraction of members with a finite t_gen
  final_<metric>          median of the last evaluation (final_val_acc, ...)
  json                    ``file`` (in the run directory) at ``key`` (dotted;
                          ``*`` maps over a list), reduced by ``reduce``
                          (median / sum / min / max) when it is a list
  npz                     ``file``'s array ``key`` (per member first, as
                          `analysis/measures.npz`'s [E, ...] arrays), each
                          member's row reduced to one number by ``over``
                          (below), optionally divided by that member's
                          summary column ``relative_to`` (t_gen, say; or
                          ``first_below:X:COLUMN``: the first evaluation
                          step where the run's history COLUMN, val_loss
                          say, falls below X), then
                          ``reduce`` over the members
  ======================  ====================================================

  ``over`` (npz) reduces a member's last axis (saved steps, frequencies or
  components): ``last``, ``first``, ``max``, ``min``, ``count`` (non-zero
  entries), ``sum:K`` (of the first K), ``last_over_min`` (the last value over
  the lowest: > 1 when it rose again), ``last_over_max`` (< 1 when it fell
  from a peak), ``last_over_first``, ``step_of_max`` / ``step_of_min`` (the
  file's ``step`` where the maximum / minimum is), ``first_below:X`` /
  ``first_above:X`` (the ``step`` of the first saved step past X; +inf if
  never), ``at:COLUMN`` (the value at the first saved step at or after
  the member's summary COLUMN, NaN if that is never) and
  ``spearman:COLUMN`` (the Spearman rank correlation, over the saved steps,
  with the member's history COLUMN, an evaluation array such as
  ``val_loss``, read at the first evaluation at or after each saved step:
  +1 when the measure rises and falls with it, as Gu et al.'s "MED tracks
  the test loss"; NaN with fewer than 3 pairs). ``after: COLUMN``
  first keeps only the saved steps at or after the member's COLUMN (t_gen,
  say; none for a member that never got there, so NaN). Without ``over``
  the array is [E]. The step axis is the file's ``step`` array, or for the
  run's own ``history.npz`` its ``eval_step`` (evaluation arrays such as
  ``param_norm``) or ``record_step`` (per-step arrays), whichever matches.

  ``band`` is ``[low, high]`` (either may be null: unbounded, not both;
  finite, low <= high): a metric inside its band matches. A metric without a
  band is reported, not judged. A band must be able to fail: one that covers
  every value of its kind (`DOMAINS`: accuracies and ``reached`` [0, 1],
  times [0, +inf] with +inf for never) is refused; a bound the setup implies
  by construction is stated in ``paper``, not banded. ``band_source``
  (required with a band) says where the band comes from: ``paper: <paper,
  figure/table/section>: <its number>``, and how it was read, or ``ours:
  <why>``; it may be reworded without a re-run.

A run is judged MATCH when every banded metric is inside its band, else MISS.
results.json stores with each measured row the spec it was judged under
(`Reproduction.snapshot`: claim, paper text, metrics and bands, the resolved
flags, flagfile included). When the spec has changed since, or the run
stopped before its last step (a device's time limit), the table shows the row
as STALE (re-run it), never re-judged under the new spec (`staleness`).

The package sits above the library's layers (it reads run directories and the
analysis files; nothing in `grokjax`'s core imports it) and holds no
training: `spec` (the JSON), `measure` (the metric language over a run
directory, STALE), `their_code` (the peers' records and "agrees with their
code"), `results` (results.json and the generated tables) and `runner`
(a row's command checked, run as child processes, measured).
`experiments/reproduce.py` is its command line.
"""

from grokjax.reproductions.measure import (
    device_name, history_from_metrics, measure, metric_outcome, metric_value,
    run_clock, run_progress, staleness)
from grokjax.reproductions.results import (
    check_results, headline, merge, read_results, results_markdown, table,
    tables, update_readme, update_results, verdict)
from grokjax.reproductions.spec import (
    CLAIMS, DOMAINS, HEADLINE_BEGIN, HEADLINE_END, README_BEGIN, README_END, SUITES, Metric, Reproduction,
    load, load_all)
from grokjax.reproductions.their_code import agreement, their_cell, their_code

__all__ = ["Metric", "Reproduction", "SUITES", "CLAIMS", "DOMAINS",
           "README_BEGIN", "README_END", "HEADLINE_BEGIN", "HEADLINE_END", "load", "load_all",
           "history_from_metrics", "run_progress", "run_clock",
           "metric_value", "metric_outcome", "measure", "staleness", "device_name",
           "their_code", "their_cell", "agreement",
           "merge", "update_results", "read_results", "check_results",
           "table", "tables", "headline", "verdict", "results_markdown",
           "update_readme"]
