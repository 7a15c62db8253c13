"""The study's experiments, listed once; the config resolution, the command line, the Snakefile and
the claims table loop over `EXPERIMENTS`.

Adding an experiment: a package `natgrad.study.<name>` exporting `EXPERIMENT`
(`natgrad.study.experiment.Experiment`) and its `cli.py`, a rule file `workflow/rules/<name>.smk`,
a section `<name>:` in `workflow/schemas/config.schema.yaml`, and one line below.
"""
from __future__ import annotations

import copy
from pathlib import Path

import yaml

from natgrad.study import config as config_lib
from natgrad.study.claims import EXPERIMENT as CLAIMS
from natgrad.study.equivalence import EXPERIMENT as EQUIVALENCE
from natgrad.study.order import EXPERIMENT as ORDER
from natgrad.study.overfitting import EXPERIMENT as OVERFITTING
from natgrad.study.toy import EXPERIMENT as TOY

#: Every experiment, in the order their rule files are included (claims last: it reads the others).
EXPERIMENTS = (ORDER, OVERFITTING, TOY, EQUIVALENCE, CLAIMS)
#: Command-line groups that are no experiment: building blocks with commands of their own.
TOOLS = ("data",)


def groups():
    """`{group: module}` of `python -m natgrad.study <group> ...`."""
    return {**{name: f"natgrad.study.{name}.cli" for name in TOOLS},
            **{e.name: e.cli for e in EXPERIMENTS}}


def resolve(config, schema=None):
    """`config` validated against the schema (`schema`: its path; default: `config.schema_path()`),
    the schema's defaults filled in, and every experiment's cross-key checks run.

    The one way a config becomes usable, for the Snakefile and for Python alike. Returns a new dict;
    raises `ConfigError` with a one-line message naming the culprit key.
    """
    config = config_lib.validate(config, schema)
    try:
        for experiment in EXPERIMENTS:
            experiment.check(config)
    except ValueError as err:
        raise config_lib.ConfigError(str(err)) from None
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
    """Refuse, before any job, data sets that are missing, whose headers are bad, or that an
    experiment's settings do not fit; the one-line `ConfigError` names the key and the data set."""
    for experiment in EXPERIMENTS:
        experiment.check_data(config)


def claims_results(config):
    """`{experiment: {claims input: file}}`: the results of each experiment its claims read."""
    return {e.name: e.claims(config) for e in EXPERIMENTS if e.claims_module}


def claims_inputs(config):
    """`{claims input: file}`: every experiment's results the claims table reads (one name space)."""
    inputs = {}
    for name, files in claims_results(config).items():
        clash = set(inputs) & set(files)
        if clash:
            raise ValueError(f"claims input {sorted(clash)[0]!r} of {name} is another experiment's")
        inputs.update(files)
    return inputs


def claims_modules():
    """The modules of the experiments' claims (imported by name at run time: the claims job's code)."""
    return [e.claims_module for e in EXPERIMENTS if e.claims_module]
