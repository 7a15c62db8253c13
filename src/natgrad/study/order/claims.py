"""The order experiment's claims C4-C6 (figure 3), each followed by its sensitivity row, from its
aggregated store (held-out output variance per method, seed and segment) at matched validation
error by the rule of `natgrad.study.order.frontier`."""
from __future__ import annotations

import math

import numpy as np

from natgrad.study.claims import verdict as v
from natgrad.study.claims.rows import DECISIVE, ONLY, WEAKEST, comparison_row, row
from natgrad.study.statistics import Comparison, paired

RATIO_RANGE = (0.5, 2.0)


def rows(paths, settings=None):
    """C4-C6 and C4-S-C6-S from `{"order": store path}` (`plan.claims`; none: not run)."""
    from natgrad.study import stores

    return [order_claims(stores.open_results(paths["order"]) if "order" in paths else None)]


def _level_name(level):
    return f"segment {level.segment + 1} at MSGD lr {level.reference_rate:g}"


def _levels_note(levels, counted):
    from natgrad.study.order.frontier import WIDE_BRACKET

    skipped = [_level_name(lv) for lv in levels if not lv.bracketed]
    wide = [f"{_level_name(lv)} ({lv.widest_gap:.1f})" for lv in counted if lv.wide]
    return (f"{len(counted)} of {len(levels)} matched levels bracketed by NG's grid for every seed"
            + (f" (not bracketed: {'; '.join(skipped)})" if skipped else "")
            + (f"; NG's bracketing pair more than {WIDE_BRACKET:g} points apart at: "
               f"{'; '.join(wide)}" if wide else ""))


ORDER_CLAIMS = {
    "C4": ("figure 3: NG's held-out output variance < MSGD's at every resampled segment, at "
           "matched validation error (frontier interpolation)", "NG below MSGD at all 10 segments"),
    "C5": ("figure 3: for both methods the first segment induces more variance than the last "
           "resampled one (at matched validation error)", "first > last for both"),
    "C6": ("figure 3: NG's first-segment variance is of the magnitude of MSGD's last-segment "
           f"variance (ratio in [{RATIO_RANGE[0]:g}, {RATIO_RANGE[1]:g}], at matched "
           "validation error)", "about 1"),
}
#: The sensitivity rows' id suffix and what they change (`frontier.smooth_interpolate`).
SENSITIVITY = ("-S", "sensitivity: NG read off a monotone cubic (PCHIP in log learning rate) "
                     "through every grid point instead of the chord between the bracketing pair")


def _order_rows(levels, claims):
    """The C4-C6 rows (ids and texts from `claims`) of one reading of the matched levels."""
    (c4, c4_text), (c5, c5_text), (c6, c6_text) = claims.items()
    counted = [lv for lv in levels if lv.bracketed]
    note = _levels_note(levels, counted)
    if not counted:
        return [row(cid, claim, paper, note, test="no matched level", verdict=v.INCONCLUSIVE)
                for cid, (claim, paper) in claims.items()]
    rows = [comparison_row(
        c4, *c4_text,
        [(_level_name(lv), paired(lv.log_difference)) for lv in counted],
        lambda n, c: "NG/MSGD variance ratio per level "
                     + ", ".join(f"{_level_name(lv)}: {math.exp(-np.mean(lv.log_difference)):.2f}"
                                 for lv in counted)
                     + f"; shown: {n}, log ratio MSGD/NG {c.mean:.3g}; {note}")]
    rows[0]["test"] = ("paired t over seeds on log var(MSGD) − log var(NG) at matched validation "
                       f"error; all {len(counted)} levels must hold")
    first, last = min(lv.segment for lv in levels), max(lv.segment for lv in levels)
    by_key = {(lv.segment, lv.reference_rate): lv for lv in levels}
    pairs = [(by_key[first, lv.reference_rate], by_key[last, lv.reference_rate])
             for lv in levels if lv.segment == first
             and by_key[first, lv.reference_rate].bracketed and by_key[last, lv.reference_rate].bracketed]
    if not pairs or first == last:
        rows += [row(cid, *text, "one segment, or no level bracketed at both the first and the "
                      f"last segment; {note}", verdict=v.INCONCLUSIVE)
                 for cid, text in ((c5, c5_text), (c6, c6_text))]
        return rows
    named = []
    for a, b in pairs:
        named.append((f"MSGD lr {a.reference_rate:g}",
                      paired(a.reference_log_variance - b.reference_log_variance)))
        named.append((f"NG at MSGD lr {a.reference_rate:g}'s error",
                      paired(a.log_variance - b.log_variance)))
    rows.append(comparison_row(
        c5, *c5_text, named,
        lambda n, c: f"first/last (segment {first + 1}/{last + 1}) variance ratio, geometric mean "
                     f"over seeds: shown {n} {math.exp(c.mean):.2f}; " + ", ".join(
                         f"{nm} {math.exp(cm.mean):.2f}" for nm, cm in named) + f"; {note}"))
    rows[-1]["test"] = ("paired t over seeds on the log variance, first − last segment, at "
                        f"matched levels; all {len(named)} comparisons must hold")
    ratios = []
    for a, b in pairs:
        log_ratio = paired(a.log_variance - b.reference_log_variance)
        ratios.append((a.reference_rate, Comparison(math.exp(log_ratio.mean), math.exp(log_ratio.low),
                                                    math.exp(log_ratio.high), log_ratio.n,
                                                    log_ratio.p_value, log_ratio.sd)))
    verdicts = [v.range_verdict(c.low, c.high, *RATIO_RANGE) for _, c in ratios]
    verdict = v.all_of(verdicts)
    failing = [rc for rc, x in zip(ratios, verdicts) if x == v.FAILS]
    rate, worst = max(failing if verdict == v.FAILS else ratios,
                      key=lambda rc: abs(math.log(rc[1].mean)))
    shown = ONLY if len(ratios) == 1 else DECISIVE if verdict == v.FAILS else WEAKEST
    rows.append(row(c6, *c6_text,
                     "NG first / MSGD last (geometric mean over seeds) per MSGD level: "
                     + ", ".join(f"lr {r:g}: {c.mean:.2f}" for r, c in ratios)
                     + f"; shown: lr {rate:g}; {note}", worst,
                     "paired t on the log ratio over seeds; 95 % interval of the ratio inside "
                     f"[{RATIO_RANGE[0]:g}, {RATIO_RANGE[1]:g}] at every level",
                     verdict, shown=shown))
    return rows


def _survives(row, check):
    """`row` with its verdict kept only when its sensitivity row `check` agrees: a `holds` or
    `fails` the other reading does not give becomes inconclusive, and the test says why."""
    if row["verdict"] in (v.HOLDS, v.FAILS) and check["verdict"] != row["verdict"]:
        row = {**row, "test": f"{row['test']}; would be {row['verdict']}, but {check['claim_id']} "
                              f"gives {check['verdict']}", "verdict": v.INCONCLUSIVE}
    return row


def order_claims(store):
    """C4-C6 from the order experiment's aggregated store (None: not run), on the frontier, each
    followed by its sensitivity row (C4-S, C5-S, C6-S).

    Every comparison is at matched validation error by the rule of `natgrad.study.order.frontier`:
    at each MSGD grid point's final validation error (per seed and segment) NG's log variance is
    interpolated between the NG grid points that bracket it; a level not bracketed for every seed
    does not count; no level counted leaves the claim inconclusive. The sensitivity rows read NG
    off `frontier.smooth_interpolate` instead; a claim's `holds` or `fails` stands only when its
    sensitivity row gives the same verdict."""
    from natgrad.study.order import frontier

    suffix, change = SENSITIVITY
    checks = {f"{cid}{suffix}": (f"{claim} — {change}", paper)
              for cid, (claim, paper) in ORDER_CLAIMS.items()}
    msgd, ng = frontier.store_methods(store) if store is not None else (None, None)
    if msgd is None or ng is None:
        rows = [row(cid, *text) for cid, text in ORDER_CLAIMS.items()]
        sensitivity = [row(cid, *text) for cid, text in checks.items()]
    else:
        rows = _order_rows(frontier.store_levels(store, ng, msgd), ORDER_CLAIMS)
        sensitivity = _order_rows(frontier.store_levels(store, ng, msgd, smooth=True), checks)
    return [r for row, check in zip(rows, sensitivity) for r in (_survives(row, check), check)]
