"""The overfitting experiment's claims: C1-C3 on table 1's restricted MNIST and on every other
table-1 data set that runs NG-unlabeled, C9 on TFD; each read from an experiment's combined store at
the evaluation it reports (`overfitting.reported_at`: early-stopped or final). A claim resting on a
run that diverged is never `holds` or `fails`. The paper's numbers: `aggregate.PAPER`, table 1."""
from __future__ import annotations

import json

import numpy as np

from natgrad.study.claims import verdict as v
from natgrad.study.claims.rows import comparison_row, row
from natgrad.study.overfitting.aggregate import PAPER
from natgrad.study.overfitting.plan import TABLE1
from natgrad.study.overfitting.spec import MAIN
from natgrad.study.statistics import paired

#: C3's NG-same-batch: run at NG-unlabeled's settings (`overfitting.equal_settings`).
SHARED = "ng_same_batch_as_ng_unlabeled"
RESTRICTED = PAPER[MAIN]
#: The paper's differences in table 1 (restricted MNIST), oriented as each claim's comparison: test
#: error points of each rival minus NG-unlabeled's (C1, C2); for C3 NG-unlabeled's minus
#: NG-same-batch's training cross-entropy (nats, each at its own settings: the paper's only number).
PAPER_EFFECTS = {**{m: RESTRICTED[m][1] - RESTRICTED["ng_unlabeled"][1]
                    for m in ("msgd", "ng_different_batch", "ng_same_batch")},
                 SHARED: RESTRICTED["ng_unlabeled"][0] - RESTRICTED["ng_same_batch"][0]}
C1_PAPER = f"{RESTRICTED['ng_unlabeled'][1]:.2f} % vs {RESTRICTED['msgd'][1]:.2f} %"
C2_PAPER = (f"{RESTRICTED['ng_unlabeled'][1]:.2f} % vs {RESTRICTED['ng_different_batch'][1]:.2f} % "
            f"and {RESTRICTED['ng_same_batch'][1]:.2f} %")
#: TFD's accuracies in table 1: NG-unlabeled's, and NG's on the training batch only (the paper's
#: NG-different-batch row of TFD).
C9_PAPER = (f"{100 - PAPER['tfd']['ng_unlabeled'][1]:.2f} % vs "
            f"{100 - PAPER['tfd']['ng_different_batch'][1]:.2f} %")


def rows(paths, settings=None):
    """The claims' rows from `{claims input: store path}` (`plan.claims`; a store not given: its
    claims not run). `settings` (the `overfitting:` section) is not read: the stores hold theirs."""
    from natgrad.study import stores

    return blocks({name: stores.open_results(path) for name, path in paths.items()})


def blocks(opened):
    """From `{claims input: combined store}`: restricted MNIST's C1-C3, each other table-1 store's
    C1-C3 (input `TABLE1` + its name), TFD's C9; each row names its data set."""
    def named(rows, experiment, store):
        return [{**r, "dataset": dataset_label(experiment, store)} for r in rows]

    main, tfd = opened.get(MAIN), opened.get("tfd")
    out = [named(restricted_mnist_claims(main), MAIN, main)]
    out += [named(restricted_mnist_claims(store, name[len(TABLE1):]), name[len(TABLE1):], store)
            for name, store in opened.items() if name.startswith(TABLE1)]
    return out + [named([tfd_claim(tfd)], "tfd", tfd)]


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
        rows.append(f.row(comparison_row(
            "C1", claim, C1_PAPER, [("msgd", paired(d))],
            lambda n, c: f"{err('ng_unlabeled')} vs {err('msgd')} ({at}); "
                         f"difference {c.mean:.2f} points{edges}",
            {"msgd": PAPER_EFFECTS["msgd"]}), used))
    else:
        rows.append(row("C1", claim, C1_PAPER))

    claim = f"{title}: NG-unlabeled test error < NG-different-batch and < NG-same-batch"
    rivals = ("ng_different_batch", "ng_same_batch")
    used = ("ng_unlabeled", *rivals)
    if set(used) <= set(f):
        named = [(m, paired(f[m]["test_error"] - f["ng_unlabeled"]["test_error"])) for m in rivals]
        edges = _edges(store, used)
        rows.append(f.row(comparison_row(
            "C2", claim, C2_PAPER, named,
            lambda n, c: f"{err('ng_unlabeled')} vs {err(rivals[0])}, {err(rivals[1])} ({at}); "
                         f"shown: vs {n}, difference {c.mean:.2f} points{edges}",
            {m: PAPER_EFFECTS[m] for m in rivals}), used))
    else:
        rows.append(row("C2", claim, C2_PAPER))

    claim = (f"{title}: with equal learning rate and damping (appendix 8.7's protocol), "
             "NG-same-batch reaches a lower training cross-entropy than NG-unlabeled at equal "
             "updates")
    paper = ("§5, of TFD (figure 2, appendix 8.7: both at lr 1, LM damping from 8): the unlabeled "
             "metric converges more slowly; table 1's restricted MNIST, each at its own settings, "
             f"has the other order: same batch {RESTRICTED['ng_same_batch'][0]:g} > unlabeled "
             f"{RESTRICTED['ng_unlabeled'][0]:g}")
    used = ("ng_unlabeled", SHARED)
    if set(used) <= set(f):
        d = f["ng_unlabeled"]["train_ce"] - f[SHARED]["train_ce"]
        edges = _edges(store, used)
        rows.append(f.row(comparison_row(
            "C3", claim, paper, [(SHARED, paired(d))],
            lambda n, c: f"same batch {np.nanmean(f[SHARED]['train_ce']):.3g} vs unlabeled "
                         f"{np.nanmean(f['ng_unlabeled']['train_ce']):.3g} nats, both at "
                         f"NG-unlabeled's settings ({at}); difference {c.mean:.3g}{edges}",
            {SHARED: PAPER_EFFECTS[SHARED]}), used))
    else:
        rows.append(row("C3", claim, paper))
    return rows


def tfd_claim(store):
    """C9: on TFD, NG with unlabeled inputs beside the training batch (appendix 8.7) has a lower
    test error than NG on the training batch only."""
    claim = "TFD: NG-unlabeled accuracy > NG with the training batch only"
    paper = C9_PAPER
    f = Reported(store) if store is not None else {}
    used = ("ng_batch_plus_unlabeled", "ng_same_batch")
    if not set(used) <= set(f):
        return row("C9", claim, paper)
    d = f["ng_same_batch"]["test_error"] - f["ng_batch_plus_unlabeled"]["test_error"]

    def acc(m):
        return 100 - float(np.nanmean(f[m]["test_error"]))

    return f.row(comparison_row("C9", claim, paper, [("ng_same_batch", paired(d))],
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
