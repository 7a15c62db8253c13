"""The study's configuration: one schema, one resolver.

`workflow/schemas/config.schema.yaml` is the single source of truth for every key, its range and
its default. `resolve(config)` is the one way a config becomes usable, for the Snakefile and for
Python alike: it refuses renamed keys (naming the new key), validates against the schema while
filling in the schema's defaults, and runs the cross-key checks a JSON schema cannot express
(each experiment's own `check`). Nothing else in the code base holds a default.
"""
from __future__ import annotations

import copy
from pathlib import Path

import yaml

#: Keys of earlier rounds, refused with the name that replaced them.
RENAMED_KEYS = {
    "lr": "learning_rate",
    "batch": "batch_size",
    "metric_batch": "metric_batch_size",
    "unlabeled_batch": "metric_batch_size",
    # second round: every metric minibatch (another training minibatch, pool inputs) is one key
    "unlabeled_batch_size": "metric_batch_size",
}


class ConfigError(ValueError):
    """A config the study cannot run; the one-line message names the key."""


SCHEMA = Path("workflow") / "schemas" / "config.schema.yaml"


def schema_path():
    """The schema of the source tree this package sits in (the Snakefile passes its own)."""
    for parent in Path(__file__).resolve().parents:
        if (parent / SCHEMA).exists():
            return parent / SCHEMA
    raise ConfigError(f"{SCHEMA} not found above {__file__}: pass the schema's path")


def _renamed(value, where=""):
    """The first renamed key found in `value` as (path, new name), or None."""
    if isinstance(value, dict):
        for key, sub in value.items():
            path = f"{where}.{key}" if where else str(key)
            if key in RENAMED_KEYS:
                return path, RENAMED_KEYS[key]
            found = _renamed(sub, path)
            if found:
                return found
    elif isinstance(value, list):
        for i, sub in enumerate(value):
            found = _renamed(sub, f"{where}[{i}]")
            if found:
                return found
    return None


def _validator_filling_defaults(schema):
    """A jsonschema validator that also writes each property's `default` into the instance."""
    import jsonschema

    base = jsonschema.validators.validator_for(schema)
    validate_properties = base.VALIDATORS["properties"]

    def properties(validator, props, instance, sub_schema):
        if isinstance(instance, dict):
            for name, prop in props.items():
                if isinstance(prop, dict) and "default" in prop and name not in instance:
                    instance[name] = copy.deepcopy(prop["default"])
        yield from validate_properties(validator, props, instance, sub_schema)

    return jsonschema.validators.extend(base, {"properties": properties})(schema)


def _message(error):
    where = ".".join(str(p) for p in error.absolute_path) or "config"
    return f"{where}: {error.message}"


def resolve(config, schema=None):
    """`config` validated against the schema (`schema`: its path; default: `schema_path()`),
    defaults filled in, cross-checked.

    Returns a new dict; raises `ConfigError` with a one-line message naming the culprit key.
    """
    config = copy.deepcopy(dict(config))
    renamed = _renamed(config)
    if renamed:
        path, new = renamed
        raise ConfigError(f"config key {path} was renamed: use `{new}` instead of "
                          f"`{path.rsplit('.', 1)[-1]}`")
    schema = yaml.safe_load(Path(schema or schema_path()).read_text())
    validator = _validator_filling_defaults(schema)
    errors = sorted(validator.iter_errors(config), key=lambda e: list(e.absolute_path))
    if errors:
        raise ConfigError(_message(errors[0]))
    from natgrad.study.order import spec as order_spec
    from natgrad.study.overfitting import spec as overfitting_spec

    try:
        order_spec.check(config["order"])
        for fraction in (config.get("scaling") or {}).get("fractions", []):
            order_spec.scaled(config["order"], float(fraction))
        overfitting_spec.experiments(config["overfitting"])
    except ValueError as err:
        raise ConfigError(str(err)) from None
    return config


def load(*paths):
    """The config files `paths`, layered like Snakemake's `--configfile` (later keys win), resolved."""
    merged = {}
    for path in paths:
        _merge(merged, yaml.safe_load(Path(path).read_text()) or {})
    return resolve(merged)


def _merge(into, layer):
    for key, value in layer.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            _merge(into[key], value)
        else:
            into[key] = copy.deepcopy(value)


def check_data(config):
    """Refuse, before any job, data sets that are missing, whose headers are bad, or that a split
    does not fit; the one-line message names the config key, the data set and its size."""
    from natgrad.study.data import DataError
    from natgrad.study.data.inspect import source_size
    from natgrad.study.overfitting import spec as overfitting_spec
    from natgrad.study.overfitting.split import split_counts

    def size(name, key):
        try:
            return source_size(name, config["datasets"])
        except DataError as err:
            raise ConfigError(f"{key} = {name!r}: {err}") from None

    order = config["order"]
    n = size(order["dataset"], "order.dataset")
    parts = {p: int(round(order[f"{p}_fraction"] * n)) for p in ("heldout", "validation")}
    if min(parts.values()) < 1 or n - sum(parts.values()) < 1:
        raise ConfigError(f"order.heldout_fraction / order.validation_fraction: dataset "
                          f"{order['dataset']} has {n} examples, too few for {parts} and a train part")
    for name, spec in overfitting_spec.experiments(config["overfitting"]).items():
        key = "overfitting.split" if name == overfitting_spec.MAIN else f"overfitting.extra.{name}.split"
        n = size(spec["dataset"], key.rsplit(".", 1)[0] + ".dataset")
        try:
            counts = split_counts(n, spec["split"])
        except ValueError as err:
            raise ConfigError(f"{key} does not fit dataset {spec['dataset']} ({n} examples): "
                              f"{err}") from None
        if "ng_different_batch" in spec["methods"] and counts["train"] < 2:
            raise ConfigError(f"{key}: ng_different_batch needs at least 2 training examples (a "
                              f"gradient and a disjoint metric minibatch), the split leaves "
                              f"{counts['train']}")
