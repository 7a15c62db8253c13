"""Across seeds: the jobs' learning curves as one Dataset, and table 1 from its last evaluations.

The aggregated Dataset has dimensions (method, seed, point): `point` indexes the evaluations of a
run (methods differ in their number of updates, so `update(method, point)` is a variable, and
shorter runs are padded with NaN).
"""
from __future__ import annotations

import numpy as np

from natgrad.study import stores
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
    out["update"] = (("optimizer", "point"), update)
    out["compile_seconds"] = (("optimizer", "seed"), compile_s)
    out["update"].attrs.update(long_name="updates done at this evaluation (-1: no evaluation)",
                               units="1")
    return stores.annotate(out, {**loop.VARIABLES, "compile_seconds": (
        "seconds compiling the run's programs (not in wall_time)", "s")})


def experiment_spec(runs):
    """The experiment's spec from its runs' `config` attributes: every method's settings, the seeds."""
    import json

    specs = [json.loads(ds.attrs["config"]) for ds in runs.values()]
    spec = {k: v for k, v in specs[0].items() if k != "methods"}
    spec["methods"] = {m: h for s in specs for m, h in s["methods"].items()}
    spec["seeds"] = sorted({seed for _, seed in runs})
    return spec


def final(ds):
    """The last recorded evaluation of each (method, seed), as a Dataset over (method, seed)."""
    last = (ds["update"] >= 0).sum("point") - 1
    return ds[list(CURVES)].isel(point=last)


def table(ds, experiment="restricted_mnist"):
    """Table 1's rows for one experiment: one row per method, mean and std over seeds of the final
    training cross-entropy and test error (%), the paper's numbers where it has them."""
    import pandas as pd

    fin = final(ds)
    paper = PAPER.get(experiment, {})
    rows = []
    for i, m in enumerate(ds["optimizer"].values):
        f = fin.isel(optimizer=i)
        ce, err = f["train_ce"].values, f["test_error"].values
        row = {"experiment": experiment, "method": str(m),
               "train_ce_mean": float(np.nanmean(ce)), "train_ce_std": float(np.nanstd(ce)),
               "test_error_mean": float(np.nanmean(err)), "test_error_std": float(np.nanstd(err))}
        p = paper.get(str(m))
        row["paper_train_ce"] = p[0] if p else np.nan
        row["paper_test_error"] = p[1] if p else np.nan
        row["valid_error_mean"] = float(np.nanmean(f["valid_error"].values))
        row["wall_time_mean"] = float(np.nanmean(f["wall_time"].values))
        row["updates"] = int(ds["update"].isel(optimizer=i).max())
        row["seeds"] = int(np.isfinite(ce).sum())
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
            f"<title>Table 1</title></head><body><h3>Table 1: final training "
            f"cross-entropy and test error (%), mean and std over seeds</h3>{body}</body></html>\n")
