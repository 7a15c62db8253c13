"""Where the order experiment's files live and which training jobs make them: the bookkeeping of
its rule file (`workflow/rules/order.smk`) and of its `EXPERIMENT`.

Stream length is an axis of the experiment: the study's own runs at `order.online_samples`, and
the same experiment at each of `scaling.fractions` of it (segments scaled alike,
`spec.scaled`). Every length's runs are aggregated by the one aggregation rule into a store of
their own, the study's length into `results/order/order.zarr` (aggregated once, whether or not the
scaling table reads it), another length N into `results/order/order-N.zarr`.
"""
from __future__ import annotations

from natgrad.study.order import spec
from natgrad.study.provenance import settings_digest

RESULTS = "results/order"
SCALING = "results/scaling"
SHEET = "results/data/nistp_sheet.png"
#: One run: a (method, job key, seed, segment, resample) of the grid; the key is its job's digest.
RUN = f"{RESULTS}/runs/{{method}}-{{key}}/seed{{seed}}/segment{{segment}}/resample{{resample}}.zarr.done"
#: The aggregated store and summary table of one stream length: `length` is "" for the study's own
#: length, "-N" for a stream of N samples.
STORE = f"{RESULTS}/order{{length}}.zarr.done"
TABLE = f"{RESULTS}/variance{{length}}.csv"
#: The matched levels of one stream length: ratio, interval and bracketing gap (`frontier.level_rows`).
LEVELS = f"{RESULTS}/levels{{length}}.csv"
#: Keys of `order:` that cannot change an aggregated number (the attrs' config leaves them out).
PRESENTATION_KEYS = ("plot", "checkpoint_every", "vmap_resamples")


def lengths(config):
    """`{online_samples: order section at that length}`: the study's length first, then every
    length of `scaling.fractions` with `scaling.frontier`'s rates added (a fraction of 1 is the
    study's own length, unchanged)."""
    cfg = config["order"]
    out = {cfg["online_samples"]: cfg}
    scaling = config.get("scaling") or {}
    for fraction in scaling.get("fractions", []):
        scaled = spec.scaled(cfg, float(fraction), scaling.get("frontier"))
        out.setdefault(scaled["online_samples"], scaled)
    return out


def length_suffix(config, samples):
    """The `{length}` of `STORE` and `TABLE` for a stream of `samples` samples."""
    return "" if int(samples) == config["order"]["online_samples"] else f"-{int(samples)}"


def samples_of(config, suffix):
    """The stream length a `{length}` wildcard names (the inverse of `length_suffix`)."""
    return int(suffix[1:]) if suffix else config["order"]["online_samples"]


def jobs(config):
    """`{key: job settings}` of every training job, at every stream length."""
    return {settings_digest(job): job for cfg in lengths(config).values()
            for _, _, job in spec.jobs(cfg)}


def runs(config, samples):
    """The run stores (markers) of one stream length: methods × rates × seeds × segments ×
    resamples."""
    cfg = config["order"]
    return [RUN.format(method=m, key=settings_digest(job), seed=s, segment=k, resample=r)
            for m, _, job in spec.jobs(lengths(config)[samples])
            for s in cfg["seeds"] for k in range(cfg["segments"]) for r in range(cfg["resamples"])]


def numbers_config(config, samples):
    """The settings an aggregated store of one length records (what can change its numbers)."""
    return {k: v for k, v in lengths(config)[samples].items() if k not in PRESENTATION_KEYS}


def data_dir(config, datasets_entry):
    """The folder of the data sets (train part, held-out, validation) every job reads, keyed by
    what defines them."""
    cfg = config["order"]
    digest = settings_digest([spec.data_config(cfg), datasets_entry])
    return f"results/data/order/{cfg['dataset']}-{cfg['preset']}-{digest}"


def figure(config, name):
    return f"{RESULTS}/figures/{name}.{config['order']['plot']['format']}"


def scaling_table(config):
    """The scaling table and its figure (the `scaling` target)."""
    return [f"{SCALING}/order.csv", f"{SCALING}/order.{config['order']['plot']['format']}"]


def targets(config):
    """The `order` target: figure 3 (variance per segment), its frontier (variance against final
    validation error), the validation curves, the aggregated store, its table and its matched
    levels, and the NISTP
    sheet showing what the stream does to the source images; the `scaling` target: the matched
    ratios against stream length (none without `scaling:`)."""
    order = [figure(config, name) for name in ("variance", "frontier", "validation")]
    order += [STORE.format(length=""), TABLE.format(length=""), LEVELS.format(length=""), SHEET]
    return {"order": order, "scaling": scaling_table(config) if config.get("scaling") else []}


def check(config):
    """Cross-key checks of `order:` at every stream length."""
    spec.check(config["order"])
    lengths(config)


def check_data(config):
    """The order data set exists and holds a train part beside the held-out and validation parts."""
    from natgrad.study.config import ConfigError, dataset_size

    cfg = config["order"]
    n = dataset_size(cfg["dataset"], config["datasets"], "order.dataset")
    parts = {p: int(round(cfg[f"{p}_fraction"] * n)) for p in ("heldout", "validation")}
    if min(parts.values()) < 1 or n - sum(parts.values()) < 1:
        raise ConfigError(f"order.heldout_fraction / order.validation_fraction: dataset "
                          f"{cfg['dataset']} has {n} examples, too few for {parts} and a train part")


def claims(config):
    return {"order": STORE.format(length="")}
