"""`snakemake --lint` has nothing to say about the workflow but the one recommendation it cannot
follow: a conda environment per rule (the rules run in the environment that runs Snakemake;
README, "Running on a SLURM cluster", says why). The same run (one Snakemake start, seconds, for
both) shows that the workflow imports its own checkout's natgrad, the code its jobs run, whatever
the environment holds: it lints a copy of the checkout with another checkout's natgrad first in
the environment."""
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ACCEPTED = "Specify a conda environment or container for each rule."
MARKER = "natgrad.study.registry imported from"


def checkout_copy(root):
    """A copy of the checkout (workflow and src/) whose registry prints where it is imported from."""
    root.mkdir()
    for name in ("Snakefile", "config.yaml"):
        shutil.copy(ROOT / name, root / name)
    for name in ("workflow", "src"):
        shutil.copytree(ROOT / name, root / name, ignore=shutil.ignore_patterns("__pycache__"))
    with (root / "src/natgrad/study/registry.py").open("a") as f:
        f.write(f"\nimport sys\nprint({MARKER!r}, __file__, file=sys.stderr)\n")
    return root


def test_snakemake_lint_is_clean_but_for_conda_and_imports_the_checkouts_natgrad(tmp_path):
    copy = checkout_copy(tmp_path / "checkout")
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}  # another checkout's natgrad, first
    proc = subprocess.run([sys.executable, "-m", "snakemake", "--lint"], cwd=copy, env=env,
                          capture_output=True, text=True, timeout=300)
    out = proc.stdout + proc.stderr
    lints = re.findall(r"^\s+\* (.+?):?$", out, re.M)
    assert lints, out[-2000:]  # the linter ran
    assert set(lints) == {ACCEPTED}, set(lints)
    imported = re.findall(re.escape(MARKER) + r" (\S+)", proc.stderr)
    assert imported, out[-2000:]
    assert Path(imported[0]).resolve() == (copy / "src/natgrad/study/registry.py").resolve()
