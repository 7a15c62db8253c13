"""Aggregation of the order-robustness runs into one Dataset, and the variance of figure 3.

Erhan et al. (2010): for each method and segment, the variance across the resamples of the model's
held-out outputs, averaged over the held-out samples and the outputs (classes),

    variance[m, k] = mean over seeds, samples i, classes c of  Var_r( p_{m,k,r,seed}(c | x_i) ),

with the unbiased (ddof = 1) variance across resamples. `variance_per_seed` keeps the seeds apart.
"""
from __future__ import annotations

import json

import numpy as np

from natgrad.study import stores
from natgrad.study.methods import StepRecord
from natgrad.study.order import train as train_lib

VARIANCE_DDOF = 1


def _open_runs(run_paths):
    """[((method, seed, segment, resample), path, Dataset)] and the sorted labels of each axis;
    raises when the runs do not fill the grid."""
    runs = []
    for path in run_paths:
        ds = stores.open_results(path)
        a = ds.attrs
        runs.append(((a["method"], int(a["seed"]), int(a["segment"]), int(a["resample"])), path, ds))
    if not runs:
        raise ValueError("no runs to aggregate")
    labels = (sorted({k[0] for k, _, _ in runs}, key=lambda m: (m != "msgd", m)),
              *(sorted({k[axis] for k, _, _ in runs}) for axis in (1, 2, 3)))
    expected = int(np.prod([len(v) for v in labels]))
    if len(runs) != expected or len({k for k, _, _ in runs}) != expected:
        raise ValueError(f"the runs do not fill the grid methods × seeds × segments × resamples "
                         f"({len(runs)} stores for {expected} cells)")
    return runs, labels


def _stack(runs, labels):
    """The runs' arrays stacked on the (method, seed, segment, resample) grid, the job settings by
    method and the calibration record (JSON) when a method was calibrated."""
    first = runs[0][2]
    grid = tuple(len(v) for v in labels)
    out = {"probabilities": np.empty(grid + (first.sizes["sample"], first.sizes["class"]),
                                     np.float32),
           "validation_error": np.empty(grid + (first.sizes["eval"],), np.float32),
           **{k: np.empty(grid + (first.sizes["step"],), first[k].dtype)
              for k in StepRecord._fields},
           "seconds_per_step": np.empty(grid, np.float64)}
    job_configs, calibration = {}, None
    for key, path, ds in runs:
        if ds.sizes["sample"] != first.sizes["sample"] or ds.sizes["step"] != first.sizes["step"]:
            raise ValueError(f"{path}: its shape differs from {runs[0][1]} (other settings?)")
        if not bool(np.all(np.isfinite(ds["probabilities"].values))):
            raise ValueError(f"{path}: non-finite held-out outputs; not aggregated")
        idx = tuple(axis.index(v) for axis, v in zip(labels, key))
        for name, array in out.items():
            array[idx] = (ds.attrs.get(name, np.nan) if name == "seconds_per_step"
                          else ds[name].values)
        job_configs[key[0]] = json.loads(ds.attrs["config"])
        if "calibration" in ds.attrs:
            calibration = ds.attrs["calibration"]
    return out, job_configs, calibration


def aggregate(run_paths):
    """An xarray Dataset with dims (optimizer, seed, segment, resample, sample, class, eval, step).

The methods' dimension is `optimizer`, not `method`: `.sel(method=...)` is xarray's own keyword
(the inexact-match rule), so a `method` dimension could not be selected by `.sel`."""
    import xarray as xr

    runs, (methods, seeds, segments, resamples) = _open_runs(run_paths)
    first = runs[0][2]
    arrays, job_configs, calibration = _stack(runs, (methods, seeds, segments, resamples))
    probs = arrays["probabilities"]
    var = probs.var(axis=3, ddof=VARIANCE_DDOF, dtype=np.float64)  # (m, seed, segment, sample, class)
    variance_per_seed = var.mean(axis=(-2, -1))                    # (m, seed, segment)
    dims = ("optimizer", "seed", "segment", "resample")
    out = xr.Dataset(
        {
            "probabilities": (dims + ("sample", "class"), probs),
            "validation_error": (dims + ("eval",), arrays["validation_error"]),
            **{k: (dims + ("step",), arrays[k]) for k in StepRecord._fields},
            "seconds_per_step": (dims, arrays["seconds_per_step"]),
            "variance_per_seed": (("optimizer", "seed", "segment"), variance_per_seed),
            "variance": (("optimizer", "segment"), variance_per_seed.mean(axis=1)),
        },
        coords={
            "optimizer": np.array(methods),
            "seed": seeds, "segment": segments, "resample": resamples,
            "sample": first["sample"].values, "class": first["class"].values,
            "eval_step": (("eval",), first["eval_step"].values), "step": first["step"].values,
        },
        attrs={
            "experiment": "order",
            "description": "order robustness (Pascanu & Bengio 2014, section 6, figure 3; "
                           "protocol of Erhan et al. 2010)",
            "variance_definition": "variance across resamples (ddof=1) of the held-out output "
                                   "probabilities, averaged over samples, classes and seeds",
            "job_configs": json.dumps(job_configs, sort_keys=True),
            **({"calibration": calibration} if calibration else {}),
        },
    )
    variance = ("variance across resamples of the held-out outputs, mean over samples and "
                "classes")
    stores.annotate(out, {
        **train_lib.VARIABLES,
        "variance": (variance + " and seeds", "1"),
        "variance_per_seed": (variance + ", one seed", "1"),
        "seconds_per_step": ("steady-state wall time per step after the first (compiling) chunk; "
                             "the vmapped resamples of one job share it", "s"),
    })
    out["eval_step"].attrs.update(long_name="training steps before the evaluation", units="1")
    if not bool(np.all(np.isfinite(out["variance"].values))) or bool(np.any(out["variance"] < 0)):
        raise ValueError("the aggregated variance is not finite and non-negative")
    return out


def summary_table(ds):
    """A small CSV: per method and segment the variance, and per method the final validation error."""
    import pandas as pd

    rows = []
    final = ds["validation_error"].isel(eval=-1)
    for m in ds["optimizer"].values:
        for k in ds["segment"].values:
            rows.append({
                "method": str(m), "segment": int(k),
                "variance": float(ds["variance"].sel(optimizer=m, segment=k)),
                "final_validation_error_mean": float(final.sel(optimizer=m, segment=k).mean()),
                "final_validation_error_std": float(final.sel(optimizer=m, segment=k).std()),
            })
    return pd.DataFrame(rows).to_csv(index=False)
