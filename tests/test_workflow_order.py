"""The order experiment's DAG, end to end on the tiny study (tests/tiny_study.py), in a copy:
the stores and figures it makes, that a second run has nothing to do, that adding a resample plans
only the new training jobs and what reads them, that a plot setting reruns only the plots, and that
a bad config value is refused naming the key."""
import json
import re

import numpy as np
import pytest

from tiny_study import ORDER, ROOT, TINY, job_counts, snakemake


def write_config(workdir, name, **order_changes):
    """The tiny study's config with `order_changes` in its order section."""
    path = workdir / name
    path.write_text(json.dumps({**TINY, "order": {**ORDER, **order_changes}}))
    return path


def dry_run(workdir, configfile):
    """`snakemake order -n` with `configfile` layered on config.yaml."""
    return snakemake(workdir, "order", "-n", configfiles=(configfile.name,))


@pytest.fixture(scope="module")
def study(tiny_study_copy):
    return tiny_study_copy, tiny_study_copy / "tiny.yaml"


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
    for method, rates in ORDER["frontier"].items():
        var = ds["variance"].sel(optimizer=method)
        ran = [float(r) for r in var["learning_rate"].values if np.isfinite(var.sel(learning_rate=r)).all()]
        assert ran == rates
        assert np.all(var.sel(learning_rate=rates).values >= 0)
        err = ds["final_validation_error"].sel(optimizer=method, learning_rate=rates).values
        assert np.all((err >= 0) & (err <= 100))
    # (the variance's definition is pinned on hand-built runs in tests/test_order_variance.py)
    configs = json.loads(ds.attrs["job_configs"])
    assert {m: sorted(float(r) for r in c) for m, c in configs.items()} == ORDER["frontier"]
    assert configs["ng"]["0.8"]["hyper"]["learning_rate"] == 0.8
    run = xr.open_zarr(next((workdir / "results/order/runs").glob("ng-*/seed0/segment1/resample1.zarr")))
    probs = run["probabilities"].values
    assert np.all(np.isfinite(probs)) and run.sizes["sample"] == 48
    np.testing.assert_allclose(probs.sum(-1), 1.0, rtol=1e-4)
    assert "kfac-jax" in ds.attrs["package_versions"] and '"segment_size": 64' in ds.attrs["config"]
    iterations = ds["solver_iterations"].sel(optimizer="ng", learning_rate=ORDER["frontier"]["ng"])
    assert np.all(iterations.values > 0)  # NaN where NG did not run a rate
    assert not list((workdir / "results/order").glob("checkpoints/*.npz"))


def test_figures_exist(study):
    workdir, _ = study
    for name in ("variance", "frontier", "validation"):
        path = workdir / f"results/order/figures/{name}.png"
        assert path.stat().st_size > 1000
    assert (workdir / "results/order/variance.csv").read_text().startswith("method,learning_rate,segment,variance")
    levels = (workdir / "results/order/levels.csv").read_text()
    assert levels.startswith("segment,matched_level,matched_error,ratio,ci_low,ci_high,n,bracketed,"
                             "bracket_gap,wide_bracket\n")


def test_second_run_does_nothing(study):
    workdir, config = study
    run = dry_run(workdir, config)
    assert run.returncode == 0, run.stderr[-2000:]
    assert "Nothing to be done" in run.stdout + run.stderr


def test_adding_a_resample_plans_only_its_jobs(study):
    workdir, _ = study
    config = write_config(workdir, "more.yaml", resamples=3)
    run = dry_run(workdir, config)
    out = run.stdout + run.stderr
    assert run.returncode == 0, out[-2000:]
    counts = job_counts(out)
    # resample 2 of the 3 (method, rate) pairs of the frontier × 2 segments
    assert counts.get("order_train") == 2 * sum(map(len, ORDER["frontier"].values())), counts
    assert set(counts) <= {"order_train", "order_aggregate", "order_figures", "order"}, counts
    assert "order_data" not in counts
    planned = re.findall(r"resample=(\d+)", out)
    assert planned and set(planned) == {"2"}


def test_plot_setting_reruns_only_the_plots(study):
    workdir, _ = study
    config = write_config(workdir, "dpi.yaml", plot={"format": "png", "dpi": 72})
    run = dry_run(workdir, config)
    out = run.stdout + run.stderr
    assert run.returncode == 0, out[-2000:]
    counts = job_counts(out)
    assert set(counts) == {"order_figures", "order"}, counts


# (bad values of other order keys: tests/test_workflow_robustness.py)
@pytest.mark.parametrize("change, key", [
    ({"frontier": {"adam": [0.1]}}, "order.frontier.adam"),
    ({"frontier": {"msgd": [0.2, 0.3]}}, "order.frontier.msgd"),  # leaves out its learning_rate 0.1
])
def test_bad_config_is_refused_naming_the_key(study, change, key):
    """By the one resolver the Snakefile calls (the workflow's refusal before any job:
    tests/test_workflow_robustness.py)."""
    from natgrad.study import config, registry

    workdir, _ = study
    with pytest.raises(config.ConfigError, match=re.escape(key)):
        registry.load(ROOT / "config.yaml", write_config(workdir, "bad.yaml", **change))
