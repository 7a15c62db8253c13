"""Figure 3 at equal fit: the frontier interpolation rule and the C4-C6 verdicts on hand-built
frontiers whose answers are known (linear log-variance between two grid points, a level outside
the grid, a crossing of the two methods' frontiers)."""
import math

import numpy as np
import pytest
import xarray as xr

from natgrad.study.claims import verdict
from natgrad.study.claims.rows import DECISIVE
from natgrad.study.order.claims import order_claims
from natgrad.study.order import frontier, scaling


def test_interpolation_is_linear_in_log_variance_between_the_bracketing_points():
    # errors 40 % and 30 % at log variances -6 and -4: at 37.5 % a quarter of the way, -5.5
    assert frontier.interpolate([40.0, 30.0], [-6.0, -4.0], 37.5) == pytest.approx(-5.5)
    # the grid's own points are returned exactly, in either order of the errors
    assert frontier.interpolate([30.0, 40.0, 50.0], [-1.0, -2.0, -3.0], 40.0) == pytest.approx(-2.0)
    assert frontier.interpolate([50.0, 40.0, 30.0], [-3.0, -2.0, -1.0], 35.0) == pytest.approx(-1.5)


def test_a_level_outside_the_grid_is_never_extrapolated():
    assert math.isnan(frontier.interpolate([40.0, 30.0], [-6.0, -4.0], 29.9))
    assert math.isnan(frontier.interpolate([40.0, 30.0], [-6.0, -4.0], 40.1))
    # a missing (non-finite) point breaks the bracket: no interpolation across it
    assert math.isnan(frontier.interpolate([40.0, np.nan, 30.0], [-6.0, -5.0, -4.0], 35.0))


def test_a_non_monotone_frontier_uses_the_lowest_rate_bracket():
    # errors 40 → 30 → 36 (the largest rate overshoots): 35 % is bracketed by both pairs; the rule
    # takes the first pair in rate order (40 → 30), a fifth of the way: -6 + 0.5 * 2 = -5
    assert frontier.interpolate([40.0, 30.0, 36.0], [-6.0, -4.0, 0.0], 35.0) == pytest.approx(-5.0)


def test_matched_levels_count_only_levels_bracketed_for_every_seed():
    # NG (2 rates × 2 seeds × 1 segment): errors 40 → 30 for seed 0, 40 → 34 for seed 1
    ng_errors = np.array([[[40.0], [40.0]], [[30.0], [34.0]]])
    ng_log_var = np.array([[[-6.0], [-6.0]], [[-4.0], [-4.0]]])
    # MSGD's two grid points: 35 % (bracketed for both seeds) and 32 % (not for seed 1)
    msgd_errors = np.array([[[35.0], [35.0]], [[32.0], [32.0]]])
    msgd_log_var = np.array([[[-3.0], [-3.5]], [[-2.0], [-2.0]]])
    levels = frontier.matched_levels(ng_errors, ng_log_var, msgd_errors, msgd_log_var, [0],
                                     [0.1, 0.2])
    assert [(lv.segment, lv.reference_rate) for lv in levels] == [(0, 0.1), (0, 0.2)]
    first, second = levels
    assert first.bracketed and not second.bracketed
    # seed 0: halfway from 40 to 30 → -5; seed 1: 5/6 of the way from 40 to 34 → -6 + 5/6 * 2
    np.testing.assert_allclose(first.log_variance, [-5.0, -6.0 + 5.0 / 6.0 * 2.0])
    np.testing.assert_allclose(first.log_difference, [-3.0 + 5.0, -3.5 + 6.0 - 5.0 / 3.0])
    assert math.isnan(second.log_variance[1])


def frontier_store(msgd_rates, ng_rates, msgd, ng, segments):
    """An aggregated order store on the frontier: msgd/ng are dicts {rate: (errors, variances)},
    each an array (seed, segment)."""
    rates = sorted(set(msgd_rates) | set(ng_rates))
    n_seeds = next(iter(msgd.values()))[0].shape[0]
    var = np.full((2, len(rates), n_seeds, segments), np.nan)
    err = np.full_like(var, np.nan)
    for m, points in enumerate((msgd, ng)):
        for rate, (e, v) in points.items():
            err[m, rates.index(rate)], var[m, rates.index(rate)] = e, v
    dims = ("optimizer", "learning_rate", "seed", "segment")
    ds = xr.Dataset({"variance_per_seed": (dims, var), "final_validation_error": (dims, err)},
                    coords={"optimizer": ["msgd", "ng"], "learning_rate": rates,
                            "seed": np.arange(n_seeds), "segment": np.arange(segments)})
    return ds.assign_coords(kind=("optimizer", ["msgd", "ng_same_batch"]),
                            role=("optimizer", ["first_order", "natural_gradient"]),
                            online_samples=1000)


RNG = np.random.default_rng(0)
SEEDS, SEGMENTS = 5, 3


def noisy(shape, scale=0.02):
    return np.exp(scale * RNG.normal(size=shape))


def two_frontiers(ng_factor):
    """MSGD at rates 0.1/0.2 (errors 36/33 %), NG at 0.2/0.6 (errors 40/30 %, so both MSGD levels
    are bracketed); variances fall by segment (4:2:1 times the base) and grow with the error's
    fall; NG's variance at equal error is `ng_factor` × MSGD's."""
    decay = np.array([4.0, 2.0, 1.0])
    base = lambda error: 1e-3 * np.exp((40.0 - error) / 10.0)  # noqa: E731 (variance along the fit)
    shape = (SEEDS, SEGMENTS)
    msgd = {r: (np.full(shape, e), base(e) * decay * noisy(shape))
            for r, e in ((0.1, 36.0), (0.2, 33.0))}
    ng = {r: (np.full(shape, e), ng_factor * base(e) * decay * noisy(shape))
          for r, e in ((0.2, 40.0), (0.6, 30.0))}
    return frontier_store([0.1, 0.2], [0.2, 0.6], msgd, ng, SEGMENTS)


def test_c4_holds_when_ng_is_lower_at_every_matched_level():
    rows = {r["claim_id"]: r for r in order_claims(two_frontiers(0.25))}
    assert rows["C4"]["verdict"] == verdict.HOLDS
    assert "6 of 6 matched levels" in rows["C4"]["our_value"]
    assert rows["C5"]["verdict"] == verdict.HOLDS           # first segment 4× the last
    assert rows["C6"]["verdict"] == verdict.HOLDS           # NG first ≈ MSGD last (0.25 × 4 = 1)
    assert rows["C6"]["ci_low"] < 1 < rows["C6"]["ci_high"]


def test_c4_fails_when_ng_is_higher_at_a_matched_level():
    rows = {r["claim_id"]: r for r in order_claims(two_frontiers(2.0))}
    assert rows["C4"]["verdict"] == verdict.FAILS
    assert rows["C6"]["verdict"] == verdict.FAILS           # ratio 8


def test_crossing_frontiers_are_decided_level_by_level():
    # NG's frontier crosses MSGD's: lower at MSGD's 36 % level, higher at its 33 % level. With
    # errors 40 / 30 % at log variances a / b, NG at 36 % is a + 0.4 (b - a), at 33 %: a + 0.7 (b - a)
    shape = (SEEDS, SEGMENTS)
    msgd = {0.1: (np.full(shape, 36.0), np.full(shape, 1.0) * noisy(shape)),
            0.2: (np.full(shape, 33.0), np.full(shape, 1.0) * noisy(shape))}
    a, b = math.log(0.1), math.log(8.0)  # log NG: 36 % → -2.30 + 0.4 · 4.38 = -0.55; 33 % → 0.76
    ng = {0.2: (np.full(shape, 40.0), np.exp(a) * noisy(shape)),
          0.6: (np.full(shape, 30.0), np.exp(b) * noisy(shape))}
    levels = frontier.store_levels(frontier_store([0.1, 0.2], [0.2, 0.6], msgd, ng, SEGMENTS),
                                   "ng", "msgd")
    at_36 = np.mean([lv.log_difference.mean() for lv in levels if lv.reference_rate == 0.1])
    at_33 = np.mean([lv.log_difference.mean() for lv in levels if lv.reference_rate == 0.2])
    assert at_36 == pytest.approx(-(a + 0.4 * (b - a)), abs=0.05) and at_36 > 0
    assert at_33 == pytest.approx(-(a + 0.7 * (b - a)), abs=0.05) and at_33 < 0
    rows = {r["claim_id"]: r for r in order_claims(
        frontier_store([0.1, 0.2], [0.2, 0.6], msgd, ng, SEGMENTS))}
    assert rows["C4"]["verdict"] == verdict.FAILS           # higher at the 33 % level


def test_no_bracketed_level_leaves_the_claims_inconclusive_and_says_so():
    shape = (SEEDS, SEGMENTS)
    msgd = {0.1: (np.full(shape, 36.0), noisy(shape))}
    ng = {0.2: (np.full(shape, 30.0), noisy(shape)), 0.6: (np.full(shape, 25.0), noisy(shape))}
    rows = {r["claim_id"]: r for r in order_claims(
        frontier_store([0.1], [0.2, 0.6], msgd, ng, SEGMENTS))}
    assert {rows[c]["verdict"] for c in ("C4", "C5", "C6")} == {verdict.INCONCLUSIVE}
    assert "0 of 3 matched levels" in rows["C4"]["our_value"]
    assert "segment 1 at MSGD lr 0.1" in rows["C4"]["our_value"]  # segments numbered from 1


def test_scaling_table_gives_the_matched_ratio_and_its_interval():
    df = scaling.table([two_frontiers(0.25)])
    assert list(df.columns) == list(scaling.COLUMNS)
    by_rate = df[df["level_kind"] == "msgd_rate"]
    assert len(by_rate) == 6 and by_rate["bracketed"].all() and (by_rate["n"] == SEEDS).all()
    assert set(by_rate["segment"]) == {1, 2, 3}
    np.testing.assert_allclose(df["ratio"], 0.25, rtol=0.05)
    assert (df["ci_low"] < df["ratio"]).all() and (df["ratio"] < df["ci_high"]).all()
    assert (df["stream_length"] == 1000).all()
    # NG's bracketing pair, 40 % and 30 %, is 10 points apart: every level is flagged
    assert (by_rate["bracket_gap"] == 10.0).all() and by_rate["wide_bracket"].all()


def shifted_frontiers(shift, length, ng_factor=0.5):
    """`two_frontiers` with every error lowered by `shift` points (a longer stream fits better) and
    the variance the same function of the error, so the ratio at equal error is `ng_factor`."""
    base = lambda error: 1e-3 * np.exp((40.0 - error) / 10.0)  # noqa: E731
    shape = (SEEDS, SEGMENTS)
    msgd = {r: (np.full(shape, e - shift), base(e - shift) * noisy(shape))
            for r, e in ((0.1, 36.0), (0.2, 33.0))}
    ng = {r: (np.full(shape, e - shift), ng_factor * base(e - shift) * noisy(shape))
          for r, e in ((0.2, 40.0), (0.6, 30.0))}
    return frontier_store([0.1, 0.2], [0.2, 0.6], msgd, ng, SEGMENTS).assign_coords(
        online_samples=length)


def test_common_error_levels_are_the_whole_percents_every_length_spans():
    # MSGD spans 33-36 % at length 1000 and 31-34 % at 2000; NG 30-40 and 28-38: common 33-34 %
    short, long = shifted_frontiers(0.0, 1000), shifted_frontiers(2.0, 2000)
    assert frontier.common_errors([short, long]) == [33.0, 34.0]
    assert frontier.common_errors([short, shifted_frontiers(5.0, 4000)]) == []  # no overlap
    # MSGD 32.5-35.5 % and 29.9-32.9 %: the overlap holds no whole percent, so its midpoint
    narrow = [shifted_frontiers(0.5, 1000), shifted_frontiers(3.1, 2000)]
    assert frontier.common_errors(narrow) == [pytest.approx(32.7)]
    df = scaling.table([short, long])
    common = df[df["level_kind"] == "common_error"]
    assert len(common) == 2 * 2 * SEGMENTS and common["bracketed"].all()
    assert set(common["matched_error"]) == {33.0, 34.0} and common["matched_level"].isna().all()
    # both methods interpolated at the same error: the ratio is NG's factor at both lengths
    np.testing.assert_allclose(common["ratio"], 0.5, rtol=0.05)
    # the gap is the wider pair's: NG's 10 points (MSGD's is 3)
    assert (common["bracket_gap"] == 10.0).all()
    # MSGD-rate rows first, then the common levels, each by level, segment and length
    assert list(df["level_kind"]) == ["msgd_rate"] * 12 + ["common_error"] * 12
    assert list(common["stream_length"][:2]) == [1000, 2000]


def test_error_levels_interpolate_both_methods_by_the_frontier_rule():
    # at 34 %: MSGD a third of the way from 36 % (log var -1) to 33 % (log var -4): -1 - 2/3 · 3;
    # NG 3/5 of the way from 40 % (log var 0) to 30 % (log var 5): 3
    shape = (2, 1)
    msgd = {0.1: (np.full(shape, 36.0), np.full(shape, math.exp(-1.0))),
            0.2: (np.full(shape, 33.0), np.full(shape, math.exp(-4.0)))}
    ng = {0.2: (np.full(shape, 40.0), np.full(shape, 1.0)),
          0.6: (np.full(shape, 30.0), np.full(shape, math.exp(5.0)))}
    (level,) = frontier.error_levels(frontier_store([0.1, 0.2], [0.2, 0.6], msgd, ng, 1), "ng",
                                     "msgd", [34.0])
    np.testing.assert_allclose(level.reference_log_variance, -1.0 - 2.0, atol=1e-12)
    np.testing.assert_allclose(level.log_variance, 3.0, atol=1e-12)
    assert level.bracketed and level.widest_gap == 10.0


def test_the_bracketing_gap_is_the_distance_between_the_pair_that_brackets():
    errors, log_var = [44.0, 40.0, 39.0, 33.0], [0.0, 1.0, 2.0, 3.0]
    assert frontier.bracket(errors, log_var, 39.5) == 1
    assert frontier.bracket_gap(errors, log_var, 39.5) == pytest.approx(1.0)
    assert frontier.bracket_gap(errors, log_var, 35.0) == pytest.approx(6.0)
    assert math.isnan(frontier.bracket_gap(errors, log_var, 50.0))


def test_the_smooth_reading_bends_with_a_convex_frontier_and_is_the_chord_between_two_points():
    # error linear in log rate (40, 30, 20 at u = 0, 1, 2), log variance 0, 1, 4 (convex). PCHIP's
    # slopes of the log variance (Fritsch-Butland): 0 at u = 0 (the three-point end formula
    # (3·1 − 3)/2), 1.5 at u = 1 (weighted harmonic mean of 1 and 3). At 35 %, u = 0.5, where the
    # Hermite cubic gives 0.5·1 − 0.125·1.5 = 0.3125, below the chord's 0.5
    rates = np.exp([0.0, 1.0, 2.0])
    errors, log_var = [40.0, 30.0, 20.0], [0.0, 1.0, 4.0]
    assert frontier.interpolate(errors, log_var, 35.0) == pytest.approx(0.5)
    assert frontier.smooth_interpolate(rates, errors, log_var, 35.0) == pytest.approx(0.3125,
                                                                                      abs=1e-9)
    assert frontier.smooth_interpolate(rates, errors, log_var, 30.0) == pytest.approx(1.0)
    assert math.isnan(frontier.smooth_interpolate(rates, errors, log_var, 41.0))
    # two grid points: the chord itself
    assert frontier.smooth_interpolate(rates[:2], errors[:2], log_var[:2], 37.5) == \
        pytest.approx(0.25)


def convex_frontiers(msgd_log_var):
    """MSGD at one rate (error 35 %, log variance `msgd_log_var`), NG on the convex frontier of
    the test above (35 %: chord 0.5, smooth 0.3125), 5 seeds, 3 segments."""
    shape = (SEEDS, SEGMENTS)
    msgd = {0.1: (np.full(shape, 35.0), math.exp(msgd_log_var) * noisy(shape, 0.01))}
    ng = {float(r): (np.full(shape, e), math.exp(v) * noisy(shape, 0.01))
          for r, e, v in zip(np.exp([0.0, 1.0, 2.0]), (40.0, 30.0, 20.0), (0.0, 1.0, 4.0))}
    return frontier_store([0.1], list(ng), msgd, ng, SEGMENTS)


def test_a_verdict_the_sensitivity_row_does_not_give_is_inconclusive():
    # MSGD at log variance 0.4: the chord puts NG above it (0.5, C4 fails), the smooth reading
    # below it (0.3125, C4-S holds); the claim does not survive and says so
    rows = {r["claim_id"]: r for r in order_claims(convex_frontiers(0.4))}
    assert rows["C4-S"]["verdict"] == verdict.HOLDS
    assert rows["C4"]["verdict"] == verdict.INCONCLUSIVE
    assert "would be fails, but C4-S gives holds" in rows["C4"]["test"]
    # both readings put NG above MSGD (log variance 0.2): C4 fails, and shows the decisive level
    rows = {r["claim_id"]: r for r in order_claims(convex_frontiers(0.2))}
    assert rows["C4"]["verdict"] == rows["C4-S"]["verdict"] == verdict.FAILS
    assert rows["C4"]["shown"] == DECISIVE and rows["C4"]["ci_high"] < 0
    # NG's bracketing pair is 10 points apart at every level: the rows say so
    assert all("more than 2 points apart" in rows[c]["our_value"] for c in ("C4", "C5", "C6"))
    assert [r["claim_id"] for r in order_claims(convex_frontiers(0.2))] == [
        "C4", "C4-S", "C5", "C5-S", "C6", "C6-S"]
