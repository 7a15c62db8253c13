"""The workflow as Snakemake users expect it, on a copy of the tiny study (tests/tiny_study.py):
every store opens with no warning and selects one label per coordinate, ten bad configs are
refused by the one resolver (and, run by Snakemake, before any job, leaving every stored byte in
place), and a run killed at a random moment and restarted with README's recipe ends with the
stores of a clean run."""
import hashlib
import os
import random
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
import yaml

from tiny_study import snakemake, workspace

ROOT = Path(__file__).resolve().parents[1]
#: What the killed run makes: the order experiment (its jobs are the most numerous).
KILLED_TARGETS = ("order",)


def run(workdir, *args, configfiles=("tiny.yaml",)):
    return snakemake(workdir, "order", "overfitting", *args, configfiles=configfiles)


def fingerprint(results):
    """{path: digest} of every stored value (timings left out) and every file's bytes."""
    import pandas as pd

    out = {}
    for path in sorted(results.rglob("*")):
        rel = str(path.relative_to(results))
        if ".jax-cache" in rel or "logs" in rel or not path.is_file() or ".zarr/" in rel:
            continue
        if path.suffix == ".csv":
            table = pd.read_csv(path)
            table = table[[c for c in table.columns if "time" not in c and "seconds" not in c]]
            out[rel] = hashlib.sha256(table.to_csv(index=False).encode()).hexdigest()
        else:
            out[rel] = hashlib.sha256(path.read_bytes()).hexdigest()
    for store in sorted(results.rglob("*.zarr")):
        ds = xr.open_zarr(store)
        for name in sorted(ds.variables):
            if "time" in name or "seconds" in name:
                continue
            out[f"{store.relative_to(results)}:{name}"] = hashlib.sha256(
                np.ascontiguousarray(ds[name].values).tobytes()).hexdigest()
    return out


@pytest.fixture(scope="module")
def clean(tiny_study_copy):
    return tiny_study_copy


def test_every_store_opens_cleanly_and_selects_one_label(clean):
    stores = sorted((clean / "results").rglob("*.zarr"))
    assert len(stores) >= 10
    for store in stores:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            ds = xr.open_zarr(store)
        assert not [p.name for p in store.iterdir() if p.name.startswith(".snakemake")], store
        for name, var in ds.data_vars.items():
            assert {"long_name", "units"} <= set(var.attrs), f"{store}:{name}"
        assert {"config", "git_commit", "package_versions"} <= set(ds.attrs), store
        for dim in ds.indexes:
            label = ds[dim].values[0]
            picked = ds.sel(**{dim: label})
            assert dim not in picked.dims, f"{store}: .sel({dim}={label!r})"


BAD = [
    ({"order": {"methods": {"ng": {"kind": "ng_same_batch", "lr": 0.2, "damping": 3.0}}}},
     "use `learning_rate`"),
    ({"order": {"methods": {"ng": {"kind": "ng_same_batch", "learning_rate": -1.0}}}},
     "learning_rate"),
    ({"order": {"segments": 9}}, "order.segments"),
    ({"order": {"c_max": 3}}, "order.c_max"),
    ({"order": {"resamples": 1}}, "order.resamples"),
    ({"order": {"dataset": "nowhere"}}, "order.dataset"),
    ({"order": {"dataset": "mine"}}, "no such file"),
    ({"order": {"dataset": "cut"}}, "truncated"),
    ({"overfitting": {"dataset": "digits", "split": {"train": 500, "unlabeled": 2500,
                                                     "valid": 1000, "test": 1000}}},
     "overfitting.split does not fit dataset digits (1797 examples)"),
    ({"overfitting": {"hyper": {"ng_different_batch": {"metric_batch_size": 0}}}},
     "overfitting.hyper.ng_different_batch.metric_batch_size"),
]


def test_ten_bad_configs_are_refused_and_change_nothing(clean, tmp_path):
    from natgrad.study import config, registry
    from natgrad.study.data.idx import write_idx

    write_idx(tmp_path / "cut.idx", np.zeros((50, 8, 8), np.uint8))
    (tmp_path / "cut.idx").write_bytes((tmp_path / "cut.idx").read_bytes()[:-10])
    write_idx(tmp_path / "labels.idx", np.zeros(50, np.uint8))
    datasets = {"mine": {"format": "idx", "images": str(tmp_path / "no.idx"),
                         "labels": str(tmp_path / "labels.idx")},
                "cut": {"format": "idx", "images": str(tmp_path / "cut.idx"),
                        "labels": str(tmp_path / "labels.idx")}}
    layers = []
    for i, (change, message) in enumerate(BAD):  # each refused by the one resolver
        bad = clean / f"bad{i}.yaml"
        bad.write_text(yaml.safe_dump({"datasets": datasets, **change}))
        layers.append(bad)
        with pytest.raises(config.ConfigError) as err:
            registry.check_data(registry.load(ROOT / "config.yaml", clean / "tiny.yaml", bad))
        assert message in str(err.value), change
    before = fingerprint(clean / "results")
    for bad in (layers[0], layers[7]):  # a bad key and a bad file: the Snakefile refuses them
        proc = run(clean, configfiles=("tiny.yaml", bad.name))
        out = proc.stdout + proc.stderr
        assert proc.returncode != 0 and BAD[layers.index(bad)][1] in out, out[-2000:]
        assert "Select jobs to execute" not in out  # refused before any job
    assert fingerprint(clean / "results") == before


def test_a_killed_run_restarted_with_the_readme_recipe_equals_a_clean_run(clean, tmp_path):
    workdir = workspace(tmp_path / "killed")
    cmd = [sys.executable, "-m", "snakemake", *KILLED_TARGETS, "--cores", "2", "--configfile",
           "tiny.yaml"]
    proc = subprocess.Popen(cmd, cwd=workdir, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    time.sleep(random.Random(os.getpid()).uniform(20, 60))  # a random moment of the run
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert snakemake(workdir, *KILLED_TARGETS, "--unlock").returncode == 0
    again = snakemake(workdir, *KILLED_TARGETS, "--rerun-incomplete")
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    clean_values, restarted = fingerprint(clean / "results"), fingerprint(workdir / "results")
    assert "order/order.zarr:variance" in restarted  # the targets were made
    figures = {k for k in clean_values if k.endswith((".png", ".html"))}  # layout may differ
    assert {k: v for k, v in restarted.items() if k not in figures} == \
        {k: clean_values.get(k) for k in restarted if k not in figures}


def test_readme_reanalysis_recipe_runs_without_warnings(clean, monkeypatch):
    import re

    section = (ROOT / "README.md").read_text().split("### Re-analyse stored results", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    monkeypatch.chdir(clean)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        exec(compile(code, "README.md", "exec"), {})


def test_a_job_failing_on_bad_data_says_why_on_the_console(clean, tmp_path):
    images = np.full((40, 8, 8), 0.5, np.float32)
    images[3, 2, 2] = np.nan  # the header is fine; only reading the values finds it
    np.savez(tmp_path / "nan.npz", x=images, y=np.arange(40) % 10)
    bad = clean / "nan.yaml"
    bad.write_text(yaml.safe_dump({"datasets": {"nan": {"format": "npz",
                                                        "path": str(tmp_path / "nan.npz")}},
                                   "order": {"dataset": "nan"}}))
    before = fingerprint(clean / "results")
    proc = run(clean, configfiles=("tiny.yaml", bad.name))
    assert proc.returncode != 0
    assert "natgrad-study order: DataError:" in proc.stdout and "NaN pixels" in proc.stdout
    assert "Traceback" not in proc.stdout + proc.stderr
    # every stored result is kept; only the NISTP sheet, a figure of the current config's data
    # set, is redrawn (and fails on the same file)
    after = fingerprint(clean / "results")
    assert {k: v for k, v in after.items() if "nistp_sheet" not in k} == \
        {k: v for k, v in before.items() if "nistp_sheet" not in k}
