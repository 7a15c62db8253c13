"""The shipped configs under workflow/configs/ resolve (layered on config.yaml, as snakemake's
--configfile layers them), the scaling config is a layer on the reproduce config holding only
the stream-length axis, so its full-length runs are the reproduce config's own, and the powered
config is a layer on the reproduce config that keeps the reproduce run's jobs wherever it changes
nothing."""
from pathlib import Path

import pytest
import yaml
from snakemake.utils import update_config

from natgrad.study import registry
from natgrad.study.order import plan, spec
from natgrad.study.overfitting.plan import Plan

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = sorted((ROOT / "workflow/configs").glob("*.yaml"))
REPRODUCE = ROOT / "workflow/configs/reproduce.yaml"
#: configs that are layers on the reproduce config (their header's command names both)
ON_REPRODUCE = {"powered.yaml", "scaling.yaml"}


def layered(*paths):
    base = yaml.safe_load((ROOT / "config.yaml").read_text())
    for path in paths:
        update_config(base, yaml.safe_load(path.read_text()))
    return registry.resolve(base, ROOT / "workflow/schemas/config.schema.yaml")


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_every_shipped_config_resolves(path):
    layered(*([REPRODUCE] if path.name in ON_REPRODUCE else []), path)


def test_powered_design_keeps_the_reproduce_runs_jobs_where_it_changes_nothing():
    reproduce = layered(REPRODUCE)
    powered = layered(REPRODUCE, ROOT / "workflow/configs/powered.yaml")
    assert set(plan.jobs(reproduce)) < set(plan.jobs(powered))  # figure 3: one NG rate added
    small, large = Plan.of(reproduce), Plan.of(powered)
    pilots = lambda p: {run for runs in p.pilots.values() for run in runs}  # noqa: E731
    assert pilots(small) < pilots(large)  # grids extended, the second data set's tune stage
    grids = {m: tune for m, tune in powered["overfitting"]["tune"].items()
             if tune == reproduce["overfitting"]["tune"].get(m)}
    kept = [run for run in small.runs["restricted_mnist"]
            if run.split("/")[-2].rsplit("-", 1)[0] in {*grids, "adam"}]
    assert kept and set(kept) < set(large.runs["restricted_mnist"])
    assert len(powered["overfitting"]["seeds"]) >= 12 and "nistp_digits" in large.runs


def test_every_order_method_runs_a_learning_rate_grid():
    for path in [ROOT / "config.yaml", *CONFIGS]:
        order = layered(*([REPRODUCE] if path.name in ON_REPRODUCE else []), path)["order"]
        assert all(len(spec.learning_rates(order, m)) >= 2 for m in order["methods"]), path.name


def test_scaling_is_the_reproduce_configs_order_experiment_at_three_lengths():
    reproduce_yaml = ROOT / "workflow/configs/reproduce.yaml"
    scaling_yaml = ROOT / "workflow/configs/scaling.yaml"
    assert set(yaml.safe_load(scaling_yaml.read_text())) == {"scaling"}  # only what differs
    reproduce, scaling = layered(reproduce_yaml), layered(reproduce_yaml, scaling_yaml)
    assert scaling["order"] == reproduce["order"]
    lengths = sorted(plan.lengths(scaling))
    assert len(lengths) == 3 and lengths[-1] == reproduce["order"]["online_samples"]
    # the full-length runs are the reproduce config's own: one set of jobs, aggregated once
    assert set(plan.jobs(reproduce)) <= set(plan.jobs(scaling))
    assert plan.runs(scaling, lengths[-1]) == plan.runs(reproduce, lengths[-1])


def test_scaling_frontier_adds_rates_at_the_scaled_lengths_only():
    reproduce = layered(ROOT / "workflow/configs/reproduce.yaml")
    config = {**reproduce, "scaling": {"fractions": [0.5], "frontier": {"msgd": [0.4, 0.1]}}}
    full, half = (cfg["frontier"] for cfg in plan.lengths(config).values())
    assert full == reproduce["order"]["frontier"]
    assert half["msgd"] == sorted({*map(float, full["msgd"]), 0.4})
    assert half["ng"] == full["ng"]
    bad = {**reproduce, "scaling": {"fractions": [0.5], "frontier": {"adam": [0.4]}}}
    with pytest.raises(spec.OrderConfigError, match="scaling.frontier.adam"):
        plan.lengths(bad)


def test_the_schemas_method_kinds_are_the_kinds_table():
    """The kinds are listed once (`natgrad.study.kinds`): the schema's enums, which JSON Schema
    cannot import, name the same ones, and every per-kind table covers every kind."""
    from natgrad.study import kinds, methods

    schema = yaml.safe_load((ROOT / "workflow/schemas/config.schema.yaml").read_text())["properties"]
    overfitting = schema["overfitting"]["$defs"]["name"]["enum"]
    order = schema["order"]["properties"]["methods"]["additionalProperties"]["allOf"][1]
    assert set(overfitting) == set(kinds.KINDS)
    assert set(order["properties"]["kind"]["enum"]) == set(spec.METHOD_KINDS)
    assert spec.METHOD_KINDS == ("msgd", "adam", "ng_same_batch", "covariance")
    assert set(methods.HYPER_KEYS) == set(kinds.KINDS) == set(kinds.ROLES)
    assert kinds.of_role(kinds.FIRST_ORDER) == ("msgd", "adam")
