"""Figures of the order-robustness experiment (seaborn, matplotlib's Agg backend).

- `plot_variance`: figure 3 — per method, the variance of the held-out outputs across resamples
  against the segment that was resampled (mean over seeds, 95 % t-interval band), log y axis;
- `plot_frontier`: the frontier — per method, the variance against the final validation error over
  its learning-rate grid, a panel per segment (the first, a middle and the last), 95 % bands over
  seeds: what C4 is decided on (`natgrad.study.order.frontier`);
- `plot_validation`: the validation-error curves of every run, per method, showing whether the
  methods were matched (the paper matches them at 49.8 % after 32.7M samples);
- `plot_scaling`: the NG/MSGD variance ratio at matched validation error against stream length.
"""
from __future__ import annotations

import numpy as np

from natgrad.study import figures, kinds
from natgrad.study.statistics import paired

DEFAULT_STYLE = {"style": "whitegrid", "context": "paper", "palette": "colorblind", "dpi": 150,
                 "width": 5.0, "height": 3.6}


def _setup(style):
    """The plot settings with their defaults, and pyplot themed by them."""
    style = {**DEFAULT_STYLE, **(style or {})}
    return style, figures.pyplot(style)


def method_labels(ds):
    """`{method: legend label}`: its kind's (`kinds.LABELS`), with its name where two methods share
    a kind."""
    names, kind = [str(m) for m in ds["optimizer"].values], [str(k) for k in ds["kind"].values]
    return {m: kinds.LABELS[k] if kind.count(k) == 1 else f"{kinds.LABELS[k]} ({m})"
            for m, k in zip(names, kind)}


def _save(fig, path, dpi):
    figures.save(fig, path, dpi, bbox_inches="tight")


def cells(ds, names):
    """The one frame builder of the figures: a row per cell of the variables `names` (which share
    their dims), the store's dims walked in order, a column per dim and per variable (float64); the
    cells where `names[0]` is NaN (a learning rate the method did not run) are left out."""
    df = ds[list(names)].to_dataframe().reset_index()
    for name in names:
        df[name] = df[name].astype(np.float64)
    df = df[np.isfinite(df[names[0]])].reset_index(drop=True)
    label = method_labels(ds)
    df["method"] = [label[str(m)] for m in df["optimizer"]]
    df["seed"] = df["seed"].astype(int)
    df["segment"] = df["segment"].astype(int)
    return df


def variance_frame(ds):
    """Per method, rate, seed and segment (from 1): the variance of figure 3."""
    df = cells(ds, ["variance_per_seed"])
    return df.assign(**{"learning rate": [f"{lr:g}" for lr in df["learning_rate"]],
                        "segment": df["segment"] + 1, "variance": df["variance_per_seed"]})[
        ["method", "learning rate", "seed", "segment", "variance"]]


def _t_interval(values):
    """The band of figure 3: the 95 % Student-t interval of the mean over seeds."""
    c = paired(values)
    return c.low, c.high


def plot_variance(ds, path, style=None):
    """Figure 3: the mean over seeds per method, learning rate and segment, with its 95 % interval
    (several seeds)."""
    import seaborn as sns

    style, plt = _setup(style)
    df = variance_frame(ds)
    fig, ax = plt.subplots(figsize=(style["width"], style["height"]))
    sns.lineplot(data=df, x="segment", y="variance", hue="method", style="learning rate",
                 markers=True, dashes=False,
                 errorbar=_t_interval if df["seed"].nunique() > 1 else None, ax=ax)
    ax.set_yscale("log")
    ax.set_xticks(sorted(df["segment"].unique()))
    ax.set_xlabel("resampled segment of the online stream (1 = earliest)")
    ax.set_ylabel("variance of held-out outputs")
    ax.set_title("Order robustness: variance across resamples")
    ax.legend(title=None)
    _save(fig, path, style["dpi"])


def validation_frame(ds):
    """Per run (method, rate, seed, segment, resample) and evaluation: the validation error
    against the online samples seen."""
    df = cells(ds, ["validation_error"])
    runs = zip(df["optimizer"], df["learning_rate"], df["seed"], df["segment"], df["resample"])
    return df.assign(run=[f"{m}/{lr:g}/{s}/{k}/{r}" for m, lr, s, k, r in runs],
                     samples=df["eval_step"].astype(int) * int(ds["batch_size"]),
                     **{"validation error": df["validation_error"]})[
        ["method", "run", "samples", "validation error"]]


def plot_validation(ds, path, style=None):
    import seaborn as sns

    style, plt = _setup(style)
    df = validation_frame(ds)
    fig, ax = plt.subplots(figsize=(style["width"], style["height"]))
    sns.lineplot(data=df, x="samples", y="validation error", hue="method", units="run",
                 estimator=None, alpha=0.35, lw=0.8, legend=False, ax=ax)
    sns.lineplot(data=df, x="samples", y="validation error", hue="method", errorbar=None, lw=2,
                 ax=ax)
    final = ds["final_validation_error"]  # stored in percent
    handles, labels = ax.get_legend_handles_labels()
    label = method_labels(ds)
    text = {label[str(m)]: "-".join(f"{e:.1f}" for e in _range(final.sel(optimizer=m).values))
            for m in final["optimizer"].values}
    ax.legend(handles, [f"{lab} (final {text.get(lab, '?')} % over its grid)" for lab in labels],
              title=None)
    ax.set_xlabel("online samples seen")
    ax.set_ylabel("validation error (%)")
    ax.set_title("Validation error of every run")
    _save(fig, path, style["dpi"])


def _range(values):
    finite = np.asarray(values, np.float64)
    finite = finite[np.isfinite(finite)]
    return (finite.min(), finite.max()) if finite.size else (np.nan, np.nan)


def panel_segments(segments):
    """The segments the frontier figure shows: all of up to three, else the first, a middle one and
    the last."""
    segments = [int(k) for k in segments]
    if len(segments) <= 3:
        return segments
    return [segments[0], segments[len(segments) // 2], segments[-1]]


def frontier_frame(ds):
    """Per method, rate, seed and segment: the final validation error and the variance."""
    df = cells(ds, ["variance_per_seed", "final_validation_error"])
    return df.rename(columns={"variance_per_seed": "variance", "final_validation_error": "error"})[
        ["method", "learning_rate", "seed", "segment", "variance", "error"]]


def plot_frontier(ds, path, style=None):
    """The frontier: variance (log) against final validation error, one line per method through
    its grid points (mean over seeds), a 95 % t-interval band over seeds on both axes' means."""
    style, plt = _setup(style)
    df = frontier_frame(ds)
    shown = panel_segments(ds["segment"].values)
    fig, axes = plt.subplots(1, len(shown), figsize=(style["width"] * len(shown) * 0.7,
                                                     style["height"]), sharey=True, squeeze=False)
    for ax, k in zip(axes[0], shown):
        for i, (method, part) in enumerate(df[df["segment"] == k].groupby("method", sort=False)):
            points = []
            for lr, cell in part.groupby("learning_rate"):
                y = paired(np.log(cell["variance"].values))
                points.append((cell["error"].mean(), np.exp(y.mean), np.exp(y.low), np.exp(y.high),
                               lr))
            points.sort()
            x, y, low, high, rates = map(np.asarray, zip(*points))
            color = f"C{i}"
            ax.plot(x, y, "o-", color=color, label=method)
            if np.all(np.isfinite(low)):
                ax.fill_between(x, low, high, color=color, alpha=0.2, lw=0)
            for xi, yi, r in zip(x, y, rates):
                ax.annotate(f"{r:g}", (xi, yi), textcoords="offset points", xytext=(3, 3),
                            fontsize="x-small", color=color)
        ax.set_yscale("log")
        ax.set_title(f"segment {k + 1}")
        ax.set_xlabel("final validation error (%)")
    axes[0][0].set_ylabel("variance of held-out outputs")
    axes[0][0].legend(title="(labels: learning rate)", fontsize="small", title_fontsize="x-small")
    fig.suptitle("Frontier: variance at equal fit (mean over seeds, 95 % band)")
    _save(fig, path, style["dpi"])


def plot_scaling(table, path, style=None):
    """The NG/MSGD variance ratio at matched validation error against stream length, the 95 %
    interval as error bars: a panel per matched MSGD learning rate (a line per segment), and below
    them a panel per segment at the common validation errors (a line per error: equal fit)."""
    style, plt = _setup(style)
    by_rate = table[(table["level_kind"] == "msgd_rate") & table["bracketed"]]
    common = table[(table["level_kind"] == "common_error") & table["bracketed"]]
    rates = sorted(by_rate["matched_level"].unique())
    segments = sorted(common["segment"].unique())
    ncols = max(1, len(rates), len(segments))
    nrows = 2 if len(common) else 1
    fig, axes = plt.subplots(nrows, ncols, figsize=(style["width"] * 0.7 * ncols,
                                                    style["height"] * nrows),
                             sharey=True, squeeze=False)
    panels = [(axes[0][i], by_rate[by_rate["matched_level"] == r], "segment",
               f"at MSGD lr {r:g}'s error", "segment {}") for i, r in enumerate(rates)]
    panels += [(axes[1][i], common[common["segment"] == k], "matched_error",
                f"segment {k}, equal validation error", "{:g} %") for i, k in enumerate(segments)]
    for ax, part, line, title, label in panels:
        for i, (key, rows) in enumerate(part.groupby(line)):
            rows = rows.sort_values("stream_length")
            ax.errorbar(rows["stream_length"], rows["ratio"],
                        yerr=[rows["ratio"] - rows["ci_low"], rows["ci_high"] - rows["ratio"]],
                        fmt="o-", color=f"C{i}", capsize=3, label=label.format(key))
        ax.axhline(1.0, color="0.4", lw=0.8, ls="--")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_title(title)
        ax.legend(fontsize="small")
    fig.supxlabel("online samples of the run")
    fig.tight_layout()
    for row in axes:
        row[0].set_ylabel("NG / MSGD variance (matched error)")
        for ax in row:
            if not ax.has_data():
                ax.set_axis_off()
    _save(fig, path, style["dpi"])
