"""`snakemake --lint` has nothing to say about the workflow but the one recommendation it cannot
follow: a conda environment per rule (the rules run in the environment that runs Snakemake;
README, "Running on a SLURM cluster", says why)."""
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ACCEPTED = "Specify a conda environment or container for each rule."


def test_snakemake_lint_is_clean_but_for_conda():
    proc = subprocess.run([sys.executable, "-m", "snakemake", "--lint"], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    out = proc.stdout + proc.stderr
    lints = re.findall(r"^\s+\* (.+?):?$", out, re.M)
    assert lints, out[-2000:]  # the linter ran
    assert set(lints) == {ACCEPTED}, set(lints)
