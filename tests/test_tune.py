"""The tune stage: the choice rule on hand-built validation errors with a known answer, the config
checks it adds, the `tune` target planning the stage alone, and on the tiny study
(tests/tiny_study.py) the stage's table and the study's runs taking the chosen settings from the
stage's record."""
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from natgrad.study import config, registry
from natgrad.study.overfitting import spec as spec_lib
from natgrad.study.overfitting import tune
from tiny_study import OVERFITTING

ROOT = Path(__file__).resolve().parents[1]
GRID = {"batch_size": [50, 250], "learning_rate": [0.3, 1.0, 3.0]}


def test_points_are_every_combination_in_grid_order():
    assert tune.points(GRID) == [
        {"batch_size": b, "learning_rate": lr} for b in (50, 250) for lr in (0.3, 1.0, 3.0)]


def test_the_lowest_mean_validation_error_is_chosen_and_an_inner_choice_is_not_at_an_edge():
    # rows: the six points of GRID; columns: two pilot seeds
    errors = [[9, 9], [8, 9], [9, 9], [7, 8], [6, 7], [8, 8]]
    rec = tune.record("x", "msgd", {"grid": GRID, "seeds": [100, 101], "reported_at": "final"},
                      errors, np.ones((6, 2)), np.ones((6, 2)), np.zeros((6, 2), bool))
    assert rec["chosen"] == {"batch_size": 250, "learning_rate": 1.0}
    assert rec["at_edge"] == ["batch_size"]  # 250 is the grid's highest batch; lr 1.0 is inside
    rows = pd.DataFrame(tune.rows(rec))
    assert rows["chosen"].tolist() == [False] * 4 + [True, False]
    assert rows["at_edge"].tolist() == [False] * 4 + [True, False]
    assert rows.loc[4, "valid_error_mean"] == 6.5 and rows.loc[4, "valid_error_seed101"] == 7


def test_a_tie_goes_to_the_first_point_and_a_diverged_run_is_never_chosen():
    calm = np.zeros((3, 2), bool)
    assert tune.choose([[5.0, 7.0], [6.0, 6.0], [4.0, 8.0]], calm) == 0
    assert tune.choose([[np.nan, 1.0], [6.0, 6.0]], calm[:2]) == 1
    with pytest.raises(ValueError, match="diverged"):
        tune.choose([[np.nan], [np.nan]], calm[:2, :1])


def test_a_point_with_a_diverged_pilot_is_ineligible_however_low_its_error():
    """The stability rule: the recovered run of point 0 (lowest mean error) rules the point out."""
    errors = [[3.0, 3.0, 3.0], [5.0, 4.0, 6.0], [4.0, 6.0, 7.0]]
    diverged = [[False, True, False], [False, False, False], [False, False, False]]
    peaks = [[2.3, 177.0, 2.3], [2.3, 2.3, 2.3], [2.3, 2.3, 2.3]]
    rec = tune.record("x", "ng_unlabeled", {"grid": {"learning_rate": [5.0, 1.0, 0.5]},
                                            "seeds": [100, 101, 102], "reported_at": "early_stopped"},
                      errors, np.ones((3, 3)), peaks, diverged)
    assert rec["chosen"] == {"learning_rate": 1.0} and rec["at_edge"] == []
    rows = pd.DataFrame(tune.rows(rec))
    assert rows["eligible"].tolist() == [False, True, True]
    assert rows.loc[0, "max_train_ce_seed101"] == 177.0 and rows.loc[0, "valid_error_mean"] == 3.0
    with pytest.raises(ValueError, match="diverged"):
        tune.choose(errors, np.ones((3, 3), bool))
    assert tune.edge_keys({"adapt_damping": [True, False], "damping": [2.0]},
                          {"adapt_damping": True, "damping": 2.0}) == []


def test_a_tuned_run_takes_the_records_choice_and_refuses_another_grid():
    hyper = tune.tuned_hyper("ng_unlabeled", {"updates": 5, "batch_size": 9, "damping": 2.0},
                             {"learning_rate": [1.0, 5.0]}, [100], [0, 1], "early_stopped")
    rec = tune.record("x", "ng_unlabeled", hyper["tune"], [[3.0], [2.0]], [[1.0], [1.0]],
                      [[2.3], [2.3]], [[False], [False]])
    shared = tune.at_settings_of("ng_same_batch", "ng_unlabeled", hyper)
    run = tune.merged(shared, rec)
    assert run["learning_rate"] == 5.0 and run["kind"] == "ng_same_batch" and "tune" not in run
    assert run["tuned"]["at_edge"] == ["learning_rate"]
    for changed in ({"seeds": [101]}, {"reported_at": "final"}):
        other = {**hyper, "tune": {**hyper["tune"], **changed}}
        with pytest.raises(ValueError, match="tune record of ng_unlabeled"):
            tune.merged(other, rec)


def resolve(**overfitting):
    raw = registry.load(ROOT / "config.yaml")
    raw["overfitting"].update(overfitting)
    return registry.resolve(raw)


@pytest.mark.parametrize("overfitting, message", [
    ({"tune": {"msgd": {"damping": [0.1]}}}, "overfitting.tune.msgd.damping is not a hyper-parameter of msgd"),
    ({"tune": {"msgd": {"learning_rate": []}}}, r"overfitting.tune.msgd.learning_rate: \[\] should be non-empty"),
    ({"tune": {"msgd": {"learning_rate": [-1.0]}}}, "overfitting.tune.msgd.learning_rate.0"),
    ({"tune": {"kfac": {"damping": [1.0]}}, "methods": ["msgd"]}, "overfitting.tune.kfac: kfac is not among overfitting.methods"),
    ({"tune_seeds": [1]}, r"overfitting.tune_seeds \[1\] are study seeds"),
    ({"equal_settings": {"ng_same_batch": "kfac"}, "methods": ["msgd", "ng_unlabeled"]}, "overfitting.equal_settings.ng_same_batch: kfac is not among"),
])
def test_bad_tune_settings_are_refused_naming_the_key(overfitting, message):
    with pytest.raises(config.ConfigError, match=message):
        resolve(**overfitting)


def test_a_method_run_at_anothers_settings_carries_its_grid_and_kind():
    section = resolve()["overfitting"]
    specs = spec_lib.experiments(section)["restricted_mnist"]["methods"]
    shared = specs["ng_same_batch_as_ng_unlabeled"]
    assert shared["kind"] == "ng_same_batch" and shared["tune"] == specs["ng_unlabeled"]["tune"]
    assert "metric_batch_size" not in shared and "learning_rate" not in shared
    assert spec_lib.label("ng_same_batch_as_ng_unlabeled") == "KL, same minibatch at KL, unlabeled's settings"


@pytest.fixture(scope="module")
def tuned(tiny_study):
    return tiny_study / "results"


def test_the_tune_target_plans_the_stage_alone(tmp_path):
    """`snakemake tune` trains the pilots and writes the records and table, no study run."""
    from tiny_study import job_counts, snakemake, workspace

    proc = snakemake(workspace(tmp_path / "study"), "tune", "-n")
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-3000:]
    # config.yaml's seeds_per_job (2): MSGD's two pilot seeds share a job, NG-unlabeled's do not
    jobs = {"msgd": 1, "ng_unlabeled": len(OVERFITTING["tune_seeds"])}
    pilots = sum(len(tune.points(grid)) * jobs[m] for m, grid in OVERFITTING["tune"].items())
    assert job_counts(out) == {"overfitting_train": pilots,
                               "tune_choose": len(OVERFITTING["tune"]), "tune_table": 1, "tune": 1}
    assert "stage=overfitting" not in out


def test_the_stage_writes_every_grid_point_and_its_choice(tuned):
    df = pd.read_csv(tuned / "tune" / "restricted_mnist.csv")
    assert len(df) == 4 + 2 and df.groupby("method")["chosen"].sum().to_dict() == {
        "msgd": 1, "ng_unlabeled": 1}
    assert {"valid_error_seed100", "valid_error_seed101", "valid_error_mean", "at_edge",
            "max_train_ce_seed100", "max_train_ce_seed101", "eligible"} <= set(df)
    for method, rows in df.groupby("method"):
        best = rows.loc[rows["eligible"], "valid_error_mean"].min()
        assert rows.loc[rows["chosen"], "valid_error_mean"].item() == best
        assert rows.loc[rows["chosen"], "at_edge"].item()  # two values per key: always an edge


def test_the_study_runs_use_the_chosen_settings(tuned):
    import xarray as xr

    df = pd.read_csv(tuned / "tune" / "restricted_mnist.csv")
    chosen = df[df["chosen"]].set_index("method")
    ds = xr.open_zarr(tuned / "overfitting" / "restricted_mnist" / "runs.zarr")
    hyper = json.loads(ds.attrs["config"])["methods"]
    assert hyper["msgd"]["learning_rate"] == chosen.loc["msgd", "learning_rate"]
    assert hyper["msgd"]["batch_size"] == chosen.loc["msgd", "batch_size"]
    lr = chosen.loc["ng_unlabeled", "learning_rate"]
    assert hyper["ng_unlabeled"]["learning_rate"] == lr
    assert hyper["ng_same_batch_as_ng_unlabeled"]["learning_rate"] == lr
    assert set(ds["optimizer"].values) == {"msgd", "ng_unlabeled", "ng_same_batch_as_ng_unlabeled"}
