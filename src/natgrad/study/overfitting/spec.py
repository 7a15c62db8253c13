"""The experiments of the `overfitting:` config section, resolved into self-contained specs.

The section itself describes table 1's first row, restricted MNIST (`dataset`, `split`, `model`,
`seeds`, `evaluations`, `methods`: the list of methods to run, `hyper`: their hyper-parameters by
method name); `extra:` names further rows of table 1 (the MNIST convnet, the TFD model) with the
same keys plus `enabled` (off by default) — each key it omits is taken from the section, and each
method it lists under `hyper` replaces the section's entry for that method. `methods` is a list so
that a config file layered on top (`--configfile`) replaces it rather than merging into it.

A resolved spec is a plain dict (passed to a job as JSON) whose `methods` maps each method to run
to its hyper-parameters. Every function takes the section as `natgrad.study.config.resolve`
returns it (the schema's defaults filled in).
"""
from __future__ import annotations

import copy

from natgrad.study import methods

MAIN = "restricted_mnist"
SPEC_KEYS = ("dataset", "split", "model", "seeds", "evaluations", "methods", "hyper")
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


def _resolve(name, raw):
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
    return spec


def experiments(section):
    """`{name: spec}` for the main experiment and every enabled extra, in config order."""
    main = {k: copy.deepcopy(section[k]) for k in SPEC_KEYS}
    out = {MAIN: _resolve(MAIN, main)}
    for name, extra in (section.get("extra") or {}).items():
        if not extra.get("enabled", False):
            continue
        raw = {k: copy.deepcopy(extra.get(k, main[k])) for k in SPEC_KEYS}
        raw["hyper"] = {**main["hyper"], **(extra.get("hyper") or {})}
        out[name] = _resolve(name, raw)
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
    updates if the method sets it, else `evaluations` evenly spaced points."""
    hyper = spec["methods"][method]
    updates = int(hyper["updates"])
    if "eval_every" in hyper:
        every = max(1, int(hyper["eval_every"]))
        return sorted(set(range(0, updates, every)) | {updates})
    k = max(1, min(int(spec["evaluations"]), updates))
    return sorted({round(i * updates / k) for i in range(k + 1)})
