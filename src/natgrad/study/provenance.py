"""What made a result: the code (natgrad's version, git commit, dirty flag), the packages that shaped
its numbers, its settings; and a digest of the source files each kind of job runs.

The digests are rule parameters (`workflow/rules/*.smk`), so that editing the code a job runs
reruns that job (Snakemake's `params` rerun trigger), and only that job kind: a change to the
plots never retrains anything.
"""
from __future__ import annotations

import functools
import hashlib
import json
import subprocess
from importlib import metadata
from pathlib import Path

#: Packages whose versions can change a stored number.
PACKAGES = ("natgrad", "jax", "jaxlib", "flax", "optax", "kfac-jax", "numpy", "scipy", "xarray",
            "zarr", "scikit-learn", "mlxtend", "matplotlib")

PACKAGE_ROOT = Path(__file__).resolve().parents[1]  # src/natgrad
_LIBRARY = ("*.py", "solvers/*.py")
_STUDY = ("study/config.py", "study/methods.py", "study/model.py", "study/stores.py",
          "study/provenance.py", "study/checkpoints.py", "study/checked.py",
          "study/data/**/*.py")
#: The source files each job kind runs (globs under src/natgrad).
JOB_CODE = {
    "order_data": _STUDY + ("study/order/problem.py", "study/order/spec.py", "study/order/cli.py"),
    "order_train": _LIBRARY + _STUDY + ("study/order/problem.py", "study/order/spec.py",
                                        "study/order/train.py", "study/order/cli.py"),
    "order_aggregate": ("study/stores.py", "study/order/aggregate.py", "study/order/cli.py"),
    "order_scaling": ("study/stores.py", "study/statistics.py", "study/order/frontier.py",
                      "study/order/scaling.py", "study/order/plots.py", "study/order/cli.py",
                      "study/figures.py"),
    "overfitting_train": _LIBRARY + _STUDY + ("study/overfitting/*.py",),
    "toy": _LIBRARY + ("study/toy/*.py", "study/figures.py"),
    "equivalence": _LIBRARY + ("study/equivalence/*.py",),
    "claims": ("study/claims/*.py", "study/statistics.py", "study/order/frontier.py", "study/stores.py", "study/overfitting/aggregate.py",
               "study/toy/paths.py", "study/toy/model.py"),
}


def package_versions(packages=PACKAGES):
    versions = {}
    for name in packages:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


@functools.lru_cache(maxsize=1)
def git_state():
    """(commit, dirty) of the checkout natgrad runs from; ("unknown", None) outside a git checkout."""
    def git(*args):
        return subprocess.run(["git", "-C", str(PACKAGE_ROOT), *args], capture_output=True,
                              text=True, timeout=30, check=True).stdout.strip()

    try:
        commit = git("rev-parse", "HEAD")
        dirty = bool(git("status", "--porcelain", "--untracked-files=no"))
    except (OSError, subprocess.SubprocessError):
        return "unknown", None
    return commit, dirty


def provenance_attrs(config=None):
    """Store attributes: code, packages and (when given) the settings that made the numbers."""
    commit, dirty = git_state()
    attrs = {"natgrad_version": package_versions(("natgrad",))["natgrad"],
             "git_commit": commit, "git_dirty": "unknown" if dirty is None else str(dirty).lower(),
             "package_versions": json.dumps(package_versions(), sort_keys=True)}
    if config is not None:
        attrs["config"] = json.dumps(config, sort_keys=True)
    return attrs


def settings_digest(settings):
    """A short hash of settings (JSON): it keys a store's path and a checkpoint, so results of other
    settings are kept beside them and never resumed by mistake."""
    return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:16]


def code_digest(kind):
    """A short SHA-256 of the source files job kind `kind` runs (see `JOB_CODE`)."""
    h = hashlib.sha256()
    files = sorted({p for pattern in JOB_CODE[kind] for p in PACKAGE_ROOT.glob(pattern)})
    for path in files:
        h.update(str(path.relative_to(PACKAGE_ROOT)).encode())
        h.update(path.read_bytes())
    return h.hexdigest()[:16]
