"""The order experiment's DAG, end to end on a tiny config in a temporary copy of the workflow:
the stores and figures it makes, that a second run has nothing to do, that adding a resample plans
only the new training jobs and what reads them, that a plot setting reruns only the plots, and that
a bad config value is refused naming the key."""
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]

TINY = {
    "dataset": "fonts", "preset": "pnist07", "c_max": 0.7, "image_size": 16, "data_seed": 0,
    "heldout_size": 48, "validation_size": 48, "online_samples": 256, "segment_size": 64,
    "segments": 2, "resamples": 2, "seeds": [0], "model": {"hidden": [8], "activation": "tanh"},
    "batch_size": 32, "eval_every": 4, "eval_batch_size": 64, "checkpoint_every": 4,
    "vmap_resamples": False,
    "methods": {
        "msgd": {"kind": "msgd", "learning_rate": 0.1},
        "ng": {"kind": "ng_same_batch", "damping": 3.0, "solver": "minres_qlp", "max_iters": 5,
               "rtol": 1.0e-4},
    },
    "frontier": {"msgd": [0.1], "ng": [0.05, 0.8]},  # NG brackets; MSGD needs one rate
    "plot": {"format": "png", "dpi": 60},
}


def write_config(workdir, name, **order_changes):
    cfg = yaml.safe_load((ROOT / "config.yaml").read_text())
    cfg["order"] = {**TINY, **order_changes}
    path = workdir / name
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


def snakemake(workdir, configfile, *args):
    cmd = [sys.executable, "-m", "snakemake", "order", "--cores", "2", *args,
           "--configfile", str(configfile)]
    return subprocess.run(cmd, cwd=workdir, capture_output=True, text=True, timeout=900)


def job_counts(output):
    """{rule: count} from the 'Job stats' table of snakemake's output."""
    table = output.split("Job stats:", 1)[1] if "Job stats:" in output else ""
    return {m.group(1): int(m.group(2)) for m in re.finditer(r"^(\w+)\s+(\d+)\s*$", table, re.M)
            if m.group(1) != "total"}


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("order-study")
    shutil.copy(ROOT / "Snakefile", workdir)
    shutil.copy(ROOT / "config.yaml", workdir)
    shutil.copytree(ROOT / "workflow", workdir / "workflow")
    config = write_config(workdir, "tiny.yaml")
    run = snakemake(workdir, config)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    return workdir, config


def test_store_dims_and_values(study):
    import xarray as xr

    workdir, _ = study
    ds = xr.open_zarr(workdir / "results/order/order.zarr")
    assert ds["validation_error"].dims == ("optimizer", "learning_rate", "seed", "segment",
                                           "resample", "eval")
    assert "probabilities" not in ds  # the held-out outputs stay in the runs' stores
    assert list(ds["optimizer"].values) == ["msgd", "ng"]
    assert list(ds["learning_rate"].values) == [0.05, 0.1, 0.8]
    assert list(ds["segment"].values) == [0, 1] and list(ds["resample"].values) == [0, 1]
    assert list(ds["seed"].values) == [0]
    assert ds["variance"].dims == ("optimizer", "learning_rate", "segment")
    # every (method, rate of its grid) cell is filled, the other rates are NaN
    for method, rates in TINY["frontier"].items():
        var = ds["variance"].sel(optimizer=method)
        ran = [float(r) for r in var["learning_rate"].values if np.isfinite(var.sel(learning_rate=r)).all()]
        assert ran == rates
        assert np.all(var.sel(learning_rate=rates).values >= 0)
        err = ds["final_validation_error"].sel(optimizer=method, learning_rate=rates).values
        assert np.all((err >= 0) & (err <= 100))
    # (the variance's definition is pinned on hand-built runs in tests/test_order_variance.py)
    configs = json.loads(ds.attrs["job_configs"])
    assert {m: sorted(float(r) for r in c) for m, c in configs.items()} == TINY["frontier"]
    assert configs["ng"]["0.8"]["hyper"]["learning_rate"] == 0.8
    run = xr.open_zarr(next((workdir / "results/order/runs").glob("ng-*/seed0/segment1/resample1.zarr")))
    probs = run["probabilities"].values
    assert np.all(np.isfinite(probs)) and run.sizes["sample"] == 48
    np.testing.assert_allclose(probs.sum(-1), 1.0, rtol=1e-4)
    assert "kfac-jax" in ds.attrs["package_versions"] and '"segment_size": 64' in ds.attrs["config"]
    iterations = ds["solver_iterations"].sel(optimizer="ng", learning_rate=TINY["frontier"]["ng"])
    assert np.all(iterations.values > 0)  # NaN where NG did not run a rate
    assert not list((workdir / "results/order").glob("checkpoints/*.npz"))


def test_figures_exist(study):
    workdir, _ = study
    for name in ("variance", "frontier", "validation"):
        path = workdir / f"results/order/figures/{name}.png"
        assert path.stat().st_size > 1000
    assert (workdir / "results/order/variance.csv").read_text().startswith("method,learning_rate,segment,variance")


def test_second_run_does_nothing(study):
    workdir, config = study
    run = snakemake(workdir, config, "-n")
    assert run.returncode == 0, run.stderr[-2000:]
    assert "Nothing to be done" in run.stdout + run.stderr


def test_adding_a_resample_plans_only_its_jobs(study):
    workdir, _ = study
    config = write_config(workdir, "more.yaml", resamples=3)
    run = snakemake(workdir, config, "-n")
    out = run.stdout + run.stderr
    assert run.returncode == 0, out[-2000:]
    counts = job_counts(out)
    # resample 2 of the 3 (method, rate) pairs of the frontier × 2 segments
    assert counts.get("order_train") == 2 * sum(map(len, TINY["frontier"].values())), counts
    assert set(counts) <= {"order_train", "order_aggregate", "order_figures", "order"}, counts
    assert "order_data" not in counts
    planned = re.findall(r"resample=(\d+)", out)
    assert planned and set(planned) == {"2"}


def test_plot_setting_reruns_only_the_plots(study):
    workdir, _ = study
    config = write_config(workdir, "dpi.yaml", plot={"format": "png", "dpi": 72})
    run = snakemake(workdir, config, "-n")
    out = run.stdout + run.stderr
    assert run.returncode == 0, out[-2000:]
    counts = job_counts(out)
    assert set(counts) == {"order_figures", "order"}, counts


@pytest.mark.parametrize("change, key", [
    ({"methods": {"ng": {"kind": "ng_same_batch", "learning_rate": -0.2}}}, "learning_rate"),
    ({"methods": {"ng": {"kind": "ng_same_batch", "lr": 0.2}}}, "use `learning_rate`"),
    ({"resamples": 1}, "resamples"),
    ({"segments": 9}, "order.segments"),
    ({"frontier": {"adam": [0.1]}}, "order.frontier.adam"),
    ({"frontier": {"msgd": [0.2, 0.3]}}, "order.frontier.msgd"),  # leaves out its learning_rate 0.1
])
def test_bad_config_is_refused_naming_the_key(study, change, key):
    workdir, _ = study
    config = write_config(workdir, "bad.yaml", **change)
    run = snakemake(workdir, config, "-n")
    assert run.returncode != 0
    assert key in run.stdout + run.stderr
