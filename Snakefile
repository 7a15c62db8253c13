# natgrad study: Pascanu & Bengio (2014), "Revisiting Natural Gradient for Deep Networks".
# One .smk per experiment under workflow/rules/; the rules only call the package (python -m natgrad.study).
from pathlib import Path

from snakemake.utils import min_version

from natgrad.study.config import check_data, resolve

min_version("9.0")


configfile: "config.yaml"


# The one way a config becomes usable: renamed keys refused, the schema's defaults filled in
# (workflow/schemas/config.schema.yaml, the only place defaults live), cross-key checks run; then
# the data sets' files and headers, and every split against its data set, before any job starts.
config.update(resolve(config, Path(workflow.basedir) / "workflow/schemas/config.schema.yaml"))
check_data(config)


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/order.smk"
include: "workflow/rules/scaling.smk"
include: "workflow/rules/overfitting.smk"
include: "workflow/rules/tune.smk"
include: "workflow/rules/toy.smk"
include: "workflow/rules/equivalence.smk"
include: "workflow/rules/claims.smk"


# Rules find `python` and natgrad through these (set in common.smk); SLURM jobs get them too.
envvars:
    "PATH",
    "PYTHONPATH",


rule all:
    input:
        ORDER_TARGETS,
        SCALING_TARGETS,
        TUNE_TARGETS,
        OVERFITTING_TARGETS,
        TOY_TARGETS,
        EQUIVALENCE_TARGETS,
        CLAIMS_TARGETS,
    default_target: True


rule order:
    input:
        ORDER_TARGETS,


rule scaling:
    input:
        SCALING_TARGETS,


rule overfitting:
    input:
        OVERFITTING_TARGETS,


rule tune:
    input:
        TUNE_TARGETS,


rule toy:
    input:
        TOY_TARGETS,


rule equivalence:
    input:
        EQUIVALENCE_TARGETS,


rule claims:
    input:
        CLAIMS_TARGETS,
