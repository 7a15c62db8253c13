"""The equivalence experiment's claim C8 (section 7): Gauss-Newton equals Fisher, and the
Hessian-free step the natural-gradient step."""
from __future__ import annotations

import math

import numpy as np

from natgrad.study.claims import verdict as v
from natgrad.study.claims.rows import row
from natgrad.study.statistics import Comparison

EQUIVALENCE_TOLERANCE = 1e-10


def rows(paths, settings=None):
    """C8 from `{"equivalence": table.csv}` (`plan.claims`; none: not run)."""
    import pandas as pd

    table = paths.get("equivalence")
    return [[equivalence_claim(pd.read_csv(table) if table else None)]]


def equivalence_claim(table):
    """C8: every difference of the section-7 table (GGN vs Fisher, HF step vs NG step, absolute
    and relative) ≤ 1e-10 for every family."""
    claim = ("§7: Gauss-Newton ≡ Fisher and Hessian-free step ≡ natural-gradient step, to ≤ 1e-10, "
             "for three families")
    paper = "equal (analytically)"
    if table is None:
        return row("C8", claim, paper)
    cols = [c for c in table.columns if "diff" in c]
    worst = float(np.nanmax(table[cols].to_numpy(float)))
    families = ", ".join(table["family"].astype(str))
    ok = worst <= EQUIVALENCE_TOLERANCE and len(table) >= 3
    return row("C8", claim, paper, f"largest difference {worst:.2e} ({families})",
                Comparison(worst, math.nan, math.nan, len(table), math.nan),
                f"max over families of the absolute and relative differences ≤ "
                f"{EQUIVALENCE_TOLERANCE:g}", v.HOLDS if ok else v.FAILS)
