"""Grokking times, Notsawo's t1..t4 and Liu's phases on hand-made histories."""

import numpy as np

from grokjax import analysis

STEPS = np.array([0, 100, 200, 500, 1000, 2000, 5000])
NAN = np.nan
HISTORY = {
    "eval_step": STEPS,
    "train_acc": np.array([
        [0.01, 0.5, 1.0, 1.0, 1.0, 1.0, 1.0],    # memorizes at 200, groks at 5000
        [0.01, 0.995, 1.0, 1.0, 1.0, 1.0, 1.0],  # learns both together
        [0.01, 0.3, 0.95, 1.0, 1.0, 1.0, 1.0],   # memorizes, never generalizes
        [0.01, 0.01, 0.02, 0.03, 0.02, 0.03, 0.04],  # confusion
        [0.01, 0.5, 1.0, NAN, NAN, NAN, NAN],    # diverged after 200
    ]),
    "val_acc": np.array([
        [0.0, 0.01, 0.02, 0.02, 0.1, 0.5, 0.995],
        [0.0, 0.3, 0.99, 1.0, 1.0, 1.0, 1.0],
        [0.0, 0.01, 0.02, 0.03, 0.05, 0.1, 0.2],
        [0.0, 0.01, 0.02, 0.02, 0.02, 0.02, 0.02],
        [0.0, 0.01, 0.02, NAN, NAN, NAN, NAN],
    ]),
}


def test_first_step_reaching_and_grokking_times():
  t = analysis.grokking_times(HISTORY, 0.99, 0.99)
  np.testing.assert_array_equal(t["t_mem"], [200, 100, 500, NAN, 200])
  np.testing.assert_array_equal(t["t_gen"], [5000, 200, NAN, NAN, NAN])
  np.testing.assert_array_equal(t["delay"], [4800, 100, NAN, NAN, NAN])
  # Grokfast's 95% threshold.
  t95 = analysis.grokking_times(HISTORY, 0.99, 0.95)
  assert t95["t_gen"][0] == 5000 and t95["t_gen"][1] == 200


def test_notsawo_times_are_strict_above_low_and_at_least_high():
  t = analysis.notsawo_times(HISTORY, low=0.01, high=0.99)
  np.testing.assert_array_equal(t["t1"], [100, 100, 100, 200, 100])
  np.testing.assert_array_equal(t["t2"], [200, 100, 500, NAN, 200])
  np.testing.assert_array_equal(t["t3"], [200, 100, 200, 200, 200])
  np.testing.assert_array_equal(t["t4"], [5000, 200, NAN, NAN, NAN])


def test_notsawo_times_default_to_the_papers_zero_and_one_hundred_percent():
  t = analysis.notsawo_times(HISTORY)
  # t1, t3: first accuracy > 0 (every member is at 0.01 on the train rows at
  # step 0; validation starts at exactly 0); t2, t4: exactly 100%.
  np.testing.assert_array_equal(t["t1"], [0, 0, 0, 0, 0])
  np.testing.assert_array_equal(t["t2"], [200, 200, 500, NAN, 200])
  np.testing.assert_array_equal(t["t3"], [100, 100, 100, 100, 100])
  np.testing.assert_array_equal(t["t4"], [NAN, 500, NAN, NAN, NAN])


def test_liu_phases():
  phases = analysis.phases(HISTORY, threshold=0.9, gap=1000)
  assert phases.tolist() == ["grokking", "comprehension", "memorization",
                             "confusion", "memorization"]
  # With a gap wider than member 0's delay, it comprehends instead.
  assert analysis.phases(HISTORY, 0.9, gap=10000)[0] == "comprehension"


def test_summary_rows():
  members = [{"seed": i, "train_fraction": 0.5} for i in range(5)]
  diverged = np.array([-1, -1, -1, -1, 300])
  rows = analysis.summarize(HISTORY, members, diverged, phase_gap=1000)
  assert [r["phase"] for r in rows][:2] == ["grokking", "comprehension"]
  assert rows[0]["delay"] == 4800 and rows[0]["final_val_acc"] == 0.995
  assert rows[4]["diverged"] and rows[4]["diverged_step"] == 300
  assert rows[4]["final_train_acc"] == 1.0  # last finite value
  assert not rows[0]["diverged"] and np.isnan(rows[0]["diverged_step"])


def test_median_time_counts_never_as_infinite():
  assert analysis.median_time(np.array([375, 575, NAN, 625])) == 600
  assert analysis.median_time(np.array([100, NAN, NAN])) == np.inf
  assert analysis.median_time(np.array([300.0])) == 300


def test_group_medians_over_seeds():
  summary = [{"seed": s, "train_fraction": f, "t_mem": 75.0, "t_gen": g,
              "delay": g - 75.0}
             for s, (f, g) in enumerate([(0.6, 700.0), (0.6, NAN), (0.6, 1850.0),
                                         (0.7, 375.0), (0.7, 575.0)])]
  rows = analysis.group_medians(summary, ["train_fraction"])
  assert rows[0] == {"train_fraction": 0.6, "members": 3, "generalized": 2,
                     "median_t_mem": 75.0, "median_t_gen": 1850.0,
                     "median_delay": 1775.0}
  assert rows[1]["median_t_gen"] == 475.0 and rows[1]["generalized"] == 2


def test_power_law_fit_recovers_gamma_and_offset_with_seed_intervals():
  # t = 50 r^-2.5 + 100 with 5% log-normal noise, 4 seeds x 6 fractions.
  rng = np.random.default_rng(0)
  r = np.tile([0.3, 0.4, 0.5, 0.6, 0.7, 0.8], 4)
  seeds = np.repeat(np.arange(4), 6)
  t = (50 * r ** -2.5 + 100) * np.exp(rng.normal(0, 0.05, r.size))
  t[0] = np.nan  # a member that never generalized
  fit = analysis.power_law_fit(r, t, seeds, num_samples=200)
  assert fit["points"] == 23 and fit["dropped"] == 1 and fit["groups"] == 4
  assert abs(fit["gamma"] - 2.5) < 0.2
  assert fit["gamma_lo"] < 2.5 < fit["gamma_hi"]
  assert abs(fit["b"] - 100) < 15 and fit["rmse_log"] < 0.08
  # A pure power law: the offset goes to ~0 and gamma is the log-log slope.
  pure = analysis.power_law_fit(r[1:], 7 * r[1:] ** -1.2, num_samples=0)
  assert abs(pure["gamma"] - 1.2) < 0.02 and pure["b"] < 0.1


def test_time_statistics_bootstrap_the_median_over_seeds():
  rows = [{"lr": 1.0, "t_mem": 10.0, "t_gen": t, "delay": t - 10}
          for t in (100.0, 200.0, 300.0)]
  rows += [{"lr": 2.0, "t_mem": 10.0, "t_gen": t, "delay": t - 10}
           for t in (50.0, np.nan, np.nan)]
  stats = {r["lr"]: r for r in analysis.time_statistics(rows, ["lr"])}
  one, two = stats[1.0], stats[2.0]
  assert one["median_t_gen"] == 200 and one["generalized"] == 3
  # Resampled medians of (100, 200, 300) range over those values; the 95%
  # interval spans them (each extreme has probability 7/27 > 2.5%).
  assert one["t_gen_lo"] == 100 and one["t_gen_hi"] == 300
  assert one["t_mem_lo"] == one["t_mem_hi"] == 10
  # Two of three never generalized: the median is never (inf), and so is
  # the upper end; the lower end is 50 (P(at least 2 of 3 draws are 50) = 7/27).
  assert two["median_t_gen"] == np.inf and two["t_gen_hi"] == np.inf
  assert two["t_gen_lo"] == 50


def test_write_plots_draws_times_for_one_swept_axis_and_a_grid_for_two(
    tmp_path):
  from grokjax.io import plots  # pylint: disable=import-outside-toplevel
  history = {k: v[:3] for k, v in HISTORY.items() if k != "eval_step"}
  history["eval_step"] = STEPS
  history["train_loss"] = history["val_loss"] = 1 - history["train_acc"]
  summary = [{"seed": s, "train_fraction": r, "weight_decay": w,
              "t_mem": 200.0, "t_gen": NAN if s == 2 else 5000.0,
              "final_val_acc": 0.2 if s == 2 else 1.0}
             for s, r, w in ((0, 0.3, 1.0), (1, 0.5, 1.0), (2, 0.5, 0.1))]
  one = plots.write_plots(str(tmp_path / "one"), history, summary,
                          ["seed", "train_fraction"])
  two = plots.write_plots(str(tmp_path / "two"), history, summary,
                          ["seed", "train_fraction", "weight_decay"])
  assert [p.rsplit("/", 1)[1] for p in one] == ["curves.png", "times.png"]
  assert [p.rsplit("/", 1)[1] for p in two] == ["curves.png", "grid.png"]
  for path in one + two:
    assert open(path, "rb").read(8) == b"\x89PNG\r\n\x1a\n"
