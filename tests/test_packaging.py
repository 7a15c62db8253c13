"""Packaging: what `pip install natgrad` promises (README, "Versions").

The library depends on jax, jaxlib and optax only; `import natgrad` imports neither flax (the
`models` extra) nor the study; the version is one number in pyproject.toml and `natgrad.__version__`;
the package ships `py.typed`.
"""
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import natgrad

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def _name(requirement: str) -> str:
    return re.match(r"[A-Za-z0-9_.-]+", requirement).group(0).lower()


def test_version_is_pyprojects():
    assert natgrad.__version__ == PYPROJECT["project"]["version"]


def test_library_requires_only_jax_jaxlib_optax_without_upper_bounds():
    requirements = PYPROJECT["project"]["dependencies"]
    assert sorted(_name(r) for r in requirements) == ["jax", "jaxlib", "optax"]
    assert not any("<" in r or "==" in r for r in requirements), requirements


def test_flax_only_through_the_models_extra():
    extras = PYPROJECT["project"]["optional-dependencies"]
    assert [_name(r) for r in extras["models"]] == ["flax"]
    assert "jax==0.9.1" in extras["study"] and "kfac-jax==0.0.8" in extras["study"]


def test_import_natgrad_imports_no_flax_and_no_study():
    code = ("import sys, natgrad, natgrad.preconditioners; "
            "print(sorted({m.split('.')[0] if not m.startswith('natgrad') else m "
            "for m in sys.modules if m.startswith(('flax', 'natgrad.study', 'kfac_jax', 'snakemake'))}))")
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    assert out.strip() == "[]"


def test_py_typed_is_shipped():
    assert (Path(natgrad.__file__).parent / "py.typed").is_file()
    assert "py.typed" in PYPROJECT["tool"]["setuptools"]["package-data"]["natgrad"]
