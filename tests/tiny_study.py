"""One tiny study of the real workflow, run once per test session and shared by the workflow tests
(also across pytest-xdist workers: the first to ask builds it under a file lock, the others wait
and read it). Tests that only read it take `tiny_study`; tests that run Snakemake for real in it
take `tiny_study_copy`, their own copy, so no test can change what another reads.

Every target runs: order (a learning-rate frontier, one job per resample so that a new resample
plans only its jobs), overfitting with its tune stage and appendix 8.7's equal settings, the toy,
the equivalence table and the claims table."""
import fcntl
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]

ORDER = {
    "dataset": "fonts", "preset": "pnist07", "c_max": 0.7, "image_size": 16, "data_seed": 0,
    "heldout_size": 48, "validation_size": 48, "online_samples": 256, "segment_size": 64,
    "segments": 2, "resamples": 2, "seeds": [0], "model": {"hidden": [8], "activation": "tanh"},
    "batch_size": 32, "eval_every": 4, "eval_batch_size": 64, "checkpoint_every": 4,
    "vmap_resamples": False,
    "methods": {
        "msgd": {"kind": "msgd", "learning_rate": 0.1},
        "ng": {"kind": "ng_same_batch", "damping": 3.0, "solver": "minres_qlp", "max_iters": 5,
               "rtol": 1.0e-4},
    },
    "frontier": {"msgd": [0.1], "ng": [0.05, 0.8]},  # NG brackets; MSGD needs one rate
    "plot": {"format": "png", "dpi": 60},
}
OVERFITTING = {
    "dataset": "mnist5k",
    "split": {"train": 100, "unlabeled": 200, "valid": 50, "test": 100},
    "model": {"kind": "mlp", "hidden": [8], "activation": "tanh"},
    "seeds": [0, 1], "evaluations": 2,
    "methods": ["msgd", "ng_unlabeled"],
    "hyper": {"msgd": {"updates": 12, "batch_size": 20, "learning_rate": 0.5},
              "ng_unlabeled": {"updates": 3, "batch_size": 50, "metric_batch_size": 50,
                               "learning_rate": 1.0, "damping": 2.0, "adapt_damping": True,
                               "solver": "cg", "max_iters": 4}},
    "tune": {"msgd": {"learning_rate": [0.05, 0.5], "batch_size": [10, 20]},
             "ng_unlabeled": {"learning_rate": [1.0, 5.0]}},
    "tune_seeds": [100, 101],
    "equal_settings": {"ng_same_batch": "ng_unlabeled"},
}
TOY = {
    "inputs": {"distribution": "normal", "n": 16, "seed": 0},
    "steps": 15,
    "starts": [{"name": "1", "b": -3.0, "w": 3.5}, {"name": "3", "b": 3.0, "w": -1.0}],
    "figure": {"starts": ["1", "3"], "kl_steps": [0, 2], "kl_grid": 21, "dpi": 30},
    "grid": {"b": [-4.0, 4.0], "w": [-4.0, 4.0], "n": 31},
}
EQUIVALENCE = {"batch_size": 3, "inputs": 2, "hidden": [3], "outputs": 2}
#: The tiny study's config, layered on config.yaml (`--configfile tiny.yaml`).
TINY = {"order": ORDER, "overfitting": OVERFITTING, "toy": TOY, "equivalence": EQUIVALENCE}


def workspace(root, config=TINY):
    """A copy of the workflow in `root` with `config` as tiny.yaml."""
    root.mkdir(parents=True, exist_ok=True)
    for name in ("Snakefile", "config.yaml"):
        shutil.copy(ROOT / name, root)
    shutil.copytree(ROOT / "workflow", root / "workflow")
    (root / "tiny.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    return root


def snakemake(workdir, *args, configfiles=("tiny.yaml",), timeout=1200):
    """`snakemake <args> --cores 2 --configfile <configfiles>` in `workdir`, its output captured."""
    cmd = [sys.executable, "-m", "snakemake", *args, "--cores", "2", "--configfile", *configfiles]
    return subprocess.run(cmd, cwd=workdir, capture_output=True, text=True, timeout=timeout)


def job_counts(output):
    """{rule: count} from the 'Job stats' table of snakemake's output."""
    table = output.split("Job stats:", 1)[1] if "Job stats:" in output else ""
    return {m.group(1): int(m.group(2)) for m in re.finditer(r"^(\w+)\s+(\d+)\s*$", table, re.M)
            if m.group(1) != "total"}


def _session_dir(tmp_path_factory):
    """A folder of this test session that every xdist worker sees."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


@pytest.fixture(scope="session")
def tiny_study(tmp_path_factory):
    """The folder of the tiny study, every target built (read it, never run Snakemake in it)."""
    shared = _session_dir(tmp_path_factory)
    workdir, status = shared / "tiny-study", shared / "tiny-study.json"
    with open(shared / "tiny-study.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not status.exists():
            proc = snakemake(workspace(workdir), "all")
            status.write_text(json.dumps({"returncode": proc.returncode,
                                          "output": proc.stdout[-3000:] + proc.stderr[-3000:]}))
    built = json.loads(status.read_text())
    assert built["returncode"] == 0, built["output"]
    return workdir


@pytest.fixture(scope="module")
def tiny_study_copy(tiny_study, tmp_path_factory):
    """A copy of the tiny study (results and Snakemake's records, times kept) that one test module
    may run Snakemake in."""
    copy = tmp_path_factory.mktemp("tiny-study-copy") / "study"
    shutil.copytree(tiny_study, copy, symlinks=True)
    return copy
