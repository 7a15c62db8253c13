"""Across seeds: the jobs' learning curves as one Dataset, and table 1 from it.

The aggregated Dataset has dimensions (method, seed, point): `point` indexes the evaluations of a
run (methods differ in their number of updates, so `update(method, point)` is a variable, and
shorter runs are padded with NaN), and `diverged(method, seed)` says which runs left their start.

Table 1 reports each run at two evaluations: its last (`final`) and the one with its lowest
validation error (`early_stopped`: the paper's code evaluates the test set only when the validation
error improves and reports the test error and training cost there, so table 1's columns are
early-stopped values). Which of the two the claims read (`overfitting.reported_at`) is fixed in the
config before the run and kept in the aggregated store's attribute `reported_at`.
"""
from __future__ import annotations

import numpy as np

from natgrad.study import kinds, stores
from natgrad.study.overfitting import loop

#: Table 1 of the paper: (training cross-entropy, test error in %) per experiment and method.
PAPER = {
    "restricted_mnist": {
        "msgd": (0.0523, 5.22),
        "ng_unlabeled": (0.0017, 4.63),
        "ng_different_batch": (0.0012, 4.89),
        "ng_same_batch": (0.0023, 4.91),
        "covariance": (0.0006, 4.74),
    },
    "mnist_convnet": {
        "ng_different_batch": (0.00010, 0.78),
        "ng_same_batch": (0.0011, 0.82),
        "covariance": (0.024, 1.07),
    },
    "tfd": {
        "ng_unlabeled": (0.054, 16.96),
        "ng_different_batch": (0.098, 18.87),
    },
}

CURVES = tuple(loop.VARIABLES)
#: The evaluation of a run that table 1 and the claims report (`overfitting.reported_at`).
REPORTED_AT = ("early_stopped", "final")


def combine(runs):
    """One Dataset from `{(method, seed): run Dataset}` (each over `update`)."""
    import xarray as xr

    methods = list(dict.fromkeys(m for m, _ in runs))
    seeds = sorted({s for _, s in runs})
    npoints = max(ds.sizes["update"] for ds in runs.values())
    shape = (len(methods), len(seeds), npoints)
    values = {k: np.full(shape, np.nan) for k in CURVES}
    update = np.full((len(methods), npoints), -1, np.int64)
    compile_s = np.full(shape[:2], np.nan)
    for (m, s), ds in runs.items():
        i, j, n = methods.index(m), seeds.index(s), ds.sizes["update"]
        for k in CURVES:
            if k in ds:
                values[k][i, j, :n] = ds[k].values
        update[i, :n] = ds["update"].values
        compile_s[i, j] = ds.attrs.get("compile_seconds", np.nan)
    out = xr.Dataset(
        {k: (("optimizer", "seed", "point"), v) for k, v in values.items()},
        coords={"optimizer": np.array(methods), "seed": np.array(seeds, np.int64),
                "point": np.arange(npoints)},
    )
    first = {m: ds.attrs for (m, _), ds in runs.items()}
    kind = [first[m]["kind"] for m in methods]
    out = out.assign_coords(kind=("optimizer", kind),
                            role=("optimizer", [kinds.ROLES[k] for k in kind]),
                            learning_rate=("optimizer", [first[m]["learning_rate"] for m in methods]))
    out["kind"].attrs.update(long_name="the method's kind (natgrad.study.kinds.KINDS)")
    out["role"].attrs.update(long_name="the method's role: first_order or natural_gradient")
    out["learning_rate"].attrs.update(long_name="the method's (initial) learning rate (NaN: K-FAC "
                                      "adapts its own)", units="1")
    out["update"] = (("optimizer", "point"), update)
    out["compile_seconds"] = (("optimizer", "seed"), compile_s)
    out["diverged"] = (("optimizer", "seed"), _diverged(values["train_ce"], update))
    out["update"].attrs.update(long_name="updates done at this evaluation (-1: no evaluation)",
                               units="1")
    return stores.annotate(out, {**loop.VARIABLES, "compile_seconds": (
        "seconds compiling the run's programs (not in wall_time)", "s"), "diverged": (
        "the run's training cross-entropy rose above its start or stopped being finite", "1")})


def _diverged(train_ce, update):
    """`loop.diverged` of each (method, seed) run over its own evaluations (padding dropped; a
    missing run counts as not diverged)."""
    out = np.zeros(train_ce.shape[:2], bool)
    for i in range(train_ce.shape[0]):
        points = update[i] >= 0
        for j in range(train_ce.shape[1]):
            ce = train_ce[i, j, points]
            out[i, j] = not np.isnan(ce).all() and loop.diverged(ce)
    return out


def experiment_spec(runs):
    """The experiment's spec from its runs' `config` attributes: every method's settings, the seeds."""
    import json

    specs = [json.loads(ds.attrs["config"]) for ds in runs.values()]
    spec = {k: v for k, v in specs[0].items() if k != "methods"}
    spec["methods"] = {m: h for s in specs for m, h in s["methods"].items()}
    spec["seeds"] = sorted({seed for _, seed in runs})
    return spec


def final(ds):
    """The last recorded evaluation of each (method, seed), as a Dataset over (method, seed) (its
    `update` the evaluation's)."""
    return _at(ds, (ds["update"] >= 0).sum("point") - 1)


def early_stopped(ds):
    """The evaluation with the lowest validation error of each (method, seed), the first of equal
    ones (the paper's code keeps a point only when it improves on the best), as `final` does."""
    return _at(ds, ds["valid_error"].fillna(np.inf).argmin("point"))


def reported(ds, reported_at):
    """`final(ds)` or `early_stopped(ds)`, by name (`REPORTED_AT`)."""
    if reported_at not in REPORTED_AT:
        raise ValueError(f"reported_at {reported_at!r} is not one of {', '.join(REPORTED_AT)}")
    return final(ds) if reported_at == "final" else early_stopped(ds)


def _at(ds, point):
    out = ds[[k for k in CURVES if k in ds]].isel(point=point)  # stores before `rejected` lack it
    out["update"] = ds["update"].isel(point=point)
    return out


def table(ds, experiment="restricted_mnist"):
    """Table 1's rows for one experiment: one row per method, mean and std over seeds of the
    training cross-entropy and test error (%) at the final evaluation (`train_ce_mean`, ...) and
    at the early-stopped one (`early_stopped_train_ce_mean`, ...), the paper's (early-stopped)
    numbers where it has them, which evaluation the claims read (`reported_at`), the runs that
    diverged and the steps rejected."""
    import pandas as pd

    at = {"": final(ds)}
    if np.isfinite(ds["valid_error"].values).any():
        at["early_stopped_"] = early_stopped(ds)
    paper = PAPER.get(experiment, {})
    rows = []
    for i, m in enumerate(ds["optimizer"].values):
        row = {"experiment": experiment, "method": str(m)}
        for prefix, values in at.items():
            f = values.isel(optimizer=i)
            for key in ("train_ce", "test_error"):
                row[f"{prefix}{key}_mean"] = float(np.nanmean(f[key].values))
                row[f"{prefix}{key}_std"] = float(np.nanstd(f[key].values))
            row[f"{prefix}valid_error_mean"] = float(np.nanmean(f["valid_error"].values))
        p = paper.get(str(m))
        row["paper_train_ce"] = p[0] if p else np.nan
        row["paper_test_error"] = p[1] if p else np.nan
        row["reported_at"] = ds.attrs.get("reported_at", "final")
        f = at[""].isel(optimizer=i)
        if "early_stopped_" in at:
            row["early_stopped_update_mean"] = float(np.nanmean(
                at["early_stopped_"]["update"].isel(optimizer=i).values))
        row["wall_time_mean"] = float(np.nanmean(f["wall_time"].values))
        rejected = f["rejected"].values if "rejected" in f else np.nan  # older stores lack it
        row["rejected_mean"] = float(np.nanmean(rejected))
        row["updates"] = int(ds["update"].isel(optimizer=i).max())
        row["seeds"] = int(np.isfinite(f["train_ce"].values).sum())
        row["diverged_runs"] = int(ds["diverged"].isel(optimizer=i).sum())
        rows.append(row)
    return pd.DataFrame(rows)


def table_html(df):
    """Table 1 (a `table` DataFrame) as a small standalone HTML page for the Snakemake report."""
    from natgrad.study.overfitting.spec import label

    shown = df.copy()
    shown.insert(2, "name", [label(m) for m in shown["method"]])
    body = shown.to_html(index=False, float_format=lambda v: f"{v:.4g}", na_rep="",
                         border=0, classes="overfitting")
    style = ("body{font-family:sans-serif}table{border-collapse:collapse}"
             "td,th{padding:3px 9px;border-bottom:1px solid #ccc;text-align:right}")
    return (f"<!DOCTYPE html><html><head><meta charset='utf-8'><style>{style}</style>"
            f"<title>Table 1</title></head><body><h3>Table 1: training cross-entropy and test "
            f"error (%), mean and std over seeds, at the final evaluation and at the one with the "
            f"lowest validation error (early_stopped_: the paper's protocol)</h3>{body}"
            f"</body></html>\n")
