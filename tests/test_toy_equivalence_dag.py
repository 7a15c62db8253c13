"""A tiny run of the workflow's `toy` and `equivalence` targets in a temporary copy of the study."""
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from natgrad.study.registry import resolve

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def study(tmp_path):
    shutil.copy(ROOT / "Snakefile", tmp_path / "Snakefile")
    shutil.copytree(ROOT / "workflow", tmp_path / "workflow")
    config = yaml.safe_load((ROOT / "config.yaml").read_text())
    config["toy"].update({
        "inputs": {"distribution": "normal", "n": 16, "seed": 0},
        "steps": 15,
        "starts": [{"name": "1", "b": -3.0, "w": 3.5}, {"name": "3", "b": 3.0, "w": -1.0}],
        "figure": {"starts": ["1", "3"], "kl_steps": [0, 2], "kl_grid": 21, "dpi": 30},
        "grid": {"b": [-4.0, 4.0], "w": [-4.0, 4.0], "n": 31},
    })
    config["equivalence"].update({"batch_size": 3, "inputs": 2, "hidden": [3], "outputs": 2})
    resolved = resolve(config)                                 # new key names only
    assert resolved["equivalence"]["batch_size"] == 3
    assert all("learning_rate" in m for m in resolved["toy"]["methods"].values())
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    return tmp_path


def test_toy_and_equivalence_targets(study):
    snakemake = [sys.executable, "-m", "snakemake"]
    run = subprocess.run([*snakemake, "--cores", "2", "toy", "equivalence"], cwd=study,
                         capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, run.stderr[-4000:]
    paths = pd.read_csv(study / "results/toy/paths.csv", dtype={"start": str})
    assert set(paths["method"]) == {"newton", "amari", "covariance", "gd"}
    assert len(paths) == 2 * 4 * 16
    for _, g in paths.groupby(["start", "method"]):
        assert g["error"].iloc[-1] < g["error"].iloc[0]
    assert len(pd.read_csv(study / "results/toy/kl_points.csv")) == 16
    for png in ("figure1.png", "paths_all.png"):
        assert (study / "results/toy" / png).read_bytes()[:4] == b"\x89PNG"
    table = pd.read_csv(study / "results/equivalence/table.csv")
    diffs = [c for c in table.columns if "diff" in c]
    assert len(table) == 3 and diffs
    assert (table[diffs].to_numpy() <= 1e-10).all()
    assert "<table" in (study / "results/equivalence/table.html").read_text()
