# Shared helpers: where rules find python and the package, config slices as rule parameters and
# the resources every job asks for. A failed job prints its one-line error (naming the file, key or
# job at fault) on stdout, the console, as well as in its log (natgrad.study.cli).
import json
import os
import sys
from pathlib import Path

from natgrad.study.data.inspect import dataset_files
from natgrad.study.order import spec as order_spec
from natgrad.study.overfitting import spec as overfitting_spec
from natgrad.study.overfitting import tune as overfitting_tune
from natgrad.study.provenance import code_digest, settings_digest

# Rules run `python -m natgrad.study ...` with the interpreter running snakemake (its bin directory
# goes first on PATH, so jobs, SLURM jobs too, need no activated environment), and the package's own
# sources first on PYTHONPATH.
os.environ["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
os.environ["PYTHONPATH"] = os.pathsep.join(
    [str(Path(workflow.main_snakefile).parent / "src")]
    + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
)

COMPILE_CACHE = "results/.jax-cache"
RESOURCES = config["resources"]


def as_json(value):
    """A config slice as one JSON argument; as a rule param it triggers reruns on change."""
    return json.dumps(value, sort_keys=True)


def datasets_entry(name):
    """The one `datasets:` entry a rule reads (embedded sources need none)."""
    return {name: config["datasets"][name]} if name in config["datasets"] else {}


def stores(paths):
    """Store paths from their `.done` markers (the rules' outputs; stores keep no foreign files)."""
    return [p[: -len(".done")] for p in paths]


def overfitting_spec_of(wc):
    """The spec of an overfitting_train job (a study run or a tune stage's pilot run)."""
    return OVERFITTING_SPECS[wc.stage, wc.experiment, wc.method, wc.key]


def overfitting_tune_record(wc):
    """A tuned method's runs read the tune record of the method whose settings they take."""
    tune = overfitting_spec_of(wc)["methods"][wc.method].get("tune")
    return {"tuned": TUNE_RECORDS[wc.experiment, tune["method"]]} if tune else {}
