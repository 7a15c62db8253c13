"""Figures 2 and 4 of the paper from the aggregated Dataset: (left) the training cross-entropy over
the whole training set on a log scale, (right) the test error in %, against the number of updates
or against wall-clock seconds; one line per method (median over seeds, band: the interquartile
range, which one seed's blow-up cannot stretch on a log scale as a min-max band would), and a ring
at the median early-stopped point (each run's evaluation with its lowest validation error: the
paper's protocol, `natgrad.study.overfitting.aggregate.early_stopped`)."""
from __future__ import annotations

import numpy as np

from natgrad.study import figures
from natgrad.study.overfitting.aggregate import early_stopped
from natgrad.study.overfitting.spec import label

AXES = {"updates": ("update", "updates"), "wallclock": ("wall_time", "wall-clock time (s)")}


def curves(ds, x="updates", title=None):
    """A matplotlib Figure with the two panels against `x` ("updates" or "wallclock")."""
    plt = figures.pyplot()
    xvar, xlabel = AXES[x]
    fig, (ax_ce, ax_err) = plt.subplots(1, 2, figsize=(11, 4.2), constrained_layout=True)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    stopped = early_stopped(ds) if np.isfinite(ds["valid_error"].values).any() else None
    for i, m in enumerate(ds["optimizer"].values):
        sub = ds.isel(optimizer=i).transpose("seed", "point")
        valid = sub["update"].values >= 0
        if xvar == "update":
            xs = sub["update"].values[valid].astype(float)
        else:
            xs = np.nanmedian(sub["wall_time"].values[:, valid], axis=0)
        color = colors[i % len(colors)]
        for ax, var in ((ax_ce, "train_ce"), (ax_err, "test_error")):
            ys = sub[var].values[:, valid]
            with np.errstate(all="ignore"):
                low, median, high = np.nanpercentile(ys, (25, 50, 75), axis=0)
            ax.plot(xs, median, color=color, label=label(m), lw=1.6, marker=".", ms=3)
            if ys.shape[0] > 1:
                ax.fill_between(xs, low, high, color=color, alpha=0.15, lw=0)
            if stopped is not None:
                at = stopped.isel(optimizer=i)
                x_at = at["update"] if xvar == "update" else at["wall_time"]
                with np.errstate(all="ignore"):
                    ax.plot(np.nanmedian(x_at.values), np.nanmedian(at[var].values), "o",
                            mfc="none", mec=color, ms=8, mew=1.5)
    ax_ce.set_yscale("log")
    ax_ce.set_ylabel("training cross-entropy (whole training set)")
    ax_err.set_ylabel("test error (%)")
    for ax in (ax_ce, ax_err):
        ax.set_xlabel(xlabel)
        ax.grid(True, which="both", alpha=0.3)
    # natural-gradient runs take far fewer updates (and seconds) than MSGD: a symmetric-log x axis
    # shows both (the paper interrupts its axis instead)
    xs_all = ds["update"].values if xvar == "update" else ds["wall_time"].values
    positive = xs_all[np.isfinite(xs_all) & (xs_all > 0)]
    if positive.size:
        for ax in (ax_ce, ax_err):
            ax.set_xscale("symlog", linthresh=float(positive.min()), linscale=0.5)
            ax.set_xlim(0, float(positive.max()) * 1.1)
    ax_err.legend(fontsize=8, loc="upper right")
    if title:
        fig.suptitle(title)
    return fig


def save_curves(ds, out, x="updates", title=None):
    """Write the figure to `out` (PNG or PDF by suffix), atomically."""
    figures.save(curves(ds, x=x, title=title), out, 120)
