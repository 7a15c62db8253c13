"""The toy experiment's claim C7 (figure 1): which minimum each method's path reaches."""
from __future__ import annotations

import math

import numpy as np

from natgrad.study.claims import verdict as v
from natgrad.study.claims.rows import row
from natgrad.study.statistics import Comparison


def rows(paths, settings=None):
    """C7 from `{"toy_paths": paths.csv}` (`plan.claims`; none: not run) and `settings`, the `toy:`
    section (its grid locates the minima)."""
    import pandas as pd

    paths_csv = paths.get("toy_paths")
    return [[toy_claim(pd.read_csv(paths_csv, dtype={"start": str}) if paths_csv else None, settings)]]


def grid_minima(error, b_values, w_values):
    """(b, w) of the strict local minima of a gridded error surface (rows w, columns b)."""
    inner = error[1:-1, 1:-1]
    neighbours = [error[1 + di:error.shape[0] - 1 + di, 1 + dj:error.shape[1] - 1 + dj]
                  for di in (-1, 0, 1) for dj in (-1, 0, 1) if (di, dj) != (0, 0)]
    is_min = np.all([inner < n for n in neighbours], axis=0)
    rows, cols = np.nonzero(is_min)
    return [(float(b_values[c + 1]), float(w_values[r + 1])) for r, c in zip(rows, cols)]


def toy_claim(paths, toy_config, start="3"):
    """C7: from `start`, the minimum each method's path ends nearest to (minima of the error on
    the config's grid); holds when Amari's natural gradient ends at another minimum than each of
    the other three methods."""
    claim = (f"figure 1: from start [{start}], Amari's natural gradient reaches the other minimum, "
             "the other three methods do not")
    paper = "only natural gradient reaches the other minimum"
    if paths is None:
        return row("C7", claim, paper)
    from natgrad.study.toy.paths import error_surface

    grid = toy_config["grid"]
    b = np.linspace(*grid["b"], int(grid["n"]))
    w = np.linspace(*grid["w"], int(grid["n"]))
    minima = grid_minima(error_surface(toy_config, b, w), b, w)
    ends = paths[paths["start"].astype(str) == start]
    ends = ends[ends["step"] == ends["step"].max()].set_index("method")

    def nearest(method):
        bw = np.array([ends.loc[method, "b"], ends.loc[method, "w"]])
        return min(minima, key=lambda m: float(np.hypot(*(bw - m))))

    reached = {m: nearest(m) for m in ends.index}
    others = [m for m in reached if m != "amari"]
    holds = all(reached[m] != reached["amari"] for m in others)
    described = "; ".join(f"{m} → ({reached[m][0]:.2f}, {reached[m][1]:.2f})" for m in reached)
    return row("C7", claim, paper, described, Comparison(math.nan, math.nan, math.nan, 1,
                                                            math.nan),
                f"nearest of the {len(minima)} grid minima to each path's end (deterministic)",
                v.HOLDS if holds else v.FAILS)
