"""The claims table: the interval and the verdict rule on synthetic numbers (against scipy's own
t-test), and each claim decided from hand-built results whose answer is known."""
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from scipy import stats

from natgrad.study import registry
from natgrad.study.claims import rows as schema
from natgrad.study.claims import table, verdict
from natgrad.study.equivalence.claims import equivalence_claim
from natgrad.study.overfitting import claims as overfitting_claims
from natgrad.study.toy.claims import grid_minima, toy_claim
from natgrad.study.statistics import mde, paired

ROOT = Path(__file__).resolve().parents[1]


def test_paired_interval_matches_scipys_one_sample_t_test():
    d = np.array([0.4, 1.3, -0.2, 0.9, 0.7, 1.1])
    c = paired(d)
    ref = stats.ttest_1samp(d, 0.0)
    ci = ref.confidence_interval(0.95)
    assert c.n == 6 and c.mean == pytest.approx(d.mean())
    assert (c.low, c.high) == pytest.approx((ci.low, ci.high), rel=1e-12)
    assert c.p_value == pytest.approx(ref.pvalue, rel=1e-12)


def test_paired_interval_by_hand():
    # d = 1, 2, 3: mean 2, sd 1, t(0.975, 2) = 4.302653: half-width 4.302653 / sqrt(3)
    c = paired([1.0, 2.0, 3.0, np.nan])
    assert c.n == 3
    assert (c.low, c.high) == pytest.approx((2 - 2.484138, 2 + 2.484138), abs=1e-5)


@pytest.mark.parametrize("differences, expected", [
    ([0.5, 0.6, 0.4, 0.55, 0.45], verdict.HOLDS),
    ([-0.5, -0.6, -0.4, -0.55, -0.45], verdict.FAILS),
    ([0.5, -0.6, 0.4, -0.55, 0.45], verdict.INCONCLUSIVE),
    ([0.5], verdict.INCONCLUSIVE),  # one seed: no interval
    ([], verdict.INCONCLUSIVE),
])
def test_sign_verdict_on_synthetic_differences(differences, expected):
    assert verdict.sign_verdict(paired(differences)) == expected


def test_range_verdict_and_combination():
    assert verdict.range_verdict(0.8, 1.5, 0.5, 2.0) == verdict.HOLDS
    assert verdict.range_verdict(2.5, 4.0, 0.5, 2.0) == verdict.FAILS
    assert verdict.range_verdict(0.1, 0.4, 0.5, 2.0) == verdict.FAILS
    assert verdict.range_verdict(0.3, 1.5, 0.5, 2.0) == verdict.INCONCLUSIVE
    assert verdict.range_verdict(math.nan, math.nan, 0.5, 2.0) == verdict.INCONCLUSIVE
    assert verdict.all_of([verdict.HOLDS, verdict.HOLDS]) == verdict.HOLDS
    assert verdict.all_of([verdict.HOLDS, verdict.INCONCLUSIVE]) == verdict.INCONCLUSIVE
    assert verdict.all_of([verdict.HOLDS, verdict.FAILS, verdict.INCONCLUSIVE]) == verdict.FAILS


# ---- hand-built results ----------------------------------------------------------------------

def overfitting_store(final_test_error, final_train_ce, seeds=5):
    """A combined store (optimizer, seed, point) whose last evaluation holds the given values."""
    methods = list(final_test_error)
    shape = (len(methods), seeds, 3)
    test = np.full(shape, 50.0)
    ce = np.full(shape, 1.0)
    for i, m in enumerate(methods):
        test[i, :, -1] = final_test_error[m]
        ce[i, :, -1] = final_train_ce.get(m, 0.1)
    ds = xr.Dataset({k: (("optimizer", "seed", "point"), np.full(shape, 10.0))
                     for k in ("valid_error", "valid_ce", "test_ce", "train_error", "wall_time")},
                    coords={"optimizer": methods, "seed": np.arange(seeds), "point": np.arange(3)})
    ds["test_error"] = (("optimizer", "seed", "point"), test)
    ds["train_ce"] = (("optimizer", "seed", "point"), ce)
    ds["update"] = (("optimizer", "point"), np.tile([0, 5, 10], (len(methods), 1)))
    ds["diverged"] = (("optimizer", "seed"), np.zeros(shape[:2], bool))
    return ds


RNG = np.random.default_rng(0)
NOISE = 0.05 * RNG.normal(size=5)


def test_restricted_mnist_claims_decided_by_the_paired_differences():
    ds = overfitting_store({"msgd": 5.2 + NOISE, "ng_unlabeled": 4.6 + NOISE,
                            "ng_different_batch": 4.9 + NOISE[::-1],
                            "ng_same_batch": 4.6 + NOISE[::-1], overfitting_claims.SHARED: 4.7 + NOISE},
                           {"ng_unlabeled": 0.002 + 0.0001 * NOISE, "ng_same_batch": 0.001,
                            overfitting_claims.SHARED: 0.004})
    rows = {r["claim_id"]: r for r in overfitting_claims.restricted_mnist_claims(ds)}
    assert rows["C1"]["verdict"] == verdict.HOLDS and rows["C1"]["n"] == 5
    assert rows["C1"]["ci_low"] > 0.5 and rows["C1"]["ci_high"] < 0.7
    # equal to NG-same on average: the weaker comparison makes C2 inconclusive
    assert rows["C2"]["verdict"] == verdict.INCONCLUSIVE and "ng_same_batch" in rows["C2"]["our_value"]
    # C3 reads NG-same-batch at NG-unlabeled's settings (training CE higher here), not ng_same_batch
    assert rows["C3"]["verdict"] == verdict.FAILS


def test_every_comparison_row_reads_its_interval_against_the_papers_effect():
    # C1's differences: 0.4 + d, d = NOISE - NOISE[::-1]: an interval around 0.4 that excludes 0.59
    ds = overfitting_store({"msgd": 5.0 + NOISE, "ng_unlabeled": 4.6 + NOISE[::-1],
                            "ng_different_batch": 4.6 + NOISE, "ng_same_batch": 4.9 + NOISE,
                            overfitting_claims.SHARED: 4.6 + NOISE}, {})
    rows = {r["claim_id"]: r for r in overfitting_claims.restricted_mnist_claims(ds)}
    d = NOISE - NOISE[::-1] + 0.4
    assert rows["C1"]["paper_effect"] == pytest.approx(0.59)
    # mde by hand: (t(0.975, 4) + t(0.8, 4)) · sd / √5 = (2.776445 + 0.940965) · sd / √5
    assert rows["C1"]["mde"] == pytest.approx((2.776445 + 0.940965) * d.std(ddof=1) / 5 ** 0.5,
                                              rel=1e-5)
    assert rows["C1"]["ci_high"] < 0.59 and rows["C1"]["excludes_paper_effect"] is True
    # C2's weakest comparison is vs NG-different (0 on average): its paper effect is 4.89 - 4.63
    assert "vs ng_different_batch" in rows["C2"]["our_value"]
    assert rows["C2"]["paper_effect"] == pytest.approx(0.26)
    assert rows["C2"]["excludes_paper_effect"] is (not rows["C2"]["ci_low"] <= 0.26
                                                   <= rows["C2"]["ci_high"])
    assert rows["C3"]["paper_effect"] == pytest.approx(0.0017 - 0.0023)
    assert schema.excludes(-1.0, 1.0, 0.5) is False and schema.excludes(0.6, 1.0, 0.5) is True
    assert schema.excludes(np.nan, 1.0, 0.5) is None and schema.excludes(0.0, 1.0, np.nan) is None


def test_mde_is_the_effect_a_paired_t_test_detects_with_80_percent_power():
    from scipy import stats

    n, sd = 10, 0.5
    effect = mde(sd, n)
    # the power of the two-sided 5 % test at that true mean difference, from the noncentral t
    crit = stats.t.ppf(0.975, n - 1)
    nc = effect / (sd / np.sqrt(n))
    power = stats.nct.sf(crit, n - 1, nc) + stats.nct.cdf(-crit, n - 1, nc)
    assert power == pytest.approx(0.8, abs=0.01)
    assert math.isnan(mde(sd, 1)) and math.isnan(mde(math.nan, 5))


def test_a_failing_row_shows_its_decisive_comparison_a_passing_row_its_weakest():
    # C2: NG-unlabeled 0.3 better than NG-same batch (holds) and 0.5 worse than NG-different batch
    # (fails): the claim fails, and its row shows the failing comparison, whose interval lies
    # below zero, not the passing one's above zero
    ds = overfitting_store({"ng_unlabeled": 4.6 + NOISE, "ng_different_batch": 4.1 + NOISE[::-1],
                            "ng_same_batch": 4.9 + NOISE[::-1]}, {})
    c2 = next(r for r in overfitting_claims.restricted_mnist_claims(ds) if r["claim_id"] == "C2")
    d = 4.1 + NOISE[::-1] - 4.6 - NOISE
    assert c2["verdict"] == verdict.FAILS and c2["shown"] == schema.DECISIVE
    assert (c2["ci_low"], c2["ci_high"]) == pytest.approx((paired(d).low, paired(d).high))
    assert c2["ci_high"] < 0 and "vs ng_different_batch" in c2["our_value"]
    # both hold: the row shows the one with the lower bound (NG-different batch, 0.2 better)
    ds = overfitting_store({"ng_unlabeled": 4.6 + NOISE, "ng_different_batch": 4.8 + NOISE[::-1],
                            "ng_same_batch": 5.6 + NOISE[::-1]}, {})
    c2 = next(r for r in overfitting_claims.restricted_mnist_claims(ds) if r["claim_id"] == "C2")
    assert c2["verdict"] == verdict.HOLDS and c2["shown"] == schema.WEAKEST
    assert 0 < c2["ci_low"] < 0.3 and "vs ng_different_batch" in c2["our_value"]
    # one comparison: the only one
    c1 = overfitting_claims.restricted_mnist_claims(overfitting_store({"msgd": 5.2 + NOISE,
                                                          "ng_unlabeled": 4.6 + NOISE}, {}))[0]
    assert c1["shown"] == schema.ONLY


def test_a_choice_at_the_edge_of_its_grid_is_flagged_in_the_row_that_uses_it():
    ds = overfitting_store({"msgd": 5.2 + NOISE, "ng_unlabeled": 4.6 + NOISE}, {})
    tuned = {"tuned": {"method": "msgd", "chosen": {"batch_size": 250}, "at_edge": ["batch_size"],
                       "seeds": [100]}}
    ds.attrs["config"] = json.dumps({"methods": {"msgd": tuned, "ng_unlabeled": {}}})
    row = overfitting_claims.restricted_mnist_claims(ds)[0]
    assert row["claim_id"] == "C1" and "edge of its grid: msgd (batch_size)" in row["our_value"]


def test_claims_read_the_evaluation_the_config_fixed_and_name_it():
    """Early-stopped: each run at its lowest validation error (point 1 here, where NG-unlabeled's
    test error is lower than MSGD's), not its last evaluation (where it is higher)."""
    ds = overfitting_store({"msgd": 5.0 + NOISE, "ng_unlabeled": 6.0 + NOISE}, {})
    ds["valid_error"][:, :, 1] = 5.0  # lowest validation error at update 5 for every run
    ds["test_error"][0, :, 1] = 6.0 + NOISE  # msgd
    ds["test_error"][1, :, 1] = 4.0 + NOISE[::-1]  # ng_unlabeled
    ds.attrs["reported_at"] = "final"
    final = overfitting_claims.restricted_mnist_claims(ds)[0]
    assert final["verdict"] == verdict.FAILS and final["reported_at"] == "final"
    assert "last update" in final["our_value"]
    ds.attrs["reported_at"] = "early_stopped"
    stopped = overfitting_claims.restricted_mnist_claims(ds)[0]
    assert stopped["verdict"] == verdict.HOLDS and stopped["reported_at"] == "early_stopped"
    assert stopped["ci_low"] > 1.5 and "lowest validation error" in stopped["our_value"]


def test_a_claim_resting_on_a_diverged_run_neither_holds_nor_fails():
    ds = overfitting_store({"msgd": 5.2 + NOISE, "ng_unlabeled": 4.6 + NOISE}, {})
    assert overfitting_claims.restricted_mnist_claims(ds)[0]["verdict"] == verdict.HOLDS
    ds["diverged"][1, [1, 3]] = True  # ng_unlabeled, seeds 1 and 3
    row = overfitting_claims.restricted_mnist_claims(ds)[0]
    assert row["verdict"] == verdict.INCONCLUSIVE and row["diverged_runs"] == "ng_unlabeled seeds 1, 3"
    assert "would be holds" in row["test"]


def test_seeds_for_the_papers_effect_is_the_fewest_whose_mde_reaches_it():
    from scipy import stats

    for sd, effect in ((0.5, 0.59), (0.6, 0.26), (0.4, -0.28)):
        n = schema.seeds_needed(sd, effect)
        # the power of the paired two-sided 5 % test at the paper's effect, from the noncentral t
        def power(k):
            crit, nc = stats.t.ppf(0.975, k - 1), abs(effect) / (sd / np.sqrt(k))
            return stats.nct.sf(crit, k - 1, nc) + stats.nct.cdf(-crit, k - 1, nc)
        assert power(n) >= 0.79 and power(n - 1) < 0.8, (sd, effect, n)
    assert math.isnan(schema.seeds_needed(0.5, 0.0)) and math.isnan(schema.seeds_needed(np.nan, 1))


IDS = ["C1", "C2", "C3", "C4", "C4-S", "C5", "C5-S", "C6", "C6-S", "C7", "C8", "C9"]


def test_claims_without_their_results_are_not_run():
    ds = overfitting_store({"msgd": 5.0 + NOISE, "ng_same_batch": 4.0 + NOISE}, {})
    rows = {r["claim_id"]: r for r in overfitting_claims.restricted_mnist_claims(ds)}
    assert {rows[c]["verdict"] for c in ("C1", "C2", "C3")} == {verdict.NOT_RUN}
    df = table.claims_table()
    assert list(df.columns) == list(schema.COLUMNS)
    assert list(df["claim_id"]) == IDS
    assert set(df["verdict"]) == {verdict.NOT_RUN}
    assert set(df.loc[df["claim_id"].isin(["C4", "C7", "C8"]), "dataset"]) == {""}


# (C4-C6 on hand-built frontiers: tests/test_order_frontier.py)


def test_toy_claim_on_the_papers_figure_one():
    from natgrad.study.toy.paths import compute_paths

    toy = registry.load(ROOT / "config.yaml")["toy"]
    paths = compute_paths(toy)
    row = toy_claim(paths, toy)
    assert row["verdict"] == verdict.HOLDS, row["our_value"]
    # send Amari's path from start 3 to the end of gradient descent's: the claim no longer holds
    moved = paths.copy()
    last = moved["step"] == moved["step"].max()
    amari = (moved["start"] == "3") & (moved["method"] == "amari") & last
    gd = (moved["start"] == "3") & (moved["method"] == "gd") & last
    moved.loc[amari, ["b", "w"]] = moved.loc[gd, ["b", "w"]].to_numpy()
    assert toy_claim(moved, toy)["verdict"] == verdict.FAILS


def test_grid_minima_of_a_two_well_surface():
    b = np.linspace(-2, 2, 41)
    w = np.linspace(-2, 2, 41)
    bb, ww = np.meshgrid(b, w)
    error = np.minimum((bb - 1) ** 2 + (ww - 1) ** 2, (bb + 1) ** 2 + (ww + 0.5) ** 2 + 0.1)
    minima = np.array(sorted(grid_minima(error, b, w)))
    np.testing.assert_allclose(minima, [(-1.0, -0.5), (1.0, 1.0)], atol=1e-12)


def test_equivalence_claim_against_the_tolerance():
    df = pd.DataFrame({"family": ["gaussian", "bernoulli", "categorical"],
                       "ggn_vs_fisher_y_max_abs_diff": [1e-16, 2e-15, 1e-13],
                       "hf_vs_ng_step_max_rel_diff": [1e-12, 1e-14, 3e-15]})
    assert equivalence_claim(df)["verdict"] == verdict.HOLDS
    df.loc[1, "hf_vs_ng_step_max_rel_diff"] = 1e-8
    assert equivalence_claim(df)["verdict"] == verdict.FAILS


def test_markdown_states_the_rule_and_every_claim():
    md = table.markdown(table.claims_table(), "made by a test")
    assert "95 % interval" in md and "made by a test" in md
    assert "| verdict | shown | paper_effect | mde | excludes_paper_effect |" in md
    assert all(f"| {i} |" in md for i in IDS)


def test_the_workflows_claims_table_decides_every_claim_from_the_tiny_study(tiny_study):
    """`snakemake claims` on the tiny study: a row per claim C1-C9, each with a verdict of the rule
    (C9, TFD, not run: its row is not declared; the toy's and section 7's are always decided), and
    the Markdown naming each."""
    import pandas as pd

    df = pd.read_csv(tiny_study / "results/claims/claims.csv")
    assert list(df["claim_id"]) == IDS
    assert set(df["verdict"]) <= {"holds", "fails", "inconclusive", "not run"}
    assert df.set_index("claim_id").loc["C9", "verdict"] == "not run"
    assert (df.set_index("claim_id").loc[["C7", "C8"], "verdict"] != "not run").all()
    markdown = (tiny_study / "results/claims/claims.md").read_text()
    assert all(f"C{i}" in markdown for i in range(1, 10))
