"""The experiments of the `overfitting:` config section, resolved into self-contained specs.

The section itself describes table 1's first row, restricted MNIST (`dataset`, `split`, `model`,
`seeds`, `evaluations`, `methods`: the list of methods to run, `hyper`: their hyper-parameters by
method name), optionally `tune` (grids of hyper-parameters per method, chosen on the pilot
seeds `tune_seeds` by `natgrad.study.overfitting.tune`) and `equal_settings` (`{kind: method}`: also
run `kind` at `method`'s settings, tuned ones included, as the method `<kind>_as_<method>`: appendix
8.7's equal-settings protocol, claim C3); `deform` (null, or a deformed split: `split` then counts
NISTP-deformed samples of disjoint source images, `natgrad.study.overfitting.split`); `extra:` names
further rows of table 1 (the MNIST convnet, the TFD model, a deformed large-pool data set) with the
same keys plus `enabled` (off by default) — each key it omits is taken from the section, and each
method it lists under `hyper` replaces the section's entry for that method; `tune` and
`equal_settings` only where the row sets its own (its methods may differ), with the section's
`tune_seeds` unless it sets them. `methods` is a list so
that a config file layered on top (`--configfile`) replaces it rather than merging into it.

`reported_at` (`early_stopped` or `final`, `natgrad.study.overfitting.aggregate.REPORTED_AT`) is
the evaluation of each run that table 1's claims and the tune stage's choice read; it is not part
of a job's spec (a run's curves do not depend on it), so changing it re-analyses, never retrains.
NG kinds of one experiment share one step rule (`reject`): table 1 compares their metrics.

A resolved spec is a plain dict (passed to a job as JSON) whose `methods` maps each method to run
to its hyper-parameters; a tuned method's entry holds `tune` (its grid, the pilot seeds and the
method whose tune record it reads) instead of the tuned keys, and a method run at another's
settings holds its `kind`. Every function takes the section as `natgrad.study.config.resolve`
returns it (the schema's defaults filled in).
"""
from __future__ import annotations

import copy

from natgrad.study import kinds, methods
from natgrad.study.overfitting import tune as tune_lib

MAIN = "restricted_mnist"
SPEC_KEYS = ("dataset", "split", "deform", "model", "seeds", "evaluations", "schedule", "methods",
             "hyper")
#: Hyper-parameters of the job itself (how long, how big the batches, how often evaluated).
RUN_KEYS = ("updates", "batch_size", "eval_every")
#: Keys a method kind cannot run without (besides `updates` and `batch_size`).
NEEDED = {"ng_different_batch": ("metric_batch_size", "damping"),
          "ng_unlabeled": ("metric_batch_size", "damping"),
          "ng_batch_plus_unlabeled": ("metric_batch_size", "damping"),
          "ng_same_batch": ("damping",), "covariance": ("damping",),
          "msgd": ("learning_rate",), "adam": ("learning_rate",)}


class OverfittingConfigError(ValueError):
    """A config value the experiment cannot use; the message names the key."""


def kind_of(method, hyper):
    """The method kind a run of `method` trains (its name, unless it runs at another's settings)."""
    return hyper.get("kind", method)


def label(method):
    """A method's name for tables and legends; `<kind>_as_<other>` is `kind` at `other`'s settings."""
    kind, _, other = str(method).partition("_as_")
    if other:
        return f"{kinds.LABELS.get(kind, kind)} at {kinds.LABELS.get(other, other)}'s settings"
    return kinds.LABELS.get(kind, kind)


def _check_step_rule(name, hypers):
    """One step rule (`reject`) for every natural-gradient method of an experiment."""
    rules = {m: bool(h.get("reject", False)) for m, h in hypers.items()
             if kind_of(m, h) in methods.METRIC_SOURCE}
    if len(set(rules.values())) > 1:
        listed = ", ".join(f"{m}: {r}" for m, r in rules.items())
        raise OverfittingConfigError(f"overfitting ({name}): the natural-gradient methods differ in "
                                     f"`reject` ({listed}); table 1 compares their metrics, so "
                                     "they must share one step rule")


def reported_at(section, experiment=MAIN):
    """The evaluation an experiment reports (`early_stopped` needs a validation split)."""
    entry = section if experiment == MAIN else {**section, **section["extra"][experiment]}
    at = entry.get("reported_at", "early_stopped")
    valid = (entry.get("split") or {}).get("valid", 0)
    if at == "early_stopped" and not valid:
        where = "overfitting" if experiment == MAIN else f"overfitting.extra.{experiment}"
        raise OverfittingConfigError(f"{where}.reported_at is early_stopped, which needs a "
                                     "validation split, but split.valid is 0 or missing")
    return at


def _resolve(name, raw, tune=None, tune_seeds=(), equal_settings=None, at="final"):
    spec = {k: raw[k] for k in SPEC_KEYS if k != "hyper"}
    spec["methods"] = {}
    for method in raw["methods"]:
        if method not in raw["hyper"]:
            raise OverfittingConfigError(f"overfitting.hyper.{method} is missing: experiment "
                                         f"{name} runs {method}")
        hyper = raw["hyper"][method]
        for key in NEEDED.get(method, ()):
            if key not in hyper:
                raise OverfittingConfigError(f"overfitting.hyper.{method}.{key} is needed by "
                                             f"{method} (experiment {name})")
        keys = RUN_KEYS + methods.HYPER_KEYS[method]
        spec["methods"][method] = {k: hyper[k] for k in keys if k in hyper}
    _check_step_rule(name, spec["methods"])
    for method, grid in (tune or {}).items():
        spec["methods"][method] = tune_lib.tuned_hyper(method, spec["methods"].get(method), grid,
                                                       tune_seeds, spec["seeds"], at)
    for kind, source in (equal_settings or {}).items():
        spec["methods"][f"{kind}_as_{source}"] = tune_lib.at_settings_of(
            kind, source, spec["methods"].get(source))
    return spec


def experiments(section):
    """`{name: spec}` for the main experiment and every enabled extra, in config order."""
    main = {k: copy.deepcopy(section[k]) for k in SPEC_KEYS}
    out = {MAIN: _resolve(MAIN, main, section.get("tune"), section.get("tune_seeds", ()),
                          section.get("equal_settings"), reported_at(section))}
    for name, extra in (section.get("extra") or {}).items():
        if not extra.get("enabled", False):
            continue
        raw = {k: copy.deepcopy(extra.get(k, main[k])) for k in SPEC_KEYS}
        raw["hyper"] = {**main["hyper"], **(extra.get("hyper") or {})}
        at = reported_at(section, name)
        try:
            out[name] = _resolve(name, raw, extra.get("tune"),
                                 extra.get("tune_seeds", section.get("tune_seeds", ())),
                                 extra.get("equal_settings"), at)
        except tune_lib.TuneConfigError as err:
            raise OverfittingConfigError(f"overfitting.extra.{name}: {err}") from None
    return out


def job_spec(section, experiment, method):
    """One job's spec: its experiment's spec with only its own method's hyper-parameters (the
    training rule's parameter, so another method's settings never rerun this job)."""
    spec = dict(experiments(section)[experiment])
    spec["methods"] = {method: spec["methods"][method]}
    spec.pop("seeds")
    return spec


def eval_points(spec, method):
    """The updates after which `method` is evaluated, 0 and the last included: every `eval_every`
    updates if the method sets it, else `evaluations` points spaced evenly (`schedule: linear`) or
    evenly in log(updates) from update 1 (`log`: dense early, where the curves move fastest; points
    that round to the same update count once), so methods with equal updates share every point."""
    hyper = spec["methods"][method]
    updates = int(hyper["updates"])
    if "eval_every" in hyper:
        every = max(1, int(hyper["eval_every"]))
        return sorted(set(range(0, updates, every)) | {updates})
    k = max(1, min(int(spec["evaluations"]), updates))
    if spec["schedule"] == "log":
        return sorted({0, updates} | {int(round(updates ** (i / k))) for i in range(k + 1)})
    return sorted({round(i * updates / k) for i in range(k + 1)})
