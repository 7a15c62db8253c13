"""The order-robustness experiment's pure bookkeeping (paper §6, appendix 8.8).

Protocol (Erhan et al. 2010): one online run reads `online_samples` samples of the NISTP stream
(`natgrad.study.data.stream`), `batch_size` at a time (step t reads stream positions
[t·B, (t+1)·B)). The first `segments · segment_size` positions are cut into segments of
`segment_size` samples; the job for (segment k, resample r) trains on the base stream with segment k
replaced by resample r's fresh samples (the stream's `replace_segment(k, r)`), the other segments
bit-identical. Every sample is a pure function of (data seed, position, and the resample for the
replaced segment): adding a resample, a segment or a method leaves the numbers of every existing job
unchanged, which is what makes the workflow incremental.

A segment is a fixed number of samples (not a fraction of the run): adding segments extends the
resampled region without moving the existing boundaries. The paper: 32.7M samples, the first half
in 10 segments, i.e. `segment_size = 1_635_000`, `segments = 10`.

Every function here takes the `order:` section as `natgrad.study.registry.resolve` returns it
(defaults filled in from the schema).
"""
from __future__ import annotations

from natgrad.study import kinds, methods

#: Keys of `order:` the data sets (train part, held-out and validation sets) depend on.
DATA_KEYS = ("dataset", "preset", "c_max", "image_size", "data_seed", "heldout_size",
             "validation_size", "heldout_fraction", "validation_fraction")
#: Keys that determine a training job's numbers, besides its own method's settings.
TRAIN_KEYS = DATA_KEYS + ("online_samples", "segment_size", "model", "batch_size", "eval_every",
                          "eval_batch_size")
#: The method kinds an online run can use: first-order, or natural gradient with its metric on the
#: gradient's own minibatch (the stream has no pool and no second batch).
METHOD_KINDS = tuple(kind for kind in kinds.KINDS if kinds.ROLES[kind] == kinds.FIRST_ORDER
                     or methods.METRIC_SOURCE.get(kind) == "same")


class OrderConfigError(ValueError):
    """A config value the experiment cannot use; the message names the key."""


def check(cfg):
    """Cross-key checks the JSON schema cannot express; raises `OrderConfigError` naming the key."""
    n, b = cfg["online_samples"], cfg["batch_size"]
    if n // b < 1:
        raise OrderConfigError(f"order.online_samples ({n}) must hold at least one minibatch "
                               f"(order.batch_size = {b})")
    if cfg["segments"] * cfg["segment_size"] > n:
        raise OrderConfigError(
            f"order.segments × order.segment_size = {cfg['segments']} × {cfg['segment_size']} "
            f"exceeds order.online_samples = {n}")
    frontier = cfg.get("frontier") or {}
    for name, rates in frontier.items():
        if name not in cfg["methods"]:
            raise OrderConfigError(f"order.frontier.{name} is not one of order.methods "
                                   f"({', '.join(cfg['methods'])})")
        fixed = cfg["methods"][name].get("learning_rate")
        if fixed is not None and float(fixed) not in [float(r) for r in rates]:
            raise OrderConfigError(f"order.frontier.{name} = {list(rates)} must include "
                                   f"order.methods.{name}.learning_rate = {fixed}")
    for name, hyper in cfg["methods"].items():
        if hyper["kind"] not in METHOD_KINDS:
            raise OrderConfigError(f"order.methods.{name}.kind must be one of {METHOD_KINDS}")
        if "learning_rate" not in hyper and name not in frontier:
            raise OrderConfigError(f"order.methods.{name}.learning_rate is needed (or a grid in "
                                   "order.frontier)")
        if "damping" in methods.HYPER_KEYS[hyper["kind"]] and "damping" not in hyper:
            raise OrderConfigError(f"order.methods.{name}.damping is needed by kind {hyper['kind']}")
    return cfg


def data_config(cfg):
    """The keys of `order:` the data sets depend on (the data rule's parameters)."""
    return {k: cfg[k] for k in DATA_KEYS}


def learning_rates(cfg, method):
    """The learning rates `method` runs at: its frontier grid (`order.frontier`), else its one
    `learning_rate`."""
    frontier = (cfg.get("frontier") or {}).get(method)
    if frontier:
        return [float(r) for r in frontier]
    return [float(cfg["methods"][method]["learning_rate"])]


def job_config(cfg, method, learning_rate=None):
    """Everything one (method, learning rate, …) training job's numbers depend on, and nothing else.

    The workflow passes exactly this as the training rule's parameter, so changing a plot setting,
    the number of resamples, segments or seeds, or another method's settings never reruns this job.
    `learning_rate` (one of `learning_rates(cfg, method)`) replaces the method's own.
    """
    out = {k: cfg[k] for k in TRAIN_KEYS}
    hyper = cfg["methods"][method]
    out["method"] = method
    out["hyper"] = {"kind": hyper["kind"], **methods.hyper_of(hyper["kind"], hyper)}
    if learning_rate is not None:
        out["hyper"]["learning_rate"] = float(learning_rate)
    return out


def jobs(cfg):
    """`[(method, learning_rate, job_config)]`: every training job's settings of the experiment,
    one per method and learning rate of its grid."""
    return [(m, lr, job_config(cfg, m, lr)) for m in cfg["methods"] for lr in learning_rates(cfg, m)]


def scaled(cfg, fraction, extra_rates=None):
    """The experiment at `fraction` of its stream length, its segments scaled alike (the same
    number of segments, each `fraction` of the size), `extra_rates` ({method: [rates]},
    `scaling.frontier`) added to the methods' grids, every other setting unchanged."""
    out = dict(cfg)
    out["online_samples"] = int(round(cfg["online_samples"] * fraction))
    out["segment_size"] = int(round(cfg["segment_size"] * fraction))
    if out["segment_size"] < 1:
        raise OrderConfigError(f"scaling.fractions: {fraction} leaves segments of less than one "
                               f"sample (order.segment_size = {cfg['segment_size']})")
    grids = dict(cfg.get("frontier") or {})
    for method, rates in (extra_rates or {}).items():
        if method not in grids:
            raise OrderConfigError(f"scaling.frontier.{method} has no grid in order.frontier "
                                   f"({', '.join(grids) or 'none'})")
        grids[method] = sorted({float(r) for r in [*grids[method], *rates]})
    out["frontier"] = grids
    return check(out)


def num_steps(job_cfg):
    return job_cfg["online_samples"] // job_cfg["batch_size"]


def stream_seeds(data_seed):
    """Seeds of the experiment's three streams (train, held-out, validation), from its data seed.
    A run's training stream and its resamples also depend on the run's seed
    (`Problem.data_for_seed`); the held-out and validation sets do not."""
    base = int(data_seed) * 3
    return {"train": base, "heldout": base + 1, "validation": base + 2}


def describe(job_cfg, segment, resample, seed):
    """A job's name and settings, for error messages."""
    h = job_cfg["hyper"]
    return (f"order_train[method={job_cfg['method']}, segment={segment}, resample={resample}, "
            f"seed={seed}] ({', '.join(f'{k}={v}' for k, v in sorted(h.items()))}, "
            f"batch_size={job_cfg['batch_size']}, online_samples={job_cfg['online_samples']})")
