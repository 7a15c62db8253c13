# Overfitting (paper section 5, table 1, figures 2 and 4) and its tune stage: training jobs (study
# runs and the tune stage's pilot runs), the tune records, aggregation, figures, table. Paths and
# specs come from natgrad.study.overfitting.plan; runs live at paths keyed by what defines them.
from natgrad.study.overfitting import plan as overfitting_plan

OVERFITTING = overfitting_plan.RESULTS
OVERFITTING_PLAN = overfitting_plan.Plan.of(config)


rule overfitting_train:
    """One (method, seeds) job: one seed, or a first-order method's seeds vmapped; retried after a
    failure or preemption, it resumes from its checkpoint."""
    input:
        unpack(OVERFITTING_PLAN.tune_record),
        data=lambda wc: list(dataset_files(OVERFITTING_PLAN.experiments[wc.experiment]["dataset"], config["datasets"]).values()),
    output:
        touch(overfitting_plan.RUN),
    params:
        spec=lambda wc: as_json(OVERFITTING_PLAN.spec(wc)),
        datasets=lambda wc: as_json(datasets_entry(config, OVERFITTING_PLAN.experiments[wc.experiment]["dataset"])),
        stores=lambda wc, output: overfitting_plan.store_paths(output),
        seeds=lambda wc: " ".join(str(s) for s in overfitting_plan.group_of(wc.seeds)),
        checkpoint="results/{stage}/checkpoints/{experiment}-{method}-{key}-seeds{seeds}.npz",
        compile_cache=COMPILE_CACHE,
        tuned=lambda wc, input: f"--tuned {input.tuned}" if "tuned" in input.keys() else "",
        code=code_digest("overfitting", "train"),
    wildcard_constraints:
        stage="overfitting|tune",
        experiment="[A-Za-z0-9_]+",
        method="[a-z_]+",
        key="[0-9a-f]+",
        seeds="[0-9]+(_[0-9]+)*",
    threads: TRAIN_JOB["threads"]
    resources:
        **TRAIN_JOB["resources"],
    retries: TRAIN_JOB["retries"]
    log:
        "results/logs/{stage}/{experiment}/{method}-{key}-seeds{seeds}.log",
    shell:
        "python -m natgrad.study overfitting train --experiment {wildcards.experiment}"
        " --method {wildcards.method} --seeds {params.seeds}"
        " --spec {params.spec:q} --datasets {params.datasets:q} --out {params.stores}"
        " --checkpoint {params.checkpoint} --compile-cache {params.compile_cache} {params.tuned}"
        " --verbose 2> {log}"


rule overfitting_aggregate:
    input:
        lambda wc: OVERFITTING_PLAN.runs[wc.experiment],
    output:
        touch(overfitting_plan.STORE),
    params:
        runs=lambda wc, input: overfitting_plan.store_paths(input),
        store=lambda wc, output: stores(output)[0],
        reported_at=lambda wc: OVERFITTING_PLAN.reported_at[wc.experiment],
    wildcard_constraints:
        experiment="[A-Za-z0-9_]+",
    threads: JOB["threads"]
    resources:
        **JOB["resources"],
    log:
        "results/logs/overfitting/{experiment}/aggregate.log",
    shell:
        "python -m natgrad.study overfitting aggregate --experiment {wildcards.experiment}"
        " --runs {params.runs} --reported-at {params.reported_at} --out {params.store} 2> {log}"


rule overfitting_figures:
    input:
        overfitting_plan.STORE,
    output:
        updates=report(
            f"{OVERFITTING}/{{experiment}}/curves_updates.png",
            caption="../report/overfitting_updates.rst",
            category="Overfitting (table 1, figures 2 and 4)",
            subcategory="{experiment}",
        ),
        wallclock=report(
            f"{OVERFITTING}/{{experiment}}/curves_wallclock.png",
            caption="../report/overfitting_wallclock.rst",
            category="Overfitting (table 1, figures 2 and 4)",
            subcategory="{experiment}",
        ),
    params:
        store=lambda wc, input: stores(input)[0],
    wildcard_constraints:
        experiment="[A-Za-z0-9_]+",
    threads: JOB["threads"]
    resources:
        **JOB["resources"],
    log:
        "results/logs/overfitting/{experiment}/figures.log",
    shell:
        "python -m natgrad.study overfitting plot --runs {params.store} --updates {output.updates}"
        " --wallclock {output.wallclock} --title {wildcards.experiment} 2> {log}"


rule overfitting_table:
    """Table 1: one row per experiment and method, from every experiment's aggregated store."""
    input:
        [overfitting_plan.STORE.format(experiment=name) for name in OVERFITTING_PLAN.experiments],
    output:
        csv=f"{OVERFITTING}/table.csv",
        html=report(
            f"{OVERFITTING}/table.html",
            caption="../report/overfitting_table.rst",
            category="Overfitting (table 1, figures 2 and 4)",
        ),
    params:
        runs=lambda wc, input: stores(input),
    threads: JOB["threads"]
    resources:
        **JOB["resources"],
    log:
        "results/logs/overfitting/table.log",
    shell:
        "python -m natgrad.study overfitting table --runs {params.runs} --csv {output.csv}"
        " --html {output.html} 2> {log}"


# The tune stage (`overfitting.tune`): each tuned method's grid on the pilot seeds (overfitting_train
# runs the pilots), its choice by the rule of natgrad.study.overfitting.tune, one table per
# experiment.


rule tune_choose:
    """A tuned method's record: every grid point's final validation errors and the choice."""
    input:
        lambda wc: OVERFITTING_PLAN.pilots[wc.experiment, wc.method],
    output:
        overfitting_plan.RECORD,
    params:
        tune=lambda wc: as_json(OVERFITTING_PLAN.specs["overfitting", wc.experiment, wc.method, wc.key]["methods"][wc.method]["tune"]),
        runs=lambda wc, input: overfitting_plan.store_paths(input),
        code=code_digest("overfitting", "tune"),
    wildcard_constraints:
        experiment="[A-Za-z0-9_]+",
        method="[a-z_]+",
        key="[0-9a-f]+",
    threads: JOB["threads"]
    resources:
        **JOB["resources"],
    log:
        "results/logs/tune/{experiment}/{method}-{key}.log",
    shell:
        "python -m natgrad.study overfitting tune --experiment {wildcards.experiment}"
        " --method {wildcards.method} --tune {params.tune:q} --runs {params.runs} --out {output} 2> {log}"


rule tune_table:
    """results/tune/<experiment>.csv: one row per grid point of every tuned method."""
    input:
        lambda wc: [path for job, path in OVERFITTING_PLAN.records.items() if job[0] == wc.experiment],
    output:
        report(f"{overfitting_plan.TUNE}/{{experiment}}.csv", caption="../report/tune.rst", category="Tune stage"),
    wildcard_constraints:
        experiment="[A-Za-z0-9_]+",
    threads: JOB["threads"]
    resources:
        **JOB["resources"],
    log:
        "results/logs/tune/{experiment}-table.log",
    shell:
        "python -m natgrad.study overfitting tune-table --records {input} --csv {output} 2> {log}"
