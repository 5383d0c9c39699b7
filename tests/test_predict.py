"""Early-prediction statistics (grokjax.analysis.predict) against hand-computed values."""

import numpy as np
import pytest

import grokjax as gj
from grokjax.analysis import predict, prediction


def test_spearman_against_hand_ranks():
  assert predict.spearman([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1)
  assert predict.spearman([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1)
  # Ranks (1, 2, 3, 4, 5) vs (2, 1, 4, 3, 5): 1 - 6 * sum d^2 / (n(n^2-1))
  # = 1 - 6 * 4 / 120 = 0.8 (no ties).
  assert predict.spearman([1, 2, 3, 4, 5], [2, 1, 4, 3, 5]) == pytest.approx(
      0.8)
  # Ties get average ranks; NaNs are dropped.
  assert predict.spearman([1, 1, 2, np.nan], [1, 1, 2, 5]) == pytest.approx(1)
  assert np.isnan(predict.spearman([1, 2], [1, 2]))


def test_roc_auc_counts_pairs():
  assert predict.roc_auc([0.1, 0.2, 0.8, 0.9], [0, 0, 1, 1]) == 1.0
  assert predict.roc_auc([0.9, 0.8, 0.2, 0.1], [0, 0, 1, 1]) == 0.0
  # Pairs (pos, neg): (0.5 vs 0.5) tie = 1/2, (0.5 vs 0.1) = 1,
  # (0.3 vs 0.5) = 0, (0.3 vs 0.1) = 1: 2.5 / 4.
  assert predict.roc_auc([0.5, 0.3, 0.5, 0.1], [1, 1, 0, 0]) == 0.625
  assert np.isnan(predict.roc_auc([0.1, 0.2], [1, 1]))


def test_logistic_cv_separates_separable_data_and_holds_out_groups():
  rng = np.random.default_rng(0)
  n = 60
  groups = np.repeat(np.arange(4), n // 4)
  y = rng.random(n) < 0.5
  x = np.stack([np.where(y, 2.0, -2.0) + rng.normal(0, 0.5, n),
                rng.normal(0, 1, n)], axis=1)
  out = predict.logistic_cv(x, y, groups)
  assert out["folds"] == 4 and out["rows"] == n and out["dropped"] == 0
  assert out["accuracy"] == 1.0 and out["auc"] == 1.0
  # Pure noise features: no better than chance on held-out groups.
  noise = predict.logistic_cv(rng.normal(0, 1, (n, 2)), y, groups)
  assert noise["auc"] < 0.75
  # A non-finite feature row is left out and counted.
  x[3, 0] = np.nan
  assert predict.logistic_cv(x, y, groups)["dropped"] == 1


def test_the_high_pass_variant_sees_fast_oscillations():
  t = np.arange(400.0)
  smooth = np.exp(-t / 100) + 0.01
  # Oscillation at 0.2 cycles/step (omega 1.26 rad/step) in log space.
  wiggly = smooth * np.exp(0.05 * np.sin(2 * np.pi * 0.2 * t))
  feats = predict.early_features(np.stack([smooth, wiggly,
                                           np.full(400, np.nan)]))
  assert feats["highpass_activity"][1] > 100 * feats["highpass_activity"][0]
  assert feats["highpass_mobility"][1] == pytest.approx(2 * np.pi * 0.2,
                                                        rel=0.05)
  assert feats["highpass_band_fast"][1] > 0.9  # 1.26 rad/step is above pi/4
  for name in predict.FEATURES:                # a diverged member
    assert np.isnan(feats[name][2]), name
  # Variance of 0.05 sin: 0.05^2 / 2.
  assert feats["highpass_activity"][1] == pytest.approx(0.05 ** 2 / 2,
                                                        rel=0.1)


def test_the_papers_energy_is_that_of_the_raw_loss_and_keeps_slow_oscillations():
  """Notsawo et al. 2023: m0 = integral |F(L)(w)|^2 dw = sum_t L(t)^2 dt (Parseval).

  A slow oscillation (period 200 steps, 2 cycles in the window) changes the
  paper's energy by its own energy; the high-pass variant (25-sample moving
  average removed from log(loss)) all but removes it: the reason the
  variant is not the paper's feature.
  """
  t = np.arange(400.0)
  smooth = np.exp(-t / 100) + 0.05
  slow = smooth + 0.05 * np.sin(2 * np.pi * t / 200)
  fast = smooth + 0.05 * np.sin(2 * np.pi * t / 25 + 0.3)
  loss = np.stack([smooth, slow, fast])
  feats = predict.early_features(loss)
  # Expected, from the formula: dt * sum_t L(t)^2, and with dt = 4 (every
  # 4th step recorded) the same integral sampled 4 steps apart.
  np.testing.assert_allclose(feats["energy"], (loss ** 2).sum(-1), rtol=1e-5)
  sub = predict.early_features(loss[:, ::4], dt=4.0)
  np.testing.assert_allclose(sub["energy"], 4 * (loss[:, ::4] ** 2).sum(-1),
                             rtol=1e-5)
  np.testing.assert_allclose(feats["log_energy"],
                             np.log10((loss ** 2).sum(-1)), rtol=1e-6)
  # The slow oscillation adds its energy: sum (0.05 sin)^2 = 400 * 0.05^2 / 2
  # = 0.5, plus the cross term 2 * sum smooth * 0.05 sin, computed here.
  added = (0.05 * np.sin(2 * np.pi * t / 200)) ** 2 + 2 * smooth * 0.05 * np.sin(
      2 * np.pi * t / 200)
  assert feats["energy"][1] - feats["energy"][0] == pytest.approx(
      added.sum(), rel=1e-3)
  # The trend's baseline: 1 - L(end) / L(0), from the formula.
  np.testing.assert_allclose(feats["relative_drop"],
                             1 - loss[:, -1] / loss[:, 0], rtol=1e-5)
  assert "mobility" not in feats and "complexity" not in feats
  # The variant: the slow oscillation is below the high-pass's cut, the fast
  # one above; equal amplitudes, measured activities 3.4e-5 and 5.1e-2 (a
  # factor 1470), where the paper's energy grows by 3.3 for the slow one.
  hp = feats["highpass_activity"]
  assert hp[2] > 100 * hp[1]


def test_a_window_past_the_recorded_steps_is_refused():
  history = {"record_step": np.arange(300),
             "step_train_loss": np.ones((2, 300), np.float32)}
  with pytest.raises(gj.ConfigError, match="--window=100000: the run "
                     "recorded steps up to 299; use --window <= 300"):
    prediction.early_loss(history, 100000, "run")
  loss, dt = prediction.early_loss(history, 300, "run")
  assert loss.shape == (2, 300) and dt == 1.0


def test_feature_scores_have_seed_bootstrap_intervals_around_the_point():
  """Resampling seeds (all members of a drawn seed together) gives an interval that holds the point estimate."""
  rng = np.random.default_rng(0)
  seeds = np.repeat(np.arange(6), 8)
  final = rng.uniform(0, 1, seeds.size)
  good = final + rng.normal(0, 0.1, seeds.size)     # tracks the outcome
  noise = rng.normal(0, 1, seeds.size)
  out = predict.feature_scores({"good": good, "noise": noise}, final,
                               final > 0.5, seeds, num_samples=300)
  for name in ("good", "noise"):
    s = out[name]
    assert s["spearman_lo"] <= s["spearman"] <= s["spearman_hi"]
    assert s["auc_lo"] <= s["auc"] <= s["auc_hi"]
  # The informative feature's interval excludes 0; the noise's contains it.
  assert out["good"]["spearman_lo"] > 0.8
  assert out["noise"]["spearman_lo"] < 0 < out["noise"]["spearman_hi"]
  # Without groups there are no intervals.
  assert "spearman_lo" not in predict.feature_scores({"good": good}, final,
                                                     final > 0.5)["good"]
  # One seed: resampling it gives itself, so the interval is NaN, not a
  # zero-width [point, point].
  one = predict.feature_scores({"good": good}, final, final > 0.5,
                               np.zeros(seeds.size, int))["good"]
  assert all(np.isnan(one[k]) for k in ("spearman_lo", "spearman_hi",
                                        "auc_lo", "auc_hi"))
  assert one["spearman"] == out["good"]["spearman"]


def test_grid_regions_are_contiguous_blocks_of_the_swept_grid():
  lr = np.array([1e-4, 3e-4, 1e-3, 3e-3] * 2)
  wd = np.repeat([0.1, 1.0], 4)
  regions = predict.grid_regions(np.stack([lr, wd], axis=1))
  # Low / high learning rates x low / high weight decay: 4 regions of 2.
  np.testing.assert_array_equal(regions, [0, 0, 2, 2, 1, 1, 3, 3])


def test_unseen_folds_never_train_on_the_seed_or_the_region_they_judge():
  seeds = np.repeat(np.arange(3), 8)
  regions = np.tile(np.repeat(np.arange(4), 2), 3)
  folds = predict._unseen_folds(seeds, regions)  # pylint: disable=protected-access
  assert len(folds) == 12
  tested = np.zeros(seeds.size, int)
  for test, train in folds:
    tested += test
    assert not set(seeds[test]) & set(seeds[train])
    assert not set(regions[test]) & set(regions[train])
  np.testing.assert_array_equal(tested, 1)  # every member judged once
  # A feature that carries the label is still read on unseen regions: AUC 1.
  rng = np.random.default_rng(0)
  y = rng.uniform(size=seeds.size) < 0.5
  x = np.where(y, 1.0, -1.0) + rng.normal(0, 0.1, seeds.size)
  assert predict.unseen_cv(x, y, seeds, regions)["auc"] == 1.0


def test_t_gen_regression_ranks_members_by_their_grokking_time():
  rng = np.random.default_rng(1)
  seeds = np.repeat(np.arange(3), 8)
  regions = np.tile(np.repeat(np.arange(4), 2), 3)
  x = rng.normal(size=seeds.size)
  t_gen = np.exp(6 + x + rng.normal(0, 0.1, seeds.size))
  t_gen[x > 1.2] = np.nan            # never generalized: censored
  out = predict.t_gen_regression(x, t_gen, np.nanmax(t_gen) * 2, seeds,
                                 regions)
  assert out["rows"] == seeds.size and out["censored"] == (x > 1.2).sum()
  # Monotone in x by construction; noise 0.1 in log t: measured 0.958.
  assert out["spearman"] > 0.9


def test_a_collapsed_loss_keeps_the_raw_loss_features():
  loss = np.stack([np.linspace(1.0, 0.0, 100), np.full(100, np.inf)])
  feats = predict.early_features(loss)
  # Exactly 0 at the end (softmax collapse): the paper's features of the
  # raw loss are defined, the log-loss ones are not.
  assert feats["energy"][0] == pytest.approx((loss[0] ** 2).sum(), rel=1e-5)
  assert feats["relative_drop"][0] == pytest.approx(1.0)
  assert np.isnan(feats["highpass_activity"][0])
  assert np.isnan(feats["final_log_loss"][0])
  assert all(np.isnan(v[1]) for v in feats.values())  # diverged


def test_mobility_and_complexity_see_the_oscillation_only_once_detrended():
  """Five curves with the same oscillation (period 20 steps) on decays 0.5x
  to 8x as fast: Hjorth's mobility and complexity of the detrended window
  (highpass_*) agree within 25% (measured: 1% and 3%); of the raw, decaying
  loss they follow the decay instead (computed here from the DFT: complexity
  varies 4.6x), which is why grokjax does not offer them (issue 30)."""
  t = np.arange(400.0)
  loss = np.stack([np.exp(-3 * k * t / 400) + 0.05
                   + 0.02 * np.sin(2 * np.pi * t / 20)
                   for k in (0.5, 1, 2, 4, 8)])
  feats = predict.early_features(loss)
  for name in ("highpass_mobility", "highpass_complexity"):
    v = feats[name]
    assert v.max() / v.min() < 1.25, (name, v)
  w = 2 * np.pi * np.fft.fftfreq(400)
  spec = np.abs(np.fft.fft(loss, axis=-1)) ** 2
  m0, m2, m4 = [(np.abs(w) ** n * spec).sum(-1) for n in (0, 2, 4)]
  raw_complexity = np.sqrt(m4 / m2) / np.sqrt(m2 / m0)
  assert raw_complexity.max() / raw_complexity.min() > 4
  # The relative drop ranks the curves by their decay, as the raw ones did.
  assert list(np.argsort(feats["relative_drop"])) == [0, 1, 2, 3, 4]
