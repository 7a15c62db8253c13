"""Figure 3 at equal fit: each method's frontier (held-out output variance against final
validation error over its learning-rate grid) and the rule that compares two methods on it.

The paper (§6) notes that the variance grows with how far a run moves in function space, so a
method's variance means something only beside its fit. The rule, fixed before any run:

- a method's frontier, for one seed and segment, is its grid points (final validation error,
  log variance) in learning-rate order;
- each grid point of the *reference* method (MSGD) is a matched level: its own final validation
  error e for that seed and segment;
- the other method's log variance at e is interpolated linearly between the two consecutive grid
  points whose errors bracket e (the lowest-rate such pair), never extrapolated
  (`interpolate`); a level that the grid does not bracket for every seed does not count;
- at each counted level the paired difference over seeds, log var_reference − log var_method
  (positive: the method has the lower variance), gives the interval (`MatchedLevel`).
"""
from __future__ import annotations

import json
import math
from typing import NamedTuple

import numpy as np


def interpolate(errors, log_variances, level):
    """The log variance of a frontier at validation error `level`: linear between the first pair
    of consecutive grid points (in learning-rate order) whose errors bracket `level`; NaN when no
    pair brackets it (outside the frontier's range, or next to a missing point)."""
    e = np.asarray(errors, np.float64)
    v = np.asarray(log_variances, np.float64)
    for i in range(len(e) - 1):
        a, b = e[i], e[i + 1]
        if not np.all(np.isfinite([a, b, v[i], v[i + 1]])):
            continue
        if min(a, b) <= level <= max(a, b):
            if a == b:
                return float((v[i] + v[i + 1]) / 2)
            return float(v[i] + (level - a) / (b - a) * (v[i + 1] - v[i]))
    return math.nan


class MatchedLevel(NamedTuple):
    """One matched level: the reference method's grid point `reference_rate` at `segment`, and
    per seed its final validation error, its log variance and the other method's interpolated log
    variance at that error (NaN where the other grid does not bracket it)."""

    segment: int
    reference_rate: float
    errors: np.ndarray
    reference_log_variance: np.ndarray
    log_variance: np.ndarray

    @property
    def bracketed(self):
        """Counted: the other method's grid brackets the level for every seed."""
        return bool(np.all(np.isfinite(self.log_variance)))

    @property
    def log_difference(self):
        """Per seed log var_reference − log var_method (positive: the method lower)."""
        return self.reference_log_variance - self.log_variance


def matched_levels(errors, log_variances, reference_errors, reference_log_variances, segments,
                   reference_rates):
    """Every (segment, reference grid point) level, in segment then rate order.

    errors, log_variances: the method's (rate, seed, segment) arrays, rates in grid order;
    reference_errors, reference_log_variances: the reference method's, likewise;
    segments, reference_rates: the labels of the segment axis and of the reference's rate axis.
    """
    e, v = np.asarray(errors, np.float64), np.asarray(log_variances, np.float64)
    re, rv = np.asarray(reference_errors, np.float64), np.asarray(reference_log_variances,
                                                                  np.float64)
    out = []
    for k, segment in enumerate(segments):
        for j, rate in enumerate(reference_rates):
            levels = re[j, :, k]
            interpolated = np.array([interpolate(e[:, s, k], v[:, s, k], level)
                                     for s, level in enumerate(levels)])
            out.append(MatchedLevel(int(segment), float(rate), levels, rv[j, :, k], interpolated))
    return out


def method_frontier(ds, method):
    """(rates, errors (rate, seed, segment), log variances) of `method` in an aggregated order
    store: the learning rates it ran, in grid order."""
    var = ds["variance_per_seed"].sel(optimizer=method)
    ran = np.isfinite(var.values).all(axis=(1, 2))
    rates = ds["learning_rate"].values[ran]
    errors = ds["final_validation_error"].sel(optimizer=method).values[ran]
    return rates, errors, np.log(var.values[ran])


def store_levels(ds, method, reference):
    """`matched_levels` of `method` against `reference` from an aggregated order store."""
    _, errors, log_var = method_frontier(ds, method)
    ref_rates, ref_errors, ref_log_var = method_frontier(ds, reference)
    return matched_levels(errors, log_var, ref_errors, ref_log_var, ds["segment"].values,
                          ref_rates)


def store_methods(store):
    """(MSGD's name, NG's name) in an aggregated order store, by their kinds; None where absent."""
    configs = json.loads(store.attrs["job_configs"])
    kinds = {m: next(iter(by_rate.values()))["hyper"]["kind"] for m, by_rate in configs.items()}
    msgd = next((m for m, k in kinds.items() if k == "msgd"), None)
    ng = next((m for m, k in kinds.items() if k in ("ng_same_batch", "covariance")), None)
    return msgd, ng
