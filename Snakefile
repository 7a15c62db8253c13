# natgrad study: Pascanu & Bengio (2014), "Revisiting Natural Gradient for Deep Networks".
# One experiment per entry of natgrad.study.registry.EXPERIMENTS: its rule file
# workflow/rules/<name>.smk and its targets; the rules only call the package (python -m natgrad.study).
import sys
from pathlib import Path

from snakemake.exceptions import WorkflowError
from snakemake.utils import min_version

# In a checkout the workflow imports the checkout's natgrad, the code its jobs run (common.smk puts
# SRC first on their PYTHONPATH), whatever the environment has installed: the digests, the registry
# and the config resolution then describe the code that runs. (A workflow without src/ beside it
# runs the environment's natgrad, its jobs too.)
SRC = Path(workflow.basedir) / "src"
CHECKOUT = (SRC / "natgrad").is_dir()
if CHECKOUT:
    sys.path.insert(0, str(SRC))

import natgrad

if CHECKOUT and Path(natgrad.__file__).resolve().parent != (SRC / "natgrad").resolve():
    raise WorkflowError(f"natgrad was imported from {natgrad.__file__}, not from this checkout's {SRC}")

from natgrad.study.registry import EXPERIMENTS, check_data, resolve

min_version("9.0")


configfile: "config.yaml"


# The one way a config becomes usable: renamed keys refused, the schema's defaults filled in
# (workflow/schemas/config.schema.yaml, the only place defaults live), every experiment's cross-key
# checks run; then its data sets' files and headers, and every split against its data set, before
# any job starts.
config.update(resolve(config, Path(workflow.basedir) / "workflow/schemas/config.schema.yaml"))
check_data(config)


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"


for experiment in EXPERIMENTS:

    include: experiment.rules


# Rules find `python` and natgrad through these (set in common.smk); SLURM jobs get them too.
envvars:
    "PATH",
    "PYTHONPATH",


# {target rule: files} of every experiment: `order`, `scaling`, `overfitting`, `tune`, `toy`, ...
TARGETS = {target: files for experiment in EXPERIMENTS for target, files in experiment.targets(config).items()}


rule all:
    input:
        [path for files in TARGETS.values() for path in files],
    default_target: True


for target, files in TARGETS.items():

    rule:
        name:
            target
        input:
            files,
