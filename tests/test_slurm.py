"""The workflow on a real SLURM: a single-node cluster on localhost (tests/local_slurm.sh).

Runs the `order` experiment of a tiny study (training and aggregation) twice, once locally and once through
`--profile workflow/profiles/slurm`, and checks that
  - both runs produce the same files, and the Zarr stores hold the same numbers;
  - training jobs asked SLURM for a GPU (`--gres=gpu:1`, partition gpu) and no other job did.
The job records come from `squeue --states=all` after the run: the local cluster keeps finished jobs
for MinJobAge = 1 h, and has no accounting database (so the run uses `--slurm-status-command squeue`).

Needs root (apt-get install of SLURM if missing, root daemons, /etc/slurm/slurm.conf); skipped
otherwise. Every SLURM call is bounded by `timeout -k`; the daemons are stopped even when the test
fails. `pytest -m "not slurm"` leaves it out.
"""
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.slurm

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "tests" / "local_slurm.sh"
PROFILE = ROOT / "workflow" / "profiles" / "slurm"
# The `order` experiment up to its aggregated store: training (on SLURM: a GPU job) and aggregation
# (a CPU job). Its figures are left out to keep the test short (each stage costs a SLURM poll cycle).
TARGETS = ["results/order/order.zarr.done", "results/order/variance.csv"]  # a store's marker
TRAINING_RULES = {"order_train", "overfitting_train"}
SNAKEMAKE_TIMEOUT = 300  # s, for each of the two runs

# What the local cluster lacks compared to a production one, given on the command line on top of the
# project's profile (partitions cpu/gpu and the gres come from the profile unchanged).
LOCAL_CLUSTER_ARGS = [
    "--slurm-status-command", "squeue",  # no accounting database: sacct would never answer
    "--slurm-no-account",
    "--slurm-init-seconds-before-status-checks", "2",
    "--seconds-between-status-checks", "1",
    "--latency-wait", "5",
    "--jobs", "4",
]


def _tiny_config(config):
    """The study's smoke config with `order` shrunk to one method, one segment, two resamples and a
    few hundred samples: one training job (both resamples, vmapped), then the aggregation."""
    order = config["order"]
    order.update(
        online_samples=512, segment_size=256, segments=1, resamples=2, seeds=[0], batch_size=64,
        eval_every=4, eval_batch_size=256, heldout_size=64, validation_size=64, checkpoint_every=4,
        vmap_resamples=True, model={"hidden": [16], "activation": "tanh"},
    )
    order["methods"] = {"msgd": order["methods"]["msgd"]}
    order["frontier"] = None  # one learning rate: one training job
    return config


def _slurm_skip_reason():
    if os.name != "posix" or os.geteuid() != 0:
        return "needs root: installs SLURM and starts munged, slurmctld and slurmd as root"
    have_slurm = all(shutil.which(t) for t in ("slurmctld", "slurmd", "sinfo", "munged"))
    if not have_slurm and not shutil.which("apt-get"):
        return "SLURM is not installed and there is no apt-get to install it"
    for name in ("slurm.conf", "gres.conf"):
        path = Path("/etc/slurm") / name
        if path.exists() and not path.is_symlink():
            return f"{path} belongs to a real SLURM installation; not replacing it"
    return None


def _run(cmd, timeout, **kwargs):
    """Run a command under `timeout -k` (so a hung SLURM client dies even if it ignores SIGTERM)."""
    cmd = ["timeout", "-k", "10", str(timeout), *map(str, cmd)]
    return subprocess.run(cmd, capture_output=True, text=True, **kwargs)


@pytest.fixture(scope="module")
def slurm_cluster():
    reason = _slurm_skip_reason()
    if reason:
        pytest.skip(reason)
    try:
        start = _run(["bash", SCRIPT, "start"], timeout=900)  # apt-get install on a bare machine
        if start.returncode != 0:
            pytest.fail(f"local SLURM did not start (rc {start.returncode}):\n{start.stdout}\n{start.stderr}")
        yield
    finally:
        stop = _run(["bash", SCRIPT, "stop"], timeout=60)
        print(stop.stdout, stop.stderr, file=sys.stderr)


def _study_dir(path):
    """A copy of the workflow (Snakefile, workflow/, tiny config) in `path`."""
    path.mkdir(parents=True)
    shutil.copy(ROOT / "Snakefile", path / "Snakefile")
    shutil.copytree(ROOT / "workflow", path / "workflow", ignore=shutil.ignore_patterns("__pycache__"))
    config = yaml.safe_load((ROOT / "config.yaml").read_text())
    (path / "config.yaml").write_text(yaml.safe_dump(_tiny_config(config), sort_keys=False))
    return path


def _snakemake(workdir, *args):
    cmd = [sys.executable, "-m", "snakemake", "--directory", workdir, *args, *TARGETS]
    t0 = time.monotonic()
    result = _run(cmd, timeout=SNAKEMAKE_TIMEOUT, cwd=workdir)
    result.wall_s = time.monotonic() - t0
    return result


def _check(result, workdir, what):
    if result.returncode == 0:
        return
    logs = sorted((workdir / "logs").rglob("*.log")) + sorted((workdir / ".snakemake" / "slurm_logs").rglob("*.log"))
    tails = "".join(f"\n--- {p.relative_to(workdir)}\n{p.read_text(errors='replace')[-2000:]}" for p in logs)
    timed_out = ", timed out" if result.returncode in (124, 137) else ""
    pytest.fail(f"{what} run failed (rc {result.returncode}{timed_out}):\n{result.stdout[-4000:]}\n"
                f"{result.stderr[-8000:]}{tails}")


def _slurm_jobs():
    """{job id: (rule, tres per node, partition)} of every job the cluster remembers."""
    out = _run(["squeue", "--states=all", "--noheader", "--format=%i|%k|%b|%P"], timeout=30)
    assert out.returncode == 0, out.stderr
    jobs = {}
    for line in out.stdout.splitlines():
        job_id, comment, tres, partition = line.strip().split("|")
        match = re.fullmatch(r"rule_(.+?)(?:_wildcards_.*)?", comment)
        if match:  # a Snakemake job (the script's own `srun true` has no comment)
            jobs[int(job_id)] = (match.group(1), tres, partition)
    return jobs


# Variables that measure time (wall clock of training) differ between any two runs; everything else
# must be equal to the last bit.
TIMING = re.compile(r"wall|elapsed|seconds|duration|(^|_)time(_|$)")


def _values(store):
    import xarray as xr

    with xr.open_zarr(store, consolidated=False) as ds:
        ds = ds.load()
    return ds.drop_vars([name for name in ds.variables if TIMING.search(str(name))])


def _outputs(workdir):
    """Relative paths of the run's results (files, and Zarr stores as one entry each)."""
    results = workdir / "results"
    stores = sorted(p.relative_to(results) for p in results.rglob("*.zarr") if p.is_dir())
    files = sorted(
        p.relative_to(results)
        for p in results.rglob("*")
        if p.is_file()
        and not any(part.endswith(".zarr") or part.startswith(".") for part in p.relative_to(results).parts)
    )
    return stores, files


def test_order_on_slurm_matches_local_run(slurm_cluster, tmp_path):
    import xarray as xr

    local_dir = _study_dir(tmp_path / "local")
    slurm_dir = _study_dir(tmp_path / "slurm")
    known_jobs = set(_slurm_jobs())

    # one after the other: run at once, they would share (and fight for) the same cores
    local = _snakemake(local_dir, "--cores", "2")
    _check(local, local_dir, "local")
    slurm = _snakemake(slurm_dir, "--profile", PROFILE, *LOCAL_CLUSTER_ARGS)
    print(f"local run {local.wall_s:.0f} s, SLURM run {slurm.wall_s:.0f} s", file=sys.stderr)
    _check(slurm, slurm_dir, "SLURM")

    # which rules went to SLURM, and what each asked for
    jobs = {k: v for k, v in _slurm_jobs().items() if k not in known_jobs}
    submitted = set(re.findall(r"has been submitted with SLURM jobid (\d+)", slurm.stdout + slurm.stderr))
    assert submitted and {int(j) for j in submitted} <= set(jobs), (submitted, jobs)
    rules = {rule for rule, _, _ in jobs.values()}
    assert rules & TRAINING_RULES, f"no training job went to SLURM: {sorted(rules)}"
    assert rules - TRAINING_RULES, f"only training jobs went to SLURM: {sorted(rules)}"
    for job_id, (rule, tres, partition) in sorted(jobs.items()):
        if rule in TRAINING_RULES:
            assert "gpu:1" in tres and partition == "gpu", f"job {job_id} ({rule}) asked {tres} on {partition}"
        else:
            assert "gpu" not in tres and partition == "cpu", f"job {job_id} ({rule}) asked {tres} on {partition}"

    # same results, same numbers
    local_stores, local_files = _outputs(local_dir)
    slurm_stores, slurm_files = _outputs(slurm_dir)
    assert local_stores, "the local run wrote no Zarr store"
    assert slurm_stores == local_stores
    assert slurm_files == local_files
    for store in local_stores:
        local_values, slurm_values = _values(local_dir / "results" / store), _values(slurm_dir / "results" / store)
        assert local_values.data_vars, f"{store}: nothing to compare"
        xr.testing.assert_equal(local_values, slurm_values)
