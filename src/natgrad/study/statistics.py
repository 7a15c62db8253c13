"""The one interval of the study: a paired comparison over seeds (Student t), used by the claims'
verdicts and by figure 3's confidence band; and the smallest effect such a comparison detects."""
from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

LEVEL = 0.95
POWER = 0.8


class Comparison(NamedTuple):
    """A paired comparison over seeds: mean difference (paper's side positive), its interval, the
    number of pairs, the two-sided p-value of the paired t-test and the standard deviation of the
    differences (NaN where it cannot be made)."""

    mean: float
    low: float
    high: float
    n: int
    p_value: float
    sd: float = math.nan


def paired(differences, level=LEVEL):
    """The `Comparison` of per-seed differences (NaN entries dropped) with a Student-t interval."""
    from scipy import stats

    d = np.asarray(differences, np.float64)
    d = d[np.isfinite(d)]
    n = int(d.size)
    if n == 0:
        return Comparison(math.nan, math.nan, math.nan, 0, math.nan)
    mean = float(d.mean())
    if n < 2:
        return Comparison(mean, math.nan, math.nan, n, math.nan)
    sd = float(d.std(ddof=1))
    if sd == 0.0:  # every pair the same: the interval is the point, the test is decided by its sign
        return Comparison(mean, mean, mean, n, 0.0 if mean != 0 else 1.0, sd)
    half = float(stats.t.ppf(0.5 + level / 2, n - 1)) * sd / math.sqrt(n)
    p = float(2 * stats.t.sf(abs(mean) / (sd / math.sqrt(n)), n - 1))
    return Comparison(mean, mean - half, mean + half, n, p, sd)


def mde(sd, n, level=LEVEL, power=POWER):
    """The minimum detectable effect of a paired t comparison of `n` pairs whose differences have
    standard deviation `sd`: (t_{(1+level)/2, n-1} + t_{power, n-1}) · sd / √n, the true mean
    difference that a two-sided test at 1 − `level` detects with probability ≈ `power` (NaN for
    n < 2): what an inconclusive interval could not have missed."""
    from scipy import stats

    if n < 2 or not math.isfinite(sd):
        return math.nan
    t = stats.t.ppf(0.5 + level / 2, n - 1) + stats.t.ppf(power, n - 1)
    return float(t * sd / math.sqrt(n))
