"""The claims table: every experiment's claims (`natgrad.study.<experiment>.claims.rows`, the
experiments of `natgrad.study.registry`) in one table of `rows.COLUMNS`, each decided by the rule of
`natgrad.study.claims.verdict`; and its Markdown, with the rule stated.

Every claim reads only aggregated results, those its experiment's plan names (`plan.claims`); a
claim whose results are not among them (an experiment not declared, a method not run) is `not run`.
"""
from __future__ import annotations

import math

from natgrad.study.claims.rows import COLUMNS


def claims_table(results=None, settings=None):
    """The claims table as a DataFrame with `COLUMNS`: `results` `{experiment: {claims input: path}}`
    (an experiment's `plan.claims`; missing: its claims not run), `settings` `{experiment: its config
    section}`. Each experiment gives its rows in blocks; the table shows the blocks in the order of
    their first claim's number (C1-C9), each experiment's in its own order."""
    import pandas as pd

    from natgrad.study.registry import EXPERIMENTS

    results, settings = results or {}, settings or {}
    blocks = [block for e in EXPERIMENTS
              for block in e.claim_rows(results.get(e.name, {}), settings.get(e.name))]
    blocks.sort(key=lambda block: claim_number(block[0]["claim_id"]))
    rows = [r for block in blocks for r in block]
    return pd.DataFrame(rows, columns=list(COLUMNS)).fillna({"dataset": ""})


def claim_number(claim_id):
    """9 of "C9", 4 of "C4-S": the paper's claim a row decides."""
    return int(claim_id[1:].split("-")[0])


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
