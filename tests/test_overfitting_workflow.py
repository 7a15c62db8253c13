"""The overfitting target of the real workflow, on the tiny study (tests/tiny_study.py): table 1
(results/overfitting/table.csv, the public columns), its HTML for the report and the figures come
out of `snakemake overfitting`."""
import json
import warnings

import pandas as pd
import pytest

from tiny_study import OVERFITTING

# the study's methods, then appendix 8.7's NG-same-batch at NG-unlabeled's settings
METHODS = OVERFITTING["methods"] + ["ng_same_batch_as_ng_unlabeled"]


@pytest.fixture(scope="module")
def tiny_run(tiny_study):
    return tiny_study / "results" / "overfitting"


def test_table_has_one_row_per_method_and_the_public_columns(tiny_run):
    df = pd.read_csv(tiny_run / "table.csv")
    assert list(df["method"]) == METHODS
    for col in ("method", "train_ce_mean", "train_ce_std", "test_error_mean", "test_error_std",
                "paper_train_ce", "paper_test_error"):
        assert col in df.columns
    assert (df["train_ce_mean"] > 0).all() and (df["train_ce_mean"] < 2.3).all()
    assert df.loc[df["method"] == "ng_unlabeled", "paper_test_error"].item() == 4.63
    assert (df["seeds"] == len(OVERFITTING["seeds"])).all()


def test_report_table_and_figures_are_written(tiny_run):
    assert "KL, unlabeled" in (tiny_run / "table.html").read_text()
    for name in ("curves_updates.png", "curves_wallclock.png"):
        path = tiny_run / "restricted_mnist" / name
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_aggregated_store_holds_every_seed(tiny_run):
    import xarray as xr

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a store opens with no warning
        ds = xr.open_zarr(tiny_run / "restricted_mnist" / "runs.zarr")
    assert ds.sizes["optimizer"] == len(METHODS) and ds.sizes["seed"] == len(OVERFITTING["seeds"])
    assert set(json.loads(ds.attrs["config"])["methods"]) == set(METHODS)
    assert set(ds.data_vars) >= {"train_ce", "test_error", "valid_error", "wall_time", "update"}
