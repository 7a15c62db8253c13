"""The study's configuration schema: renamed keys, validation, defaults.

`workflow/schemas/config.schema.yaml` is the single source of truth for every key, its range and
its default. `validate(config)` refuses renamed keys (naming the new key) and validates against the
schema while filling in the schema's defaults; `natgrad.study.registry.resolve` adds the cross-key
checks a JSON schema cannot express (each experiment's own `check`). Nothing else in the code base
holds a default. This module knows no experiment: the registry sits above them.
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


def validate(config, schema=None):
    """`config` with renamed keys refused, validated against the schema (`schema`: its path;
    default: `schema_path()`) and the schema's defaults filled in; a new dict. The experiments'
    cross-key checks follow in `natgrad.study.registry.resolve`, the one resolver."""
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
    return config


def dataset_size(name, datasets, key):
    """The number of examples of data set `name`; a `ConfigError` naming the config `key` that
    selects it when it is missing or its header is bad."""
    from natgrad.study.data import DataError
    from natgrad.study.data.inspect import source_size

    try:
        return source_size(name, datasets)
    except DataError as err:
        raise ConfigError(f"{key} = {name!r}: {err}") from None


def datasets_entry(config, name):
    """The one `datasets:` entry of data set `name` a job reads (embedded sources need none)."""
    return {name: config["datasets"][name]} if name in config["datasets"] else {}
