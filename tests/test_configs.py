"""The shipped configs under workflow/configs/ resolve (layered on config.yaml, as snakemake's
--configfile layers them), and the scaling config's stream-length-1 runs are the reproduce
config's own (the same order section), so the two share those runs and their verdicts agree."""
import copy
from pathlib import Path

import pytest
import yaml
from snakemake.utils import update_config

from natgrad.study import config
from natgrad.study.order import spec

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = sorted((ROOT / "workflow/configs").glob("*.yaml"))


def layered(path):
    base = yaml.safe_load((ROOT / "config.yaml").read_text())
    update_config(base, yaml.safe_load(path.read_text()))
    return config.resolve(base, ROOT / "workflow/schemas/config.schema.yaml")


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_every_shipped_config_resolves(path):
    layered(path)


def test_no_order_claim_rests_on_a_calibration():
    for path in [ROOT / "config.yaml", *CONFIGS]:
        order = layered(path)["order"]
        assert not order.get("calibration"), path.name
        assert all(len(spec.learning_rates(order, m)) >= 2 for m in order["methods"]), path.name


def test_scaling_runs_the_reproduce_configs_order_experiment_at_three_lengths():
    reproduce = layered(ROOT / "workflow/configs/reproduce.yaml")
    scaling = layered(ROOT / "workflow/configs/scaling.yaml")
    assert scaling["order"] == reproduce["order"]
    fractions = sorted({1.0, *map(float, scaling["scaling"]["fractions"])})
    assert len(fractions) >= 3
    lengths = [spec.scaled(copy.deepcopy(scaling["order"]), f)["online_samples"] for f in fractions]
    assert lengths[-1] == reproduce["order"]["online_samples"] and lengths == sorted(set(lengths))
