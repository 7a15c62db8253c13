"""What made a result: the code (natgrad's version, git commit, dirty flag), the packages that shaped
its numbers, its settings. (The digest of the code each kind of job runs, which reruns it when the
code changes: `natgrad.study.code_digest`.)
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
