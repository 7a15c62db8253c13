"""The verdict rule of the claims table, fixed before any run (DESIGN.md §6), on the
intervals of `natgrad.study.statistics.paired`.

A claim is a comparison oriented so that the paper's side is a positive difference. Over the seeds
(each seed one paired sample: the same split, initialisation and data for both sides), the 95 %
Student-t interval of the mean difference decides:

- `holds` when the interval lies above zero (on the paper's side),
- `fails` when it lies below zero,
- `inconclusive` otherwise, and whenever fewer than two seeds make an interval impossible.

A claim made of several comparisons (every segment, both methods, both rivals) holds when each one
holds and fails when any one fails; otherwise it is inconclusive.
"""
from __future__ import annotations

import math

HOLDS, FAILS, INCONCLUSIVE, NOT_RUN = "holds", "fails", "inconclusive", "not run"


def sign_verdict(comparison):
    """`holds` / `fails` / `inconclusive` from where the interval lies with respect to zero."""
    if comparison.low > 0:
        return HOLDS
    if comparison.high < 0:
        return FAILS
    return INCONCLUSIVE


def range_verdict(low, high, lower, upper):
    """An interval [low, high] against a claimed range [lower, upper]: `holds` inside it, `fails`
    entirely outside it, `inconclusive` when it straddles a bound or is undefined."""
    if not (math.isfinite(low) and math.isfinite(high)):
        return INCONCLUSIVE
    if lower <= low and high <= upper:
        return HOLDS
    if high < lower or low > upper:
        return FAILS
    return INCONCLUSIVE


def all_of(verdicts):
    """A claim made of several comparisons: holds if each holds, fails if any fails."""
    verdicts = list(verdicts)
    if verdicts and all(v == HOLDS for v in verdicts):
        return HOLDS
    if any(v == FAILS for v in verdicts):
        return FAILS
    return INCONCLUSIVE
