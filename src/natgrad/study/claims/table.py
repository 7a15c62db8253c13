"""The paper's claims C1-C9, each decided from the study's stored results by the rule of `verdict`.

Every claim reads only aggregated results: the overfitting experiments' combined stores (each
method and seed at the evaluation the experiment reports, `overfitting.reported_at`: early-stopped
or final; a claim resting on a run that diverged is never `holds` or `fails`), the order experiment's store (held-out output variance per
method, seed and segment), the toy paths and the equivalence table. A claim whose results are not
among the inputs (an experiment not declared, a method not run) is `not run`.
"""
from __future__ import annotations

import json
import math

import numpy as np

from natgrad.study.claims import verdict as v
from natgrad.study.statistics import Comparison, mde, paired

#: `paper_effect`: the paper's difference in the claim's units (paper's side positive; NaN where it
#: gives none); `mde`: the minimum detectable effect at 80 % power for the row's n and paired sd;
#: `excludes_paper_effect`: the interval lies wholly on one side of `paper_effect` (empty: no
#: interval or no paper effect). They read an interval, the verdict rule ignores them.
#: `shown`: which of a row's comparisons its interval is: `decisive` (a failing claim: the one whose
#: interval lies furthest on the other side), `weakest` (any other claim of several comparisons:
#: the one with the least support), `only` (a claim of one comparison); empty without an interval.
#: `seeds_for_paper_effect`: how many seeds a paired t comparison needs for `mde` to reach the paper's
#: effect at the row's measured sd. `reported_at`: the evaluation of each run a table-1 claim reads;
#: `diverged_runs`: the runs it rests on whose training cross-entropy rose above its start.
#: `dataset`: the data set a table-1 row (C1-C3, C9) was decided on (empty for the others).
COLUMNS = ("claim_id", "dataset", "claim", "paper_value", "our_value", "ci_low", "ci_high", "n", "test",
           "p_value", "verdict", "shown", "paper_effect", "mde", "excludes_paper_effect",
           "seeds_for_paper_effect", "reported_at", "diverged_runs")
DECISIVE, WEAKEST, ONLY = "decisive", "weakest", "only"
MAX_SEEDS = 10_000
PAIRED_T = "paired t over seeds, 95 % interval of the difference"
EQUIVALENCE_TOLERANCE = 1e-10
RATIO_RANGE = (0.5, 2.0)
#: C3's NG-same-batch: run at NG-unlabeled's settings (`overfitting.equal_settings`).
SHARED = "ng_same_batch_as_ng_unlabeled"
#: The paper's differences in table 1 (restricted MNIST), oriented as each claim's comparison: test
#: error points of each rival minus NG-unlabeled's (C1, C2); for C3 NG-unlabeled's minus
#: NG-same-batch's training cross-entropy (nats, each at its own settings: the paper's only number).
PAPER_EFFECTS = {"msgd": 5.22 - 4.63, "ng_different_batch": 4.89 - 4.63,
                 "ng_same_batch": 4.91 - 4.63, SHARED: 0.0017 - 0.0023}


def excludes(low, high, effect):
    """Whether the interval [low, high] excludes `effect` (None where either is undefined)."""
    if not all(math.isfinite(x) for x in (low, high, effect)):
        return None
    return not low <= effect <= high


def seeds_needed(sd, effect):
    """The fewest paired seeds whose `mde` at `sd` is at most |`effect`| (NaN where either is
    undefined or zero, or beyond `MAX_SEEDS`)."""
    if not (math.isfinite(sd) and math.isfinite(effect) and sd > 0 and effect != 0):
        return math.nan
    low, high = 2, MAX_SEEDS
    if mde(sd, high) > abs(effect):
        return math.nan
    while low < high:  # mde falls with n
        mid = (low + high) // 2
        low, high = (mid + 1, high) if mde(sd, mid) > abs(effect) else (low, mid)
    return low


def _row(claim_id, claim, paper_value, our_value="", comparison=None, test="", verdict=v.NOT_RUN,
         paper_effect=math.nan, shown="", reported_at="", diverged_runs=""):
    c = comparison or Comparison(math.nan, math.nan, math.nan, 0, math.nan)
    return {"claim_id": claim_id, "claim": claim, "paper_value": paper_value,
            "our_value": our_value, "ci_low": c.low, "ci_high": c.high, "n": c.n, "test": test,
            "p_value": c.p_value, "verdict": verdict, "shown": shown, "paper_effect": paper_effect,
            "mde": mde(c.sd, c.n), "excludes_paper_effect": excludes(c.low, c.high, paper_effect),
            "seeds_for_paper_effect": seeds_needed(c.sd, paper_effect),
            "reported_at": reported_at, "diverged_runs": diverged_runs}


class Reported(dict):
    """{method: {"test_error": per-seed array, "train_ce": ..., "diverged": ...}} of an overfitting
    combined store at the evaluation it reports (`at`)."""

    def __init__(self, store):
        from natgrad.study.overfitting.aggregate import reported

        self.at = store.attrs.get("reported_at", "final")
        values = reported(store, self.at)
        seeds = store["seed"].values
        super().__init__({str(m): {**{k: values[k].sel(optimizer=m).values
                                      for k in ("test_error", "train_ce")},
                                   "diverged": store["diverged"].sel(optimizer=m).values,
                                   "seeds": seeds}
                          for m in store["optimizer"].values})

    def diverged(self, used):
        """"method seeds a, b; ..." of the runs of `used` that diverged ("" if none)."""
        return "; ".join(f"{m} seed{'s' if d.sum() > 1 else ''} "
                         + ", ".join(str(s) for s in self[m]["seeds"][d])
                         for m in used for d in [np.asarray(self[m]["diverged"], bool)] if d.any())

    def row(self, row, used):
        """`row` (a comparison row of methods `used`) with the evaluation named and its diverged
        runs listed; a verdict resting on a diverged run is inconclusive."""
        row = {**row, "reported_at": self.at, "diverged_runs": self.diverged(used)}
        if row["diverged_runs"] and row["verdict"] in (v.HOLDS, v.FAILS):
            row["test"] += f"; would be {row['verdict']}, but rests on diverged runs"
            row["verdict"] = v.INCONCLUSIVE
        return row


def _weakest(named):
    """Of several (name, Comparison) the one with the least support for the paper (lowest bound)."""
    return min(named, key=lambda nc: (nc[1].low if math.isfinite(nc[1].low) else -math.inf))


def _decisive(named):
    """Of several (name, Comparison) that fail, the one furthest on the other side (lowest upper
    bound)."""
    return min(named, key=lambda nc: nc[1].high)


def _shown(named, verdicts, verdict):
    """(name, Comparison, `shown`) a row of several comparisons shows for its `verdict`."""
    if len(named) == 1:
        return (*named[0], ONLY)
    if verdict == v.FAILS:
        return (*_decisive([nc for nc, x in zip(named, verdicts) if x == v.FAILS]), DECISIVE)
    return (*_weakest(named), WEAKEST)


def _comparison_row(claim_id, claim, paper_value, named, describe, paper_effects=None):
    """A row from one or more named comparisons that must all hold; `paper_effects`: the paper's
    difference of each named comparison (the row shows the `_shown` one's)."""
    verdicts = [v.sign_verdict(c) for _, c in named]
    verdict = v.all_of(verdicts)
    name, comparison, shown = _shown(named, verdicts, verdict)
    return _row(claim_id, claim, paper_value, describe(name, comparison), comparison, PAIRED_T
                + ("" if len(named) == 1 else f"; all {len(named)} comparisons must hold"),
                verdict, (paper_effects or {}).get(name, math.nan), shown)


def _edges(store, used):
    """"; tuned at the edge of its grid: ..." for the tuned methods of `used` whose choice lies at
    an edge of the grid (from the store's config: the tune records the runs read), else ""."""
    hyper = json.loads(store.attrs.get("config", "{}")).get("methods", {})
    edges = [f"{m} ({', '.join(hyper[m]['tuned']['at_edge'])})" for m in used
             if hyper.get(m, {}).get("tuned", {}).get("at_edge")]
    return f"; tuned at the edge of its grid: {'; '.join(edges)}" if edges else ""


def restricted_mnist_claims(store, title="restricted MNIST"):
    """C1-C3 from a table-1 combined store (None: not run): restricted MNIST's, or another data
    set's (`title` opens each claim)."""
    rows = []
    f = Reported(store) if store is not None else {}
    at = {"early_stopped": "each run at its lowest validation error",
          "final": "each run at its last update"}.get(getattr(f, "at", ""), "")

    def err(m):
        return f"{m} {np.nanmean(f[m]['test_error']):.2f} %"

    claim = f"{title}: NG-unlabeled test error < MSGD"
    used = ("ng_unlabeled", "msgd")
    if set(used) <= set(f):
        d = f["msgd"]["test_error"] - f["ng_unlabeled"]["test_error"]
        edges = _edges(store, used)
        rows.append(f.row(_comparison_row(
            "C1", claim, "4.63 % vs 5.22 %", [("msgd", paired(d))],
            lambda n, c: f"{err('ng_unlabeled')} vs {err('msgd')} ({at}); "
                         f"difference {c.mean:.2f} points{edges}",
            {"msgd": PAPER_EFFECTS["msgd"]}), used))
    else:
        rows.append(_row("C1", claim, "4.63 % vs 5.22 %"))

    claim = f"{title}: NG-unlabeled test error < NG-different-batch and < NG-same-batch"
    rivals = ("ng_different_batch", "ng_same_batch")
    used = ("ng_unlabeled", *rivals)
    if set(used) <= set(f):
        named = [(m, paired(f[m]["test_error"] - f["ng_unlabeled"]["test_error"])) for m in rivals]
        edges = _edges(store, used)
        rows.append(f.row(_comparison_row(
            "C2", claim, "4.63 % vs 4.89 % and 4.91 %", named,
            lambda n, c: f"{err('ng_unlabeled')} vs {err(rivals[0])}, {err(rivals[1])} ({at}); "
                         f"shown: vs {n}, difference {c.mean:.2f} points{edges}",
            {m: PAPER_EFFECTS[m] for m in rivals}), used))
    else:
        rows.append(_row("C2", claim, "4.63 % vs 4.89 % and 4.91 %"))

    claim = (f"{title}: with equal learning rate and damping (appendix 8.7's protocol), "
             "NG-same-batch reaches a lower training cross-entropy than NG-unlabeled at equal "
             "updates")
    paper = ("§5, of TFD (figure 2, appendix 8.7: both at lr 1, LM damping from 8): the unlabeled "
             "metric converges more slowly; table 1's restricted MNIST, each at its own settings, "
             "has the other order: same batch 0.0023 > unlabeled 0.0017")
    used = ("ng_unlabeled", SHARED)
    if set(used) <= set(f):
        d = f["ng_unlabeled"]["train_ce"] - f[SHARED]["train_ce"]
        edges = _edges(store, used)
        rows.append(f.row(_comparison_row(
            "C3", claim, paper, [(SHARED, paired(d))],
            lambda n, c: f"same batch {np.nanmean(f[SHARED]['train_ce']):.3g} vs unlabeled "
                         f"{np.nanmean(f['ng_unlabeled']['train_ce']):.3g} nats, both at "
                         f"NG-unlabeled's settings ({at}); difference {c.mean:.3g}{edges}",
            {SHARED: PAPER_EFFECTS[SHARED]}), used))
    else:
        rows.append(_row("C3", claim, paper))
    return rows


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
        return [_row(cid, claim, paper, note, test="no matched level", verdict=v.INCONCLUSIVE)
                for cid, (claim, paper) in claims.items()]
    rows = [_comparison_row(
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
        rows += [_row(cid, *text, "one segment, or no level bracketed at both the first and the "
                      f"last segment; {note}", verdict=v.INCONCLUSIVE)
                 for cid, text in ((c5, c5_text), (c6, c6_text))]
        return rows
    named = []
    for a, b in pairs:
        named.append((f"MSGD lr {a.reference_rate:g}",
                      paired(a.reference_log_variance - b.reference_log_variance)))
        named.append((f"NG at MSGD lr {a.reference_rate:g}'s error",
                      paired(a.log_variance - b.log_variance)))
    rows.append(_comparison_row(
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
    rows.append(_row(c6, *c6_text,
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
        rows = [_row(cid, *text) for cid, text in ORDER_CLAIMS.items()]
        sensitivity = [_row(cid, *text) for cid, text in checks.items()]
    else:
        rows = _order_rows(frontier.store_levels(store, ng, msgd), ORDER_CLAIMS)
        sensitivity = _order_rows(frontier.store_levels(store, ng, msgd, smooth=True), checks)
    return [r for row, check in zip(rows, sensitivity) for r in (_survives(row, check), check)]


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
        return _row("C7", claim, paper)
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
    return _row("C7", claim, paper, described, Comparison(math.nan, math.nan, math.nan, 1,
                                                            math.nan),
                f"nearest of the {len(minima)} grid minima to each path's end (deterministic)",
                v.HOLDS if holds else v.FAILS)


def equivalence_claim(table):
    """C8: every difference of the section-7 table (GGN vs Fisher, HF step vs NG step, absolute
    and relative) ≤ 1e-10 for every family."""
    claim = ("§7: Gauss-Newton ≡ Fisher and Hessian-free step ≡ natural-gradient step, to ≤ 1e-10, "
             "for three families")
    paper = "equal (analytically)"
    if table is None:
        return _row("C8", claim, paper)
    cols = [c for c in table.columns if "diff" in c]
    worst = float(np.nanmax(table[cols].to_numpy(float)))
    families = ", ".join(table["family"].astype(str))
    ok = worst <= EQUIVALENCE_TOLERANCE and len(table) >= 3
    return _row("C8", claim, paper, f"largest difference {worst:.2e} ({families})",
                Comparison(worst, math.nan, math.nan, len(table), math.nan),
                f"max over families of the absolute and relative differences ≤ "
                f"{EQUIVALENCE_TOLERANCE:g}", v.HOLDS if ok else v.FAILS)


def tfd_claim(store):
    """C9: on TFD, NG with unlabeled inputs beside the training batch (appendix 8.7) has a lower
    test error than NG on the training batch only."""
    claim = "TFD: NG-unlabeled accuracy > NG with the training batch only"
    paper = "83.04 % vs 81.13 %"
    f = Reported(store) if store is not None else {}
    used = ("ng_batch_plus_unlabeled", "ng_same_batch")
    if not set(used) <= set(f):
        return _row("C9", claim, paper)
    d = f["ng_same_batch"]["test_error"] - f["ng_batch_plus_unlabeled"]["test_error"]

    def acc(m):
        return 100 - float(np.nanmean(f[m]["test_error"]))

    return f.row(_comparison_row("C9", claim, paper, [("ng_same_batch", paired(d))],
                                 lambda n, c: f"{acc('ng_batch_plus_unlabeled'):.2f} % vs "
                                              f"{acc('ng_same_batch'):.2f} %"), used)


def dataset_label(experiment, store):
    """What a table-1 experiment's rows were decided on: `experiment (data set)`, with the
    deformation and the parts' sample counts of a deformed split (from the store's config)."""
    spec = json.loads(store.attrs.get("config", "{}")) if store is not None else {}
    if "dataset" not in spec:
        return experiment
    deform, split = spec.get("deform"), spec["split"]
    detail = "" if not deform else (
        f", {deform['preset']}-deformed at c_max {deform['c_max']:g}: {split['train']} labelled, "
        f"{split['unlabeled']} pool, {split['valid']} validation, {split['test']} test samples of "
        f"disjoint source images")
    return f"{experiment} ({spec['dataset']}{detail})"


def claims_table(restricted_mnist=None, order=None, toy_paths=None, toy_config=None,
                 equivalence=None, tfd=None, table1=None):
    """The claims table as a DataFrame with `COLUMNS`, C1-C9 in order (inputs None: not run);
    `table1`: `{experiment: combined store}` of table 1's other data sets, whose C1-C3 rows follow
    restricted MNIST's, each naming its data set."""
    import pandas as pd

    def named(rows, experiment, store):
        return [{**row, "dataset": dataset_label(experiment, store)} for row in rows]

    rows = named(restricted_mnist_claims(restricted_mnist), "restricted_mnist", restricted_mnist)
    for experiment, store in (table1 or {}).items():
        rows += named(restricted_mnist_claims(store, experiment), experiment, store)
    rows += (order_claims(order) + [toy_claim(toy_paths, toy_config), equivalence_claim(equivalence)]
             + named([tfd_claim(tfd)], "tfd", tfd))
    return pd.DataFrame(rows, columns=list(COLUMNS)).fillna({"dataset": ""})


def markdown(df, provenance=""):
    """The claims table as Markdown, with the verdict rule stated above it."""
    def cell(value):
        if value is None:
            return ""
        if isinstance(value, float):
            return "" if math.isnan(value) else f"{value:.3g}"
        return str(value).replace("|", "\\|")

    lines = ["# Claims of Pascanu & Bengio (2014), decided by this run", "",
             "Verdict rule, fixed before the run: `holds` when the 95 % interval of the paired "
             "difference over seeds lies on the paper's side of zero, `fails` when it lies on the "
             "other side, `inconclusive` otherwise (and with fewer than two seeds); `not run` when "
             "the claim's results are not declared. A claim of several comparisons holds when each "
             "holds and fails when any fails; `shown` names the comparison its row shows: the "
             "`decisive` one of a failing claim (its interval furthest on the other side), the "
             "`weakest` of any other, the `only` one of a single comparison. C4-S, C5-S and C6-S "
             "redo C4-C6 with NG read off a monotone cubic through every grid point; C4-C6 keep "
             "`holds` or `fails` only when their sensitivity row agrees. Beside the "
             "verdict, not part of it: `paper_effect` is the paper's difference in the claim's "
             "units, `mde` the smallest true difference the row's n and paired sd detect with 80 % "
             "power (two-sided 5 %), `excludes_paper_effect` whether the interval excludes the "
             "paper's difference, `seeds_for_paper_effect` how many seeds would detect the "
             "paper's difference at the measured sd. Table 1's claims read each run at "
             "`reported_at` (fixed in the config before the run) and list the runs they rest on "
             "that diverged (`diverged_runs`): such a claim is inconclusive whatever its "
             "interval.", ""]
    if provenance:
        lines += [provenance, ""]
    lines += ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(cell(r[c]) for c in COLUMNS) + " |" for _, r in df.iterrows()]
    return "\n".join(lines) + "\n"
