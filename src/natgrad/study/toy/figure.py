"""Figure 1 of the paper: error contours with the four paths, and KL surfaces with each method's step."""
from __future__ import annotations

import numpy as np
from matplotlib.collections import LineCollection
from matplotlib.lines import Line2D

from natgrad.study import figures
from natgrad.study.toy.model import METHOD_COLOUR, METHOD_COLOURS, METHOD_LABELS, METHODS
from natgrad.study.toy.paths import error_surface, kl_surface

plt = figures.pyplot()

def _grid(cfg):
    grid = cfg["grid"]
    b = np.linspace(grid["b"][0], grid["b"][1], int(grid["n"]))
    w = np.linspace(grid["w"][0], grid["w"][1], int(grid["n"]))
    return b, w


def _error_contours(ax, cfg, levels=24):
    b, w = _grid(cfg)
    surface = error_surface(cfg, b, w)
    log_err = np.log10(surface)
    ax.contourf(b, w, log_err, levels=levels, cmap="YlGn_r", alpha=0.55)
    ax.contour(b, w, log_err, levels=levels, colors="0.35", linewidths=0.4)
    ax.set_xlim(b[0], b[-1])
    ax.set_ylim(w[0], w[-1])
    ax.set_xlabel("b")
    ax.set_ylabel("w")


def _draw_path(ax, path, method, lw=2.0):
    """One path as segments shaded by step: every other step a darker shade, darkening with step."""
    pts = path[["b", "w"]].to_numpy()
    segs = np.stack([pts[:-1], pts[1:]], axis=1)
    n = len(segs)
    cmap = plt.get_cmap(METHOD_COLOURS[method])
    shade = 0.62 + 0.38 * np.arange(n) / max(n - 1, 1)
    shade = np.where(np.arange(n) % 2 == 0, shade, shade - 0.22)
    ax.add_collection(LineCollection(segs, colors=cmap(shade), linewidths=lw, zorder=3, capstyle="round"))
    ax.plot(*pts[-1], marker="*", ms=9, color=METHOD_COLOUR[method], mec="k", mew=0.5, zorder=4)


def _legend_handles():
    return [Line2D([0], [0], color=METHOD_COLOUR[m], lw=2.5, label=METHOD_LABELS[m]) for m in METHODS]


def _in_view(ax, b, w):
    (b0, b1), (w0, w1) = ax.get_xlim(), ax.get_ylim()
    return b0 <= b <= b1 and w0 <= w <= w1


def figure1(cfg, paths, points, out_path):
    """The paper's figure 1: left the error contours with the paths from the figure's starts, right the
    KL surfaces at the KL points ([1]…[4]) with each method's proposed step."""
    fig_cfg = cfg["figure"]
    labels = sorted(points["label"].unique())
    ncols = 2
    nrows = int(np.ceil(len(labels) / ncols))
    fig = plt.figure(figsize=(15, 7.2), layout="constrained")
    sub = fig.subfigures(1, 2, width_ratios=[1.15, 1.0])
    ax = sub[0].subplots()
    _error_contours(ax, cfg)
    starts = list(dict.fromkeys(points["start"]))
    for start in starts:
        for method in METHODS:
            path = paths[(paths["start"] == start) & (paths["method"] == method)]
            _draw_path(ax, path, method)
    for label in labels:
        row = points[points["label"] == label].iloc[0]
        if not _in_view(ax, row["b"], row["w"]):
            continue
        ax.annotate(
            f"[{label}]", xy=(row["b"], row["w"]), xytext=(row["b"] - 0.9, row["w"] + 0.55),
            fontsize=12, fontweight="bold", zorder=6,
            arrowprops=dict(arrowstyle="-|>", color="k", lw=1.4, shrinkB=3),
        )
    ax.set_title(
        f"error (log$_{{10}}$ contours) and {cfg['steps']} steps of each method; "
        "★ = after the last step", fontsize=10
    )
    ax.legend(handles=_legend_handles(), loc="lower right", fontsize=9, framealpha=0.9)

    axes = np.atleast_1d(sub[1].subplots(nrows, ncols, squeeze=False)).ravel()
    max_half = float(fig_cfg["kl_max_half_width"])
    n_kl = int(fig_cfg["kl_grid"])
    for kax, label in zip(axes, labels):
        rows = points[points["label"] == label]
        row = rows.iloc[0]
        extent = np.abs(rows[["db", "dw"]].to_numpy()).max()
        half = float(np.clip(1.2 * extent, 0.2, max_half))
        d = np.linspace(-half, half, n_kl)
        kl = kl_surface(cfg, [row["b"], row["w"]], d, d)
        levels = np.quantile(kl[kl > 0], np.linspace(0.02, 0.98, 14))
        levels = np.unique(levels)
        kax.contourf(d, d, kl, levels=np.concatenate([[0], levels, [kl.max()]]), cmap="Blues", alpha=0.6)
        kax.contour(d, d, kl, levels=levels, colors="0.3", linewidths=0.4)
        kax.plot(0, 0, "k+", ms=8)
        for _, r in rows.iterrows():
            kax.annotate(
                "", xy=(r["db"], r["dw"]), xytext=(0, 0), zorder=4,
                arrowprops=dict(arrowstyle="-|>", color=METHOD_COLOUR[r["method"]], lw=2.2,
                                mutation_scale=14),
            )
        kax.set_xlim(-half, half)
        kax.set_ylim(-half, half)
        kax.set_aspect("equal")
        kax.set_xlabel("Δb")
        kax.set_ylabel("Δw")
        kax.set_title(f"[{label}] KL at b={row['b']:.2f}, w={row['w']:.2f} (step {int(row['step'])})",
                      fontsize=9)
    for kax in axes[len(labels):]:
        kax.set_visible(False)
    sub[1].suptitle(r"KL$(p_\theta\,\|\,p_{\theta+\Delta})$ over ($\Delta b$, $\Delta w$) and each method's step",
                    fontsize=10)
    figures.save(fig, out_path, int(fig_cfg["dpi"]))


def all_starts_figure(cfg, paths, out_path):
    """One panel per starting point: the error contours and the four paths."""
    starts = list(dict.fromkeys(paths["start"]))
    ncols = min(3, len(starts))
    nrows = int(np.ceil(len(starts) / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.6 * ncols, 4.3 * nrows), squeeze=False,
                             layout="constrained")
    for ax, start in zip(axes.ravel(), starts):
        _error_contours(ax, cfg, levels=18)
        for method in METHODS:
            path = paths[(paths["start"] == start) & (paths["method"] == method)]
            _draw_path(ax, path, method, lw=1.6)
        first = paths[(paths["start"] == start) & (paths["step"] == 0)].iloc[0]
        ax.plot(first["b"], first["w"], "ko", ms=5, zorder=5)
        ax.set_title(f"start {start}: b={first['b']:.2f}, w={first['w']:.2f}", fontsize=10)
    for ax in axes.ravel()[len(starts):]:
        ax.set_visible(False)
    fig.legend(handles=_legend_handles(), loc="outside lower center", ncols=4, fontsize=9)
    figures.save(fig, out_path, int(cfg["figure"]["dpi"]))
