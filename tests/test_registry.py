"""The registry is the one list of experiments: each has its package (plan, command line), its
rule file and its schema section, the command line and the Snakefile's targets come from it, and
its checks run in the one resolver. The order experiment's stream-length axis, planned."""
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from natgrad.study import config, registry
from natgrad.study.order import plan

ROOT = Path(__file__).resolve().parents[1]


def smoke():
    return registry.load(ROOT / "config.yaml")


def test_every_experiment_has_its_package_rule_file_and_schema_section():
    import importlib

    schema = yaml.safe_load((ROOT / "workflow/schemas/config.schema.yaml").read_text())
    for experiment in registry.EXPERIMENTS:
        assert (ROOT / experiment.rules).is_file(), experiment.name
        assert callable(importlib.import_module(experiment.cli).main), experiment.name
        assert importlib.import_module(f"natgrad.study.{experiment.name}").EXPERIMENT == experiment
        assert experiment.name in schema["properties"] or experiment.name == "claims"
    rule_files = {p.name for p in (ROOT / "workflow/rules").glob("*.smk")}
    assert rule_files == {"common.smk"} | {f"{e.name}.smk" for e in registry.EXPERIMENTS}


def test_no_rule_file_reads_a_global_another_one_writes():
    import re

    files = {p.name: p.read_text() for p in (ROOT / "workflow/rules").glob("*.smk")}
    written = {name: set(re.findall(r"^([A-Z][A-Z0-9_]+) *=", text, re.M))
               for name, text in files.items()}
    for name, text in files.items():
        for other, names in written.items():
            if other in (name, "common.smk"):
                continue
            read = {n for n in names if re.search(rf"\b{n}\b", text)}
            assert not read, f"{name} reads {sorted(read)} of {other}"


def test_targets_and_claims_inputs_come_from_the_experiments():
    cfg = smoke()
    targets = {t: files for e in registry.EXPERIMENTS for t, files in e.targets(cfg).items()}
    assert set(targets) == {"order", "scaling", "overfitting", "tune", "toy", "equivalence",
                            "claims"}
    assert targets["scaling"] == []  # the smoke config has no stream-length axis
    assert "results/order/order.zarr.done" in targets["order"]
    assert registry.claims_inputs(cfg) == {
        "order": "results/order/order.zarr.done",
        "restricted_mnist": "results/overfitting/restricted_mnist/runs.zarr.done",
        "toy_paths": "results/toy/paths.csv", "equivalence": "results/equivalence/table.csv"}


def test_the_command_line_offers_every_experiment_and_refuses_others():
    assert list(registry.groups()) == ["data", "order", "overfitting", "toy", "equivalence",
                                       "claims"]
    proc = subprocess.run([sys.executable, "-m", "natgrad.study", "nope"], capture_output=True,
                          text=True)
    assert proc.returncode != 0
    assert "{data,order,overfitting,toy,equivalence,claims}" in proc.stderr


def test_an_experiments_check_runs_in_the_resolver():
    raw = yaml.safe_load((ROOT / "config.yaml").read_text())
    raw["order"]["segments"] = 99
    with pytest.raises(config.ConfigError, match="order.segments"):
        registry.resolve(raw)
    raw = yaml.safe_load((ROOT / "config.yaml").read_text())
    raw["scaling"] = {"fractions": [1e-6]}
    with pytest.raises(config.ConfigError, match="scaling.fractions"):
        registry.resolve(raw)


def test_stream_length_is_an_axis_of_the_order_runs():
    cfg = smoke()
    cfg["scaling"] = {"fractions": [0.25, 1.0]}
    full = cfg["order"]["online_samples"]
    lengths = plan.lengths(cfg)
    assert list(lengths) == [full, full // 4]  # a fraction of 1 is the study's own length
    assert lengths[full // 4]["segment_size"] == cfg["order"]["segment_size"] // 4
    for n in lengths:
        assert plan.samples_of(cfg, plan.length_suffix(cfg, n)) == n
    assert plan.STORE.format(length=plan.length_suffix(cfg, full)) == "results/order/order.zarr.done"
    per_length = (sum(len(r) for r in cfg["order"]["frontier"].values()) * len(cfg["order"]["seeds"])
                  * cfg["order"]["segments"] * cfg["order"]["resamples"])
    runs = {n: plan.runs(cfg, n) for n in lengths}
    assert all(len(r) == per_length for r in runs.values())
    assert not set(runs[full]) & set(runs[full // 4])  # other settings, other paths
    assert len(plan.jobs(cfg)) == 2 * sum(len(r) for r in cfg["order"]["frontier"].values())
