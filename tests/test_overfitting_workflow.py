"""The overfitting target of the real workflow, on a tiny config, in a temporary copy of the project:
table 1 (results/overfitting/table.csv, the public columns), its HTML for the report and the
figures come out of `snakemake overfitting`."""
import json
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import pandas as pd
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]

TINY = {
    "overfitting": {
        "dataset": "mnist5k",
        "split": {"train": 100, "unlabeled": 200, "valid": 50, "test": 100},
        "model": {"kind": "mlp", "hidden": [8], "activation": "tanh"},
        "seeds": [0, 1],
        "evaluations": 2,
        "methods": ["msgd", "ng_unlabeled"],
        "tune": None,  # fixed settings here (tests/test_tune.py runs the tune stage)
        "equal_settings": None,
        "hyper": {
            "msgd": {"updates": 20, "batch_size": 20, "learning_rate": 0.5},
            "ng_unlabeled": {"updates": 4, "batch_size": 50, "metric_batch_size": 50,
                             "learning_rate": 1.0,
                             "damping": 2.0, "adapt_damping": True, "solver": "cg",
                             "max_iters": 5},
        },
    }
}


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    if shutil.which("snakemake") is None and not (Path(sys.executable).parent / "snakemake").exists():
        pytest.skip("snakemake is not installed")
    work = tmp_path_factory.mktemp("overfitting_dag")
    shutil.copy(ROOT / "Snakefile", work / "Snakefile")
    shutil.copy(ROOT / "config.yaml", work / "config.yaml")
    shutil.copytree(ROOT / "workflow", work / "workflow")
    (work / "tiny.yaml").write_text(yaml.safe_dump(TINY))
    snakemake = Path(sys.executable).parent / "snakemake"
    cmd = [str(snakemake) if snakemake.exists() else "snakemake", "--cores", "2", "overfitting",
           "--configfile", "tiny.yaml"]
    proc = subprocess.run(cmd, cwd=work, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return work / "results" / "overfitting"


def test_table_has_one_row_per_method_and_the_public_columns(tiny_run):
    df = pd.read_csv(tiny_run / "table.csv")
    assert list(df["method"]) == ["msgd", "ng_unlabeled"]
    for col in ("method", "train_ce_mean", "train_ce_std", "test_error_mean", "test_error_std",
                "paper_train_ce", "paper_test_error"):
        assert col in df.columns
    assert (df["train_ce_mean"] > 0).all() and (df["train_ce_mean"] < 2.3).all()
    assert df.loc[df["method"] == "ng_unlabeled", "paper_test_error"].item() == 4.63
    assert (df["seeds"] == 2).all()


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
    assert ds.sizes["optimizer"] == 2 and ds.sizes["seed"] == 2
    assert set(json.loads(ds.attrs["config"])["methods"]) == {"msgd", "ng_unlabeled"}
    assert set(ds.data_vars) >= {"train_ce", "test_error", "valid_error", "wall_time", "update"}
