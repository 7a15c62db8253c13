"""The claims table's row schema, and the rows every experiment's claims build: a row from one or
more comparisons, decided by the rule of `natgrad.study.claims.verdict`."""
from __future__ import annotations

import math

from natgrad.study.claims import verdict as v
from natgrad.study.statistics import Comparison, mde

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


def row(claim_id, claim, paper_value, our_value="", comparison=None, test="", verdict=v.NOT_RUN,
         paper_effect=math.nan, shown="", reported_at="", diverged_runs=""):
    c = comparison or Comparison(math.nan, math.nan, math.nan, 0, math.nan)
    return {"claim_id": claim_id, "claim": claim, "paper_value": paper_value,
            "our_value": our_value, "ci_low": c.low, "ci_high": c.high, "n": c.n, "test": test,
            "p_value": c.p_value, "verdict": verdict, "shown": shown, "paper_effect": paper_effect,
            "mde": mde(c.sd, c.n), "excludes_paper_effect": excludes(c.low, c.high, paper_effect),
            "seeds_for_paper_effect": seeds_needed(c.sd, paper_effect),
            "reported_at": reported_at, "diverged_runs": diverged_runs}


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


def comparison_row(claim_id, claim, paper_value, named, describe, paper_effects=None):
    """A row from one or more named comparisons that must all hold; `paper_effects`: the paper's
    difference of each named comparison (the row shows the `_shown` one's)."""
    verdicts = [v.sign_verdict(c) for _, c in named]
    verdict = v.all_of(verdicts)
    name, comparison, shown = _shown(named, verdicts, verdict)
    return row(claim_id, claim, paper_value, describe(name, comparison), comparison, PAIRED_T
               + ("" if len(named) == 1 else f"; all {len(named)} comparisons must hold"),
               verdict, (paper_effects or {}).get(name, math.nan), shown)
