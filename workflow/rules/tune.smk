# The tune stage (restricted MNIST, `overfitting.tune`): each tuned method's grid on the pilot seeds
# (overfitting_train runs the pilots), its choice by the rule of natgrad.study.overfitting.tune, and
# one table per experiment. The study's runs of a tuned method read its record (overfitting.smk).

TUNE = "results/tune"
# The pilot run stores of each tuned (experiment, method): every grid point × every pilot seed.
TUNE_PILOTS = {}
for (name, m), job in OVERFITTING_JOBS.items():
    tune = job["methods"][m].get("tune")
    if tune and tune["method"] == m:
        TUNE_PILOTS[name, m] = []
        for settings in overfitting_tune.points(tune["grid"]):
            pilot = overfitting_tune.pilot_spec(job, m, settings)
            key = settings_digest([pilot, datasets_entry(pilot["dataset"])])
            OVERFITTING_SPECS["tune", name, m, key] = pilot
            TUNE_PILOTS[name, m] += [
                OVERFITTING_RUN.format(stage="tune", experiment=name, method=m, key=key, seed=s) for s in tune["seeds"]
            ]
# A record's path is keyed like the study's runs of its method (grid, pilot seeds, fixed settings).
TUNE_RECORDS = {job: f"{TUNE}/{job[0]}/{job[1]}-{OVERFITTING_KEYS[job]}.json" for job in TUNE_PILOTS}
TUNE_TARGETS = [f"{TUNE}/{name}.csv" for name in dict.fromkeys(name for name, _ in TUNE_PILOTS)]


rule tune_choose:
    """A tuned method's record: every grid point's final validation errors and the choice."""
    input:
        lambda wc: TUNE_PILOTS[wc.experiment, wc.method],
    output:
        f"{TUNE}/{{experiment}}/{{method}}-{{key}}.json",
    params:
        tune=lambda wc: as_json(OVERFITTING_JOBS[wc.experiment, wc.method]["methods"][wc.method]["tune"]),
        runs=lambda wc, input: stores(input),
        code=code_digest("overfitting_train"),
    wildcard_constraints:
        experiment="[A-Za-z0-9_]+",
        method="[a-z_]+",
        key="[0-9a-f]+",
    threads: RESOURCES["default"]["threads"]
    resources:
        mem_mb=RESOURCES["default"]["mem_mb"],
        runtime=RESOURCES["default"]["runtime"],
    log:
        "results/logs/tune/{experiment}/{method}-{key}.log",
    shell:
        "python -m natgrad.study overfitting tune --experiment {wildcards.experiment}"
        " --method {wildcards.method} --tune {params.tune:q} --runs {params.runs} --out {output} 2> {log}"


rule tune_table:
    """results/tune/<experiment>.csv: one row per grid point of every tuned method."""
    input:
        lambda wc: [path for job, path in TUNE_RECORDS.items() if job[0] == wc.experiment],
    output:
        report(f"{TUNE}/{{experiment}}.csv", caption="../report/tune.rst", category="Tune stage"),
    wildcard_constraints:
        experiment="[A-Za-z0-9_]+",
    threads: RESOURCES["default"]["threads"]
    resources:
        mem_mb=RESOURCES["default"]["mem_mb"],
        runtime=RESOURCES["default"]["runtime"],
    log:
        "results/logs/tune/{experiment}-table.log",
    shell:
        "python -m natgrad.study overfitting tune-table --records {input} --csv {output} 2> {log}"
