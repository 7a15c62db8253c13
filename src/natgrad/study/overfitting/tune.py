"""The tune stage: each tuned method's grid run on pilot seeds, and the choice rule, fixed here.

A grid (`overfitting.tune.<method>`) maps hyper-parameters to the values to try; its points are
every combination, keys in alphabetical order (as a job's JSON spec holds them), values in the order
declared. Each point is trained once per
pilot seed (`overfitting.tune_seeds`, never a study seed), with the study's own budget. The choice
rule, fixed here: a point with any diverged pilot run (`natgrad.study.overfitting.loop.diverged`:
its training cross-entropy rose above its start or stopped being finite at some evaluation, even if
it came back) is ineligible; among the rest, the lowest mean *validation* error over the pilot
seeds, each run's read at the evaluation the experiment reports (`reported_at`: its lowest or its
final); on a tie, the first point in grid order. A choice at the edge of its grid (the lowest or
highest of a numeric key's values, when it has more than one) is flagged: the best value may lie
outside the grid. No test error is read.

The record of a method (JSON) holds the grid, the pilot seeds, every point's validation errors,
training cross-entropies (at the reported evaluation and the largest), eligibility and the choice;
the study's runs of that method read their settings from it (`merged`).
"""
from __future__ import annotations

import itertools
import math
import numbers

import numpy as np

from natgrad.study import methods

RULE = ("points with a diverged pilot run are ineligible; of the rest, the lowest mean validation "
        "error (at the reported evaluation) over the pilot seeds; first point in grid order on a tie")
#: The keys of a method's entry besides its kind's hyper-parameters that a grid may vary.
GRID_RUN_KEYS = ("updates", "batch_size")


class TuneConfigError(ValueError):
    """A tune grid the study cannot use; the message names the key."""


def tunable(kind):
    """The keys a grid of method `kind` may vary."""
    return GRID_RUN_KEYS + methods.HYPER_KEYS[kind]


def tuned_hyper(method, hyper, grid, tune_seeds, seeds, reported_at):
    """`method`'s spec entry once tuned: its fixed keys and, instead of the tuned ones, `tune`."""
    where = f"overfitting.tune.{method}"
    if hyper is None:
        raise TuneConfigError(f"{where}: {method} is not among overfitting.methods")
    for key in grid:
        if key not in tunable(method):
            raise TuneConfigError(f"{where}.{key} is not a hyper-parameter of {method} (it reads "
                                  f"{', '.join(tunable(method))})")
    shared = sorted(set(tune_seeds) & set(seeds))
    if shared:
        raise TuneConfigError(f"overfitting.tune_seeds {shared} are study seeds "
                              "(overfitting.seeds): pilot seeds must be others")
    fixed = {k: v for k, v in hyper.items() if k not in grid}
    return {**fixed, "tune": {"method": method, "grid": dict(sorted(grid.items())),
                              "seeds": list(tune_seeds), "reported_at": reported_at}}


def at_settings_of(kind, source, source_hyper):
    """The spec entry of `kind` run at `source`'s settings (its tune record too, when tuned)."""
    where = f"overfitting.equal_settings.{kind}"
    if source_hyper is None:
        raise TuneConfigError(f"{where}: {source} is not among overfitting.methods")
    if kind == source:
        raise TuneConfigError(f"{where}: a method cannot run at its own settings")
    keys = tunable(kind)
    entry = {"kind": kind, **{k: v for k, v in source_hyper.items() if k in keys}}
    grid = source_hyper.get("tune", {}).get("grid", {})
    for key in ("damping",) if kind in methods.METRIC_SOURCE else ("learning_rate",):
        if key not in entry and key not in grid:
            raise TuneConfigError(f"{where}: {source} sets no {key}, which {kind} needs")
    if "tune" in source_hyper:
        entry["tune"] = source_hyper["tune"]
    return entry


def points(grid):
    """Every combination of the grid's values, as settings dicts, in grid order."""
    keys = list(grid)
    return [dict(zip(keys, values)) for values in itertools.product(*(grid[k] for k in keys))]


def pilot_spec(job_spec, method, settings):
    """A job spec with `method` at one grid point (a pilot run's spec: no `tune` left)."""
    hyper = {k: v for k, v in job_spec["methods"][method].items() if k != "tune"}
    return {**job_spec, "methods": {method: {**hyper, **settings}}}


def choose(errors, diverged):
    """Index of the eligible point (no run of it `diverged`, points × seeds) with the lowest mean
    over seeds of `errors` (points × seeds; a NaN error makes a point ineligible too); ties go to
    the first point."""
    errors = np.asarray(errors, np.float64)
    eligible = ~(np.asarray(diverged, bool).any(axis=1) | np.isnan(errors).any(axis=1))
    if not eligible.any():
        raise ValueError("every point of the grid has a diverged pilot run: extend the grid "
                         "towards smaller steps")
    return int(np.argmin(np.where(eligible, errors.mean(axis=1), np.inf)))


def _numeric(value):
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def edge_keys(grid, settings):
    """The numeric keys of `settings` at the lowest or highest of their grid's values (of several)."""
    return [k for k, values in grid.items()
            if len(values) > 1 and all(_numeric(v) for v in values)
            and settings[k] in (min(values), max(values))]


def record(experiment, method, tune, errors, train_ce, max_train_ce, diverged):
    """The tune record: every point's validation errors and training cross-entropies at the
    reported evaluation, largest training cross-entropies, diverged runs (each points × pilot
    seeds), its eligibility and the choice."""
    grid = tune["grid"]
    grid_points = points(grid)
    best = choose(errors, diverged)
    chosen = grid_points[best]
    floats = lambda row: [float(x) for x in row]  # noqa: E731
    return {"experiment": experiment, "method": method, "rule": RULE, "grid": grid,
            "seeds": list(tune["seeds"]), "reported_at": tune["reported_at"], "chosen": chosen,
            "at_edge": edge_keys(grid, chosen),
            "points": [{"settings": p, "validation_errors": floats(err), "train_ce": floats(ce),
                        "max_train_ce": floats(peak), "diverged": [bool(d) for d in div],
                        "eligible": not any(div) and not np.isnan(err).any()}
                       for p, err, ce, peak, div in zip(
                           grid_points, np.asarray(errors, np.float64), np.asarray(train_ce),
                           np.asarray(max_train_ce), np.asarray(diverged, bool))]}


def merged(hyper, record):
    """A tuned spec entry with the record's choice in place of `tune` (only the keys its kind
    reads: a method run at another's settings takes the shared ones) and `tuned`, what chose it."""
    if any(record[k] != hyper["tune"][k] for k in ("grid", "seeds", "reported_at")):
        raise ValueError(f"tune record of {record['method']} is for grid {record['grid']} on seeds "
                         f"{record['seeds']} at {record['reported_at']}, not the job's "
                         f"{hyper['tune']}")
    keys = tunable(hyper.get("kind", record["method"]))
    out = {k: v for k, v in hyper.items() if k != "tune"}
    out.update({k: v for k, v in record["chosen"].items() if k in keys})
    out["tuned"] = {"method": record["method"], "chosen": record["chosen"],
                    "at_edge": record["at_edge"], "seeds": record["seeds"]}
    return out


def rows(record):
    """The record as table rows: one per grid point, its settings, validation errors, the choice."""
    out = []
    for p in record["points"]:
        row = {"experiment": record["experiment"], "method": record["method"], **p["settings"]}
        errors = p["validation_errors"]
        row.update({f"valid_error_seed{s}": e for s, e in zip(record["seeds"], errors)})
        row["valid_error_mean"] = float(np.mean(errors)) if errors else math.nan
        row["train_ce_mean"] = float(np.mean(p["train_ce"])) if p["train_ce"] else math.nan
        row.update({f"max_train_ce_seed{s}": c for s, c in zip(record["seeds"], p["max_train_ce"])})
        row["eligible"] = p["eligible"]
        row["reported_at"] = record["reported_at"]
        row["chosen"] = p["settings"] == record["chosen"]
        row["at_edge"] = row["chosen"] and bool(record["at_edge"])
        row["edge_keys"] = " ".join(record["at_edge"]) if row["chosen"] else ""
        out.append(row)
    return out
