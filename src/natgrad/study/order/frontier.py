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
  (positive: the method has the lower variance), gives the interval (`MatchedLevel`);
- a level is flagged `wide` when, for some seed, its bracketing pair's errors lie more than
  `WIDE_BRACKET` points apart: a chord that long can misstate a curved frontier.

`smooth_interpolate` is the sensitivity check of the same reading: through every grid point, a
monotone cubic (PCHIP) of error and of log variance in log learning rate, solved for the level on
the same bracketing pair. It uses the neighbours' slopes, so it bends where the frontier bends,
and with two grid points it is the chord itself.
"""
from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from natgrad.study.kinds import NATURAL_GRADIENT


#: Points of validation error between a bracketing pair's two errors beyond which a level is flagged.
WIDE_BRACKET = 2.0


def bracket(errors, log_variances, level):
    """Index i of the first pair of consecutive grid points (in learning-rate order), both finite,
    whose errors bracket `level`; None when no pair does (outside the frontier's range, or next to
    a missing point)."""
    e = np.asarray(errors, np.float64)
    v = np.asarray(log_variances, np.float64)
    for i in range(len(e) - 1):
        if np.all(np.isfinite([e[i], e[i + 1], v[i], v[i + 1]])) and \
                min(e[i], e[i + 1]) <= level <= max(e[i], e[i + 1]):
            return i
    return None


def interpolate(errors, log_variances, level):
    """The log variance of a frontier at validation error `level`: linear between the `bracket`ing
    pair; NaN when no pair brackets it."""
    i = bracket(errors, log_variances, level)
    if i is None:
        return math.nan
    (a, b), (va, vb) = np.asarray(errors, np.float64)[i:i + 2], np.asarray(log_variances,
                                                                             np.float64)[i:i + 2]
    if a == b:
        return float((va + vb) / 2)
    return float(va + (level - a) / (b - a) * (vb - va))


def smooth_interpolate(rates, errors, log_variances, level):
    """The log variance at `level` on a monotone cubic (PCHIP) through every finite grid point,
    error and log variance each a function of log learning rate: the log rate where the error
    curve meets `level` inside the `bracket`ing pair (PCHIP is monotone between two points, so
    there is one), and the log-variance curve there. NaN when no pair brackets `level`."""
    from scipy.interpolate import PchipInterpolator
    from scipy.optimize import brentq

    i = bracket(errors, log_variances, level)
    if i is None:
        return math.nan
    u, e, v = (np.asarray(x, np.float64) for x in (np.log(rates), errors, log_variances))
    ok = np.isfinite(e) & np.isfinite(v)
    err_curve, var_curve = PchipInterpolator(u[ok], e[ok]), PchipInterpolator(u[ok], v[ok])
    if e[i] == e[i + 1]:
        return float((v[i] + v[i + 1]) / 2)
    if level in (e[i], e[i + 1]):
        return float(v[i] if level == e[i] else v[i + 1])
    return float(var_curve(brentq(lambda x: float(err_curve(x)) - level, u[i], u[i + 1])))


def bracket_gap(errors, log_variances, level):
    """|error difference| (points) of the pair bracketing `level`; NaN when none does."""
    i = bracket(errors, log_variances, level)
    return math.nan if i is None else float(abs(np.diff(np.asarray(errors, np.float64)[i:i + 2])[0]))


class MatchedLevel(NamedTuple):
    """One matched level: the reference method's grid point `reference_rate` at `segment`, and
    per seed its final validation error, its log variance, the other method's interpolated log
    variance at that error (NaN where the other grid does not bracket it) and the error gap of
    the other method's bracketing pair (`bracket_gap`)."""

    segment: int
    reference_rate: float
    errors: np.ndarray
    reference_log_variance: np.ndarray
    log_variance: np.ndarray
    gap: np.ndarray

    @property
    def bracketed(self):
        """Counted: the other method's grid brackets the level for every seed (and, at a common
        error level, the reference's grid too)."""
        return bool(np.all(np.isfinite(self.log_variance))
                    and np.all(np.isfinite(self.reference_log_variance)))

    @property
    def widest_gap(self):
        """The largest bracketing gap over seeds (points; NaN when no seed is bracketed)."""
        gaps = self.gap[np.isfinite(self.gap)]
        return float(gaps.max()) if gaps.size else math.nan

    @property
    def wide(self):
        """Flagged: some seed's bracketing pair lies more than `WIDE_BRACKET` points apart."""
        return bool(self.widest_gap > WIDE_BRACKET)

    @property
    def log_difference(self):
        """Per seed log var_reference − log var_method (positive: the method lower)."""
        return self.reference_log_variance - self.log_variance


def matched_levels(errors, log_variances, reference_errors, reference_log_variances, segments,
                   reference_rates, rates=None):
    """Every (segment, reference grid point) level, in segment then rate order.

    errors, log_variances: the method's (rate, seed, segment) arrays, rates in grid order;
    reference_errors, reference_log_variances: the reference method's, likewise;
    segments, reference_rates: the labels of the segment axis and of the reference's rate axis;
    rates: the method's learning rates: given, its log variance is read off `smooth_interpolate`
    (the sensitivity check) instead of the chord.
    """
    e, v = np.asarray(errors, np.float64), np.asarray(log_variances, np.float64)
    re, rv = np.asarray(reference_errors, np.float64), np.asarray(reference_log_variances,
                                                                  np.float64)
    out = []
    for k, segment in enumerate(segments):
        for j, rate in enumerate(reference_rates):
            levels = re[j, :, k]
            frontiers = [(e[:, s, k], v[:, s, k], level) for s, level in enumerate(levels)]
            interpolated = np.array([interpolate(*f) if rates is None
                                     else smooth_interpolate(rates, *f) for f in frontiers])
            gap = np.array([bracket_gap(*f) for f in frontiers])
            out.append(MatchedLevel(int(segment), float(rate), levels, rv[j, :, k], interpolated,
                                    gap))
    return out


def method_frontier(ds, method):
    """(rates, errors (rate, seed, segment), log variances) of `method` in an aggregated order
    store: the learning rates it ran, in grid order."""
    var = ds["variance_per_seed"].sel(optimizer=method)
    ran = np.isfinite(var.values).all(axis=(1, 2))
    rates = ds["learning_rate"].values[ran]
    errors = ds["final_validation_error"].sel(optimizer=method).values[ran]
    return rates, errors, np.log(var.values[ran])


def store_levels(ds, method, reference, smooth=False):
    """`matched_levels` of `method` against `reference` from an aggregated order store (`smooth`:
    `method` read off `smooth_interpolate`)."""
    rates, errors, log_var = method_frontier(ds, method)
    ref_rates, ref_errors, ref_log_var = method_frontier(ds, reference)
    return matched_levels(errors, log_var, ref_errors, ref_log_var, ds["segment"].values,
                          ref_rates, rates if smooth else None)


def common_errors(stores):
    """The common validation-error levels of several aggregated stores (stream lengths): every
    whole percent that both methods' frontiers span for every seed and segment of every store,
    so the frontier rule brackets it everywhere; the span's midpoint when it is narrower than the
    gap between whole percents (so an overlap is never lost to rounding); empty when the ranges do
    not overlap."""
    low, high = -math.inf, math.inf
    for store in stores:
        for method in store_methods(store):
            _, errors, _ = method_frontier(store, method)
            low = max(low, float(np.min(errors, axis=0).max()))
            high = min(high, float(np.max(errors, axis=0).min()))
    if low > high:
        return []
    whole = [float(e) for e in np.arange(math.ceil(low), math.floor(high) + 1)]
    return whole or [(low + high) / 2]


def error_levels(ds, method, reference, errors):
    """The `MatchedLevel`s of `method` against `reference` at given validation errors (one per
    segment and error; `reference_rate` NaN): both methods' log variances interpolated by the
    frontier rule, the gap the wider of their two bracketing pairs."""
    _, e, v = method_frontier(ds, method)
    _, re, rv = method_frontier(ds, reference)
    out = []
    for k, segment in enumerate(ds["segment"].values):
        for level in errors:
            seeds = range(e.shape[1])
            mine = [(e[:, s, k], v[:, s, k], level) for s in seeds]
            theirs = [(re[:, s, k], rv[:, s, k], level) for s in seeds]
            gap = np.fmax([bracket_gap(*f) for f in mine], [bracket_gap(*f) for f in theirs])
            out.append(MatchedLevel(int(segment), math.nan, np.full(len(seeds), float(level)),
                                    np.array([interpolate(*f) for f in theirs]),
                                    np.array([interpolate(*f) for f in mine]), gap))
    return out


#: The per-level table (`level_rows`); `bracket_gap`: the widest bracketing pair over seeds (points).
LEVEL_COLUMNS = ("segment", "matched_level", "matched_error", "ratio", "ci_low", "ci_high", "n",
                 "bracketed", "bracket_gap", "wide_bracket")


def level_rows(levels):
    """One row per `MatchedLevel`: the geometric-mean ratio method/reference over seeds and its
    95 % interval (NaN when not bracketed), the mean matched error and the bracketing gap."""
    from natgrad.study.statistics import paired

    out = []
    for level in levels:
        c = paired(level.log_variance - level.reference_log_variance) if level.bracketed else None
        out.append({"segment": level.segment + 1, "matched_level": level.reference_rate,
                    "matched_error": float(np.mean(level.errors)),
                    "ratio": math.exp(c.mean) if c else math.nan,
                    "ci_low": math.exp(c.low) if c else math.nan,
                    "ci_high": math.exp(c.high) if c else math.nan,
                    "n": c.n if c else 0, "bracketed": level.bracketed,
                    "bracket_gap": level.widest_gap, "wide_bracket": level.wide})
    return out


def store_methods(store):
    """(MSGD's name, the first natural-gradient method's name) in an aggregated order store, by
    their `kind` and `role` coordinates; None where absent."""
    names = [str(m) for m in store["optimizer"].values]
    msgd = next((m for m, k in zip(names, store["kind"].values) if k == "msgd"), None)
    ng = next((m for m, r in zip(names, store["role"].values) if r == NATURAL_GRADIENT), None)
    return msgd, ng
