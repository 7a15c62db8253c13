"""The workflow's `toy` and `equivalence` targets on the tiny study (tests/tiny_study.py)."""
from pathlib import Path

import pandas as pd
import yaml

from natgrad.study.registry import resolve
from tiny_study import EQUIVALENCE, TOY

ROOT = Path(__file__).resolve().parents[1]


def test_the_tiny_sections_resolve_with_the_new_key_names():
    config = yaml.safe_load((ROOT / "config.yaml").read_text())
    config["toy"].update(TOY)
    config["equivalence"].update(EQUIVALENCE)
    resolved = resolve(config)
    assert resolved["equivalence"]["batch_size"] == 3
    assert all("learning_rate" in m for m in resolved["toy"]["methods"].values())


def test_toy_and_equivalence_targets(tiny_study):
    results = tiny_study / "results"
    paths = pd.read_csv(results / "toy/paths.csv", dtype={"start": str})
    assert set(paths["method"]) == {"newton", "amari", "covariance", "gd"}
    assert len(paths) == len(TOY["starts"]) * 4 * (TOY["steps"] + 1)
    for _, g in paths.groupby(["start", "method"]):
        assert g["error"].iloc[-1] < g["error"].iloc[0]
    assert len(pd.read_csv(results / "toy/kl_points.csv")) == 16
    for png in ("figure1.png", "paths_all.png"):
        assert (results / "toy" / png).read_bytes()[:4] == b"\x89PNG"
    table = pd.read_csv(results / "equivalence/table.csv")
    diffs = [c for c in table.columns if "diff" in c]
    assert len(table) == 3 and diffs
    assert (table[diffs].to_numpy() <= 1e-10).all()
    assert "<table" in (results / "equivalence/table.html").read_text()
