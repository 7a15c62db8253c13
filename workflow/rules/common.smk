# Shared by every rule file. Where rules find python and the package, config slices as rule
# parameters, the resources every job asks for. Nothing here knows an experiment; each rule file
# reads its own experiment's plan (natgrad.study.<experiment>.plan). A failed job prints its
# one-line error (naming the file, key or job at fault) on stdout, the console, as well as in its
# log (natgrad.study.cli).
import json
import os
import sys
from pathlib import Path

from natgrad.study.config import datasets_entry
from natgrad.study.data.inspect import dataset_files
from natgrad.study.code_digest import code_digest

# Rules run `python -m natgrad.study ...` with the interpreter running snakemake (its bin directory
# goes first on PATH, so jobs, SLURM jobs too, need no activated environment), and the checkout's
# sources (the Snakefile's SRC, which the workflow itself imports) first on PYTHONPATH.
os.environ["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
os.environ["PYTHONPATH"] = os.pathsep.join(
    [str(SRC)]
    + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
)

COMPILE_CACHE = "results/.jax-cache"
# What a job asks of the machine or the cluster (config `resources:`), given once: every rule takes
# JOB's, the training rules TRAIN_JOB's (a GPU, and retries: they resume from their checkpoints).
JOB = {
    "threads": config["resources"]["default"]["threads"],
    "resources": {k: config["resources"]["default"][k] for k in ("mem_mb", "runtime")},
}
TRAIN_JOB = {
    "threads": config["resources"]["train"]["threads"],
    "resources": {k: config["resources"]["train"][k] for k in ("gpu", "mem_mb", "runtime")},
    "retries": config["resources"]["retries"],
}


def as_json(value):
    """A config slice as one JSON argument; as a rule param it triggers reruns on change."""
    return json.dumps(value, sort_keys=True)


def stores(paths):
    """Store paths from their `.done` markers (the rules' outputs; stores keep no foreign files)."""
    return [p[: -len(".done")] for p in paths]
