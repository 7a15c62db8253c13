# Shared helpers: where rules find python and the package, and config slices as rule parameters.
import json
import os
import sys
from pathlib import Path

from natgrad.study.order import spec as order_spec
from natgrad.study.overfitting import spec as overfitting_spec

# Rules run `python -m natgrad.study ...`. Without --use-conda, `python` is the interpreter running
# snakemake (its bin directory goes first on PATH, so jobs, SLURM jobs too, need no activated
# environment); with --use-conda it is the environment's of workflow/envs/natgrad.yaml, and the
# package's own sources come first on PYTHONPATH, so both run the same code.
os.environ["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
os.environ["PYTHONPATH"] = os.pathsep.join(
    [str(Path(workflow.main_snakefile).parent / "src")]
    + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
)

# The software every rule runs with under --use-conda (ignored without it).
CONDA_ENV = "../envs/natgrad.yaml"
COMPILE_CACHE = "results/.jax-cache"


def as_json(value):
    """A config slice as one JSON argument; as a rule param it triggers reruns on change."""
    return json.dumps(value, sort_keys=True)


def datasets_entry(name):
    """The one `datasets:` entry a rule reads (embedded sources need none)."""
    return {name: config["datasets"][name]} if name in config["datasets"] else {}
