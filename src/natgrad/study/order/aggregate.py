"""Aggregation of the order-robustness runs into one Dataset, and the variance of figure 3.

Erhan et al. (2010): for each method, learning rate and segment, the variance across the resamples
of the model's held-out outputs, averaged over the held-out samples and the outputs (classes),

    variance_per_seed[m, η, seed, k] = mean over samples i, classes c of
                                       Var_r( p_{m,η,k,r,seed}(c | x_i) ),

with the unbiased (ddof = 1) variance across resamples; `variance` is its mean over seeds. The
`learning_rate` dimension is the union of the methods' grids (`order.frontier`): a cell of a rate
that a method did not run is NaN. The held-out outputs themselves stay in the runs' stores (at the
frontier's size they would be most of the aggregated store); `final_validation_error` (the mean
over resamples of each run's last validation error) is the frontier's other axis.
"""
from __future__ import annotations

import json
from collections import defaultdict

import numpy as np

from natgrad.study import stores
from natgrad.study import kinds
from natgrad.study.methods import StepRecord
from natgrad.study.order import train as train_lib

VARIANCE_DDOF = 1
RUN_AXES = ("optimizer", "learning_rate", "seed", "segment", "resample")


def _run_key(ds):
    a = ds.attrs
    return (a["method"], float(a["learning_rate"]), int(a["seed"]), int(a["segment"]),
            int(a["resample"]))


def _open_runs(run_paths):
    """{key: (path, Dataset)} by (method, learning rate, seed, segment, resample) and the sorted
    labels of each axis (the methods in `kinds.KINDS`' order of their kinds, then by name);
    raises when a method's runs do not fill its grid."""
    runs = {}
    for path in run_paths:
        ds = stores.open_results(path)
        key = _run_key(ds)
        if key in runs:
            raise ValueError(f"{path} and {runs[key][0]}: two runs of the same cell {key}")
        runs[key] = (path, ds)
    if not runs:
        raise ValueError("no runs to aggregate")
    kind = {key[0]: ds.attrs["kind"] for key, (_, ds) in runs.items()}
    labels = (sorted(kind, key=lambda m: (kinds.KINDS.index(kind[m]), m)),
              *(sorted({k[axis] for k in runs}) for axis in range(1, 5)))
    methods, _, seeds, segments, resamples = labels
    for m in methods:
        rates = sorted({k[1] for k in runs if k[0] == m})
        expected = len(rates) * len(seeds) * len(segments) * len(resamples)
        got = sum(1 for k in runs if k[0] == m)
        if got != expected:
            raise ValueError(f"the runs of {m} do not fill its grid learning rates × seeds × "
                             f"segments × resamples ({got} stores for {expected} cells)")
    return runs, labels


def _stack(runs, labels):
    """The runs' arrays on the (method, learning rate, seed, segment, resample) grid (NaN where a
    method did not run a rate), the per-seed variance and the job settings by method and rate."""
    first = next(iter(runs.values()))[1]
    grid = tuple(len(v) for v in labels)
    out = {"validation_error": np.full(grid + (first.sizes["eval"],), np.nan, np.float32),
           **{k: np.full(grid + (first.sizes["step"],), np.nan, np.float32)
              for k in StepRecord._fields},
           "seconds_per_step": np.full(grid, np.nan, np.float64)}
    variance = np.full(grid[:-1], np.nan, np.float64)
    groups = defaultdict(list)
    for key in sorted(runs):
        groups[key[:-1]].append(key)
    job_configs = defaultdict(dict)
    for cell, keys in groups.items():
        probabilities = []
        for key in keys:
            path, ds = runs[key]
            if ds.sizes["sample"] != first.sizes["sample"] or ds.sizes["step"] != first.sizes["step"]:
                raise ValueError(f"{path}: its shape differs from the other runs' (other settings?)")
            probs = ds["probabilities"].values
            if not bool(np.all(np.isfinite(probs))):
                raise ValueError(f"{path}: non-finite held-out outputs; not aggregated")
            probabilities.append(probs)
            idx = tuple(axis.index(v) for axis, v in zip(labels, key))
            out["seconds_per_step"][idx] = ds.attrs.get("seconds_per_step", np.nan)
            for name in ("validation_error",) + StepRecord._fields:
                out[name][idx] = ds[name].values
            job_configs[key[0]][f"{key[1]:g}"] = json.loads(ds.attrs["config"])
        idx = tuple(axis.index(v) for axis, v in zip(labels[:-1], cell))
        var = np.stack(probabilities).var(axis=0, ddof=VARIANCE_DDOF, dtype=np.float64)
        variance[idx] = var.mean()
    return out, variance, dict(job_configs)


def _identity(runs, names):
    """Coordinates of what the runs are: each method's `kind` and `role` (`kinds.ROLES`) along
    `optimizer`, and the `batch_size` and `online_samples` every run shares."""
    kind = {ds.attrs["method"]: ds.attrs["kind"] for _, ds in runs.values()}
    shared = {}
    for path, ds in runs.values():
        config = json.loads(ds.attrs["config"])
        for key in ("batch_size", "online_samples"):
            if shared.setdefault(key, config[key]) != config[key]:
                raise ValueError(f"{path}: {key} {config[key]} differs from the other runs' "
                                 f"{shared[key]}")
    return {"kind": (("optimizer",), np.array([kind[m] for m in names])),
            "role": (("optimizer",), np.array([kinds.ROLES[kind[m]] for m in names])),
            **{key: int(value) for key, value in shared.items()}}


def aggregate(run_paths):
    """An xarray Dataset with dims (optimizer, learning_rate, seed, segment, resample, eval, step).

The methods' dimension is `optimizer`, not `method`: `.sel(method=...)` is xarray's own keyword
(the inexact-match rule), so a `method` dimension could not be selected by `.sel`."""
    import xarray as xr

    runs, labels = _open_runs(run_paths)
    names, rates, seeds, segments, resamples = labels
    first = next(iter(runs.values()))[1]
    arrays, variance_per_seed, job_configs = _stack(runs, labels)
    cell = RUN_AXES[:-1]
    final = arrays["validation_error"][..., -1].mean(axis=-1, dtype=np.float64)
    out = xr.Dataset(
        {
            "validation_error": (RUN_AXES + ("eval",), arrays["validation_error"]),
            **{k: (RUN_AXES + ("step",), arrays[k]) for k in StepRecord._fields},
            "seconds_per_step": (RUN_AXES, arrays["seconds_per_step"]),
            "final_validation_error": (cell, final),
            "variance_per_seed": (cell, variance_per_seed),
            "variance": (("optimizer", "learning_rate", "segment"), variance_per_seed.mean(axis=2)),
        },
        coords={
            "optimizer": np.array(names), "learning_rate": np.array(rates, np.float64),
            **_identity(runs, names),
            "seed": seeds, "segment": segments, "resample": resamples,
            "eval_step": (("eval",), first["eval_step"].values), "step": first["step"].values,
        },
        attrs={
            "experiment": "order",
            "description": "order robustness (Pascanu & Bengio 2014, section 6, figure 3; "
                           "protocol of Erhan et al. 2010), on each method's learning-rate grid",
            "variance_definition": "variance across resamples (ddof=1) of the held-out output "
                                   "probabilities, averaged over samples and classes (and, for "
                                   "`variance`, seeds)",
            "job_configs": json.dumps(job_configs, sort_keys=True),
        },
    )
    variance = ("variance across resamples of the held-out outputs, mean over samples and "
                "classes")
    stores.annotate(out, {
        **{k: v for k, v in train_lib.VARIABLES.items() if k != "probabilities"},
        "variance": (variance + " and seeds (NaN: rate not run by the method)", "1"),
        "variance_per_seed": (variance + ", one seed (NaN: rate not run by the method)", "1"),
        "final_validation_error": ("final validation error, mean over resamples", "%"),
        "seconds_per_step": ("steady-state wall time per step after the first (compiling) chunk; "
                             "the vmapped resamples of one job share it", "s"),
    })
    out["eval_step"].attrs.update(long_name="training steps before the evaluation", units="1")
    out["learning_rate"].attrs.update(long_name="learning rate of the run", units="1")
    out["kind"].attrs.update(long_name="the method's kind (natgrad.study.kinds.KINDS)")
    out["role"].attrs.update(long_name="the method's role: first_order or natural_gradient")
    out["batch_size"].attrs.update(long_name="samples per update", units="1")
    out["online_samples"].attrs.update(long_name="samples of the stream one run reads", units="1")
    ran = np.isfinite(variance_per_seed)
    if not ran.any() or bool(np.any(variance_per_seed[ran] < 0)):
        raise ValueError("the aggregated variance is not finite and non-negative")
    return out


def summary_table(ds):
    """A small CSV: per method, learning rate (of its grid) and segment, the variance and the final
    validation error over seeds."""
    import pandas as pd

    rows = []
    final = ds["final_validation_error"]
    for m in ds["optimizer"].values:
        for lr in ds["learning_rate"].values:
            if not np.isfinite(ds["variance"].sel(optimizer=m, learning_rate=lr)).all():
                continue
            for k in ds["segment"].values:
                errors = final.sel(optimizer=m, learning_rate=lr, segment=k)
                rows.append({
                    "method": str(m), "learning_rate": float(lr), "segment": int(k) + 1,
                    "variance": float(ds["variance"].sel(optimizer=m, learning_rate=lr, segment=k)),
                    "final_validation_error_mean": float(errors.mean()),
                    "final_validation_error_std": float(errors.std()),
                })
    return pd.DataFrame(rows).to_csv(index=False)
