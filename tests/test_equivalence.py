"""Section 7: the extended Gauss-Newton matrix is the Fisher; a Hessian-free step is a natural-gradient step."""
import json
from pathlib import Path

import pandas as pd
import pytest
import yaml

from natgrad.study import config, registry
from natgrad.study.equivalence import cli, compute

ROOT = Path(__file__).resolve().parents[1]
SMALL = {"batch_size": 4, "inputs": 3, "hidden": [4], "outputs": 3, "seed": 2}


def _resolved_equivalence(section):
    """The resolved `equivalence:` section of the study config with its section replaced."""
    raw = yaml.safe_load((ROOT / "config.yaml").read_text())
    return registry.resolve({**raw, "equivalence": section})["equivalence"]


@pytest.fixture(scope="module")
def cfg():
    """SMALL on the schema's defaults (families, activation, damping, CG settings, tolerance)."""
    return _resolved_equivalence(SMALL)


def test_table_differences_are_at_rounding_level(cfg):
    df = compute.table(cfg)
    assert list(df["family"]) == ["gaussian", "bernoulli", "categorical"]
    assert (df["batch_size"] == 4).all() and (df["outputs"] == 3).all()
    cols = compute.diff_columns(df)
    assert len(cols) >= 8
    assert (df[cols].to_numpy() <= 1e-10).all(), df[cols]
    assert (df["ggn_max_abs"] > 0).all() and (df["step_norm"] > 0).all()
    compute.check(df, 1e-10)


def test_check_fails_loudly():
    df = pd.DataFrame({"family": ["gaussian"], "a_max_abs_diff": [1e-3]})
    with pytest.raises(RuntimeError, match="a_max_abs_diff"):
        compute.check(df, 1e-10)


def test_old_batch_key_is_refused():
    with pytest.raises(config.ConfigError, match="batch_size"):
        _resolved_equivalence({**SMALL, "batch": 4})


def test_cli_writes_table_and_html(tmp_path, cfg):
    out, html = tmp_path / "table.csv", tmp_path / "table.html"
    cli.main(["table", "--config", json.dumps(cfg), "--out", str(out), "--html", str(html)])
    df = pd.read_csv(out)
    assert len(df) == 3 and (df[compute.diff_columns(df)] <= 1e-10).all().all()
    assert "<table" in html.read_text()
    assert not list(tmp_path.glob(".*.tmp"))


def test_cli_above_tolerance_fails_and_writes_nothing(tmp_path, cfg):
    out, html = tmp_path / "table.csv", tmp_path / "table.html"
    strict = {**cfg, "families": ["gaussian"], "tolerance": 1e-300}
    with pytest.raises(RuntimeError, match="differences above"):
        cli.main(["table", "--config", json.dumps(strict), "--out", str(out), "--html", str(html)])
    assert not out.exists() and not html.exists()
