# Overfitting (paper section 5, table 1, figures 2 and 4): training jobs, aggregation, figures, table.

OVERFITTING = "results/overfitting"
OVERFITTING_EXPERIMENTS = overfitting_spec.experiments(config["overfitting"])


# The run stores of each experiment: methods × seeds.
OVERFITTING_RUNS = {
    name: [f"{OVERFITTING}/{name}/runs/{m}/seed{s}.zarr" for m in spec["methods"] for s in spec["seeds"]]
    for name, spec in OVERFITTING_EXPERIMENTS.items()
}
# Table 1 (results/overfitting/table.csv and its HTML), figures 2/4 of every experiment.
OVERFITTING_TARGETS = [f"{OVERFITTING}/table.csv", f"{OVERFITTING}/table.html"] + [
    f"{OVERFITTING}/{name}/curves_{x}.png" for name in OVERFITTING_EXPERIMENTS for x in ("updates", "wallclock")
]


rule overfitting_train:
    conda:
        CONDA_ENV
    output:
        directory(f"{OVERFITTING}/{{experiment}}/runs/{{method}}/seed{{seed}}.zarr"),
    params:
        spec=lambda wc: as_json(overfitting_spec.job_spec(config["overfitting"], wc.experiment, wc.method)),
        datasets=lambda wc: as_json(datasets_entry(OVERFITTING_EXPERIMENTS[wc.experiment]["dataset"])),
        compile_cache=COMPILE_CACHE,
    wildcard_constraints:
        experiment="[A-Za-z0-9_]+",
        method="[a-z_]+",
        seed="[0-9]+",
    log:
        "results/logs/overfitting/{experiment}/{method}/seed{seed}.log",
    shell:
        "python -m natgrad.study overfitting train --experiment {wildcards.experiment}"
        " --method {wildcards.method} --seed {wildcards.seed}"
        " --spec {params.spec:q} --datasets {params.datasets:q} --out {output}"
        " --compile-cache {params.compile_cache} --verbose 2> {log}"


rule overfitting_aggregate:
    conda:
        CONDA_ENV
    input:
        lambda wc: OVERFITTING_RUNS[wc.experiment],
    output:
        directory(f"{OVERFITTING}/{{experiment}}/runs.zarr"),
    wildcard_constraints:
        experiment="[A-Za-z0-9_]+",
    log:
        "results/logs/overfitting/{experiment}/aggregate.log",
    shell:
        "python -m natgrad.study overfitting aggregate --experiment {wildcards.experiment}"
        " --runs {input} --out {output} 2> {log}"


rule overfitting_figures:
    conda:
        CONDA_ENV
    input:
        f"{OVERFITTING}/{{experiment}}/runs.zarr",
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
    wildcard_constraints:
        experiment="[A-Za-z0-9_]+",
    log:
        "results/logs/overfitting/{experiment}/figures.log",
    shell:
        "python -m natgrad.study overfitting plot --runs {input} --updates {output.updates}"
        " --wallclock {output.wallclock} --title {wildcards.experiment} 2> {log}"


rule overfitting_table:
    """Table 1: one row per experiment and method, from every experiment's aggregated store."""
    conda:
        CONDA_ENV
    input:
        [f"{OVERFITTING}/{name}/runs.zarr" for name in OVERFITTING_EXPERIMENTS],
    output:
        csv=f"{OVERFITTING}/table.csv",
        html=report(
            f"{OVERFITTING}/table.html",
            caption="../report/overfitting_table.rst",
            category="Overfitting (table 1, figures 2 and 4)",
        ),
    log:
        "results/logs/overfitting/table.log",
    shell:
        "python -m natgrad.study overfitting table --runs {input} --csv {output.csv}"
        " --html {output.html} 2> {log}"
