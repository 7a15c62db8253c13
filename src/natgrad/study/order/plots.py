"""Figures of the order-robustness experiment (seaborn, matplotlib's Agg backend).

- `plot_variance`: figure 3 — per method, the variance of the held-out outputs across resamples
  against the segment that was resampled (mean over seeds, 95 % t-interval band), log y axis;
- `plot_validation`: the validation-error curves of every run, per method, showing whether the
  methods were matched (the paper matches them at 49.8 % after 32.7M samples).
"""
from __future__ import annotations

import numpy as np

from natgrad.study.statistics import paired

LABELS = {"msgd": "MSGD", "ng": "natural gradient"}
DEFAULT_STYLE = {"style": "whitegrid", "context": "paper", "palette": "colorblind", "dpi": 150,
                 "width": 5.0, "height": 3.6}


def _setup(style):
    import matplotlib

    matplotlib.use("Agg")
    import seaborn as sns

    style = {**DEFAULT_STYLE, **(style or {})}
    sns.set_theme(style=style["style"], context=style["context"], palette=style["palette"])
    return style


def _label(method):
    return LABELS.get(str(method), str(method))


def _save(fig, path, dpi):
    from natgrad.study.stores import atomic_path

    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=dpi, bbox_inches="tight", format=str(path).rsplit(".", 1)[-1])


def variance_frame(ds):
    import pandas as pd

    v = ds["variance_per_seed"]
    rows = []
    for m in v["optimizer"].values:
        for s in v["seed"].values:
            for k in v["segment"].values:
                rows.append({"method": _label(m), "seed": int(s), "segment": int(k) + 1,
                             "variance": float(v.sel(optimizer=m, seed=s, segment=k))})
    return pd.DataFrame(rows)


def _t_interval(values):
    """The band of figure 3: the 95 % Student-t interval of the mean over seeds."""
    c = paired(values)
    return c.low, c.high


def plot_variance(ds, path, style=None):
    """Figure 3: the mean over seeds per method and segment, with its 95 % interval (several
    seeds)."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    style = _setup(style)
    df = variance_frame(ds)
    fig, ax = plt.subplots(figsize=(style["width"], style["height"]))
    sns.lineplot(data=df, x="segment", y="variance", hue="method", style="method", markers=True,
                 dashes=False, errorbar=_t_interval if df["seed"].nunique() > 1 else None, ax=ax)
    ax.set_yscale("log")
    ax.set_xticks(sorted(df["segment"].unique()))
    ax.set_xlabel("resampled segment of the online stream (1 = earliest)")
    ax.set_ylabel("variance of held-out outputs")
    ax.set_title("Order robustness: variance across resamples")
    ax.legend(title=None)
    _save(fig, path, style["dpi"])
    plt.close(fig)


def validation_frame(ds):
    import pandas as pd

    ve = ds["validation_error"]
    eval_step = ds["eval_step"].values
    batch = json_batch(ds)
    rows = []
    for m in ve["optimizer"].values:
        for s in ve["seed"].values:
            for k in ve["segment"].values:
                for r in ve["resample"].values:
                    vals = ve.sel(optimizer=m, seed=s, segment=k, resample=r).values
                    run = f"{m}/{s}/{k}/{r}"
                    rows += [{"method": _label(m), "run": run, "samples": int(t) * batch,
                              "validation error": float(e)} for t, e in zip(eval_step, vals)]
    return pd.DataFrame(rows)


def json_batch(ds):
    import json

    cfgs = json.loads(ds.attrs.get("job_configs", "{}"))
    return int(next(iter(cfgs.values()))["batch_size"]) if cfgs else 1


def plot_validation(ds, path, style=None):
    import matplotlib.pyplot as plt
    import seaborn as sns

    style = _setup(style)
    df = validation_frame(ds)
    fig, ax = plt.subplots(figsize=(style["width"], style["height"]))
    sns.lineplot(data=df, x="samples", y="validation error", hue="method", units="run",
                 estimator=None, alpha=0.35, lw=0.8, legend=False, ax=ax)
    sns.lineplot(data=df, x="samples", y="validation error", hue="method", errorbar=None, lw=2,
                 ax=ax)
    final = ds["validation_error"].isel(eval=-1)
    handles, labels = ax.get_legend_handles_labels()
    text = {_label(m): float(final.sel(optimizer=m).mean()) for m in final["optimizer"].values}
    ax.legend(handles, [f"{lab} (final {100 * text.get(lab, np.nan):.1f} %)" for lab in labels],
              title=None)
    ax.set_xlabel("online samples seen")
    ax.set_ylabel("validation error")
    ax.set_title("Validation error of every run")
    _save(fig, path, style["dpi"])
    plt.close(fig)
