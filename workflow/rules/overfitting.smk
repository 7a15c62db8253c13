# Overfitting (paper section 5, table 1, figures 2 and 4): training jobs, aggregation, figures, table.
# Runs live at paths keyed by what defines them: another config keeps them beside.

OVERFITTING = "results/overfitting"
OVERFITTING_EXPERIMENTS = overfitting_spec.experiments(config["overfitting"])
OVERFITTING_JOBS = {
    (name, m): overfitting_spec.job_spec(config["overfitting"], name, m)
    for name, spec in OVERFITTING_EXPERIMENTS.items()
    for m in spec["methods"]
}
OVERFITTING_KEYS = {
    job: settings_digest([spec, datasets_entry(spec["dataset"])]) for job, spec in OVERFITTING_JOBS.items()
}
# A training run: a study run (stage `overfitting`) or a pilot run of the tune stage (`tune`, tune.smk
# adds their specs to OVERFITTING_SPECS), by the key of its spec.
OVERFITTING_RUN = "results/{stage}/{experiment}/runs/{method}-{key}/seed{seed}.zarr.done"
OVERFITTING_SPECS = {("overfitting", *job, OVERFITTING_KEYS[job]): spec for job, spec in OVERFITTING_JOBS.items()}
# The run stores of each experiment: methods × seeds.
OVERFITTING_RUNS = {
    name: [
        OVERFITTING_RUN.format(stage="overfitting", experiment=name, method=m, key=OVERFITTING_KEYS[name, m], seed=s)
        for m in spec["methods"]
        for s in spec["seeds"]
    ]
    for name, spec in OVERFITTING_EXPERIMENTS.items()
}
# Table 1 (results/overfitting/table.csv and its HTML), figures 2/4 of every experiment.
OVERFITTING_TARGETS = [f"{OVERFITTING}/table.csv", f"{OVERFITTING}/table.html"] + [
    f"{OVERFITTING}/{name}/curves_{x}.png" for name in OVERFITTING_EXPERIMENTS for x in ("updates", "wallclock")
]


rule overfitting_train:
    """One (method, seed) run; retried after a failure or preemption, it resumes from its checkpoint."""
    input:
        unpack(overfitting_tune_record),
        data=lambda wc: list(dataset_files(OVERFITTING_EXPERIMENTS[wc.experiment]["dataset"], config["datasets"]).values()),
    output:
        touch(OVERFITTING_RUN),
    params:
        spec=lambda wc: as_json(overfitting_spec_of(wc)),
        datasets=lambda wc: as_json(datasets_entry(OVERFITTING_EXPERIMENTS[wc.experiment]["dataset"])),
        store=lambda wc, output: stores(output)[0],
        checkpoint="results/{stage}/checkpoints/{experiment}-{method}-{key}-seed{seed}.npz",
        compile_cache=COMPILE_CACHE,
        tuned=lambda wc, input: f"--tuned {input.tuned}" if "tuned" in input.keys() else "",
        code=code_digest("overfitting_train"),
    wildcard_constraints:
        stage="overfitting|tune",
        experiment="[A-Za-z0-9_]+",
        method="[a-z_]+",
        key="[0-9a-f]+",
        seed="[0-9]+",
    threads: RESOURCES["train"]["threads"]
    resources:
        gpu=RESOURCES["train"]["gpu"],
        mem_mb=RESOURCES["train"]["mem_mb"],
        runtime=RESOURCES["train"]["runtime"],
    retries: RESOURCES["retries"]
    log:
        "results/logs/{stage}/{experiment}/{method}-{key}-seed{seed}.log",
    shell:
        "python -m natgrad.study overfitting train --experiment {wildcards.experiment}"
        " --method {wildcards.method} --seed {wildcards.seed}"
        " --spec {params.spec:q} --datasets {params.datasets:q} --out {params.store}"
        " --checkpoint {params.checkpoint} --compile-cache {params.compile_cache} {params.tuned}"
        " --verbose 2> {log}"


rule overfitting_aggregate:
    input:
        lambda wc: OVERFITTING_RUNS[wc.experiment],
    output:
        touch(f"{OVERFITTING}/{{experiment}}/runs.zarr.done"),
    params:
        runs=lambda wc, input: stores(input),
        store=lambda wc, output: stores(output)[0],
    wildcard_constraints:
        experiment="[A-Za-z0-9_]+",
    threads: RESOURCES["default"]["threads"]
    resources:
        mem_mb=RESOURCES["default"]["mem_mb"],
        runtime=RESOURCES["default"]["runtime"],
    log:
        "results/logs/overfitting/{experiment}/aggregate.log",
    shell:
        "python -m natgrad.study overfitting aggregate --experiment {wildcards.experiment}"
        " --runs {params.runs} --out {params.store} 2> {log}"


rule overfitting_figures:
    input:
        f"{OVERFITTING}/{{experiment}}/runs.zarr.done",
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
    threads: RESOURCES["default"]["threads"]
    resources:
        mem_mb=RESOURCES["default"]["mem_mb"],
        runtime=RESOURCES["default"]["runtime"],
    log:
        "results/logs/overfitting/{experiment}/figures.log",
    shell:
        "python -m natgrad.study overfitting plot --runs {params.store} --updates {output.updates}"
        " --wallclock {output.wallclock} --title {wildcards.experiment} 2> {log}"


rule overfitting_table:
    """Table 1: one row per experiment and method, from every experiment's aggregated store."""
    input:
        [f"{OVERFITTING}/{name}/runs.zarr.done" for name in OVERFITTING_EXPERIMENTS],
    output:
        csv=f"{OVERFITTING}/table.csv",
        html=report(
            f"{OVERFITTING}/table.html",
            caption="../report/overfitting_table.rst",
            category="Overfitting (table 1, figures 2 and 4)",
        ),
    params:
        runs=lambda wc, input: stores(input),
    threads: RESOURCES["default"]["threads"]
    resources:
        mem_mb=RESOURCES["default"]["mem_mb"],
        runtime=RESOURCES["default"]["runtime"],
    log:
        "results/logs/overfitting/table.log",
    shell:
        "python -m natgrad.study overfitting table --runs {params.runs} --csv {output.csv}"
        " --html {output.html} 2> {log}"
