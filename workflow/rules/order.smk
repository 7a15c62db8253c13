# Order robustness (paper section 6, figure 3): data sets, training jobs, aggregation, figures.
# Data sets and runs live at paths keyed by what defines them: another config keeps them beside.

ORDER = "results/order"
ORDER_DATA_CONFIG = order_spec.data_config(config["order"])
ORDER_DATASETS = datasets_entry(config["order"]["dataset"])
ORDER_DATA_DIR = "results/data/order/{}-{}-{}".format(
    config["order"]["dataset"], config["order"]["preset"], settings_digest([ORDER_DATA_CONFIG, ORDER_DATASETS])
)
ORDER_DATA = {part: f"{ORDER_DATA_DIR}/{part}.zarr.done" for part in ("train", "heldout", "validation")}
# Every training job's settings by the key its runs' paths carry: one per method and learning rate
# of its grid (order.frontier), at the study's stream length and at each of scaling.fractions.
ORDER_SCALES = {1.0: config["order"]}
for fraction in (config.get("scaling") or {}).get("fractions", []):
    ORDER_SCALES.setdefault(float(fraction), order_spec.scaled(config["order"], float(fraction)))
ORDER_JOBS = {
    scale: [(m, lr, job, settings_digest(job)) for m, lr, job in order_spec.jobs(cfg)]
    for scale, cfg in ORDER_SCALES.items()
}
ORDER_JOB_BY_KEY = {key: job for jobs in ORDER_JOBS.values() for _, _, job, key in jobs}
ORDER_RUN = f"{ORDER}/runs/{{method}}-{{key}}/seed{{seed}}/segment{{segment}}/resample{{resample}}.zarr.done"


# Every run of the study at each stream length: methods × rates × seeds × segments × resamples.
ORDER_RUNS = {
    scale: [
        ORDER_RUN.format(method=m, key=key, seed=s, segment=k, resample=r)
        for m, _, _, key in jobs
        for s in config["order"]["seeds"]
        for k in range(config["order"]["segments"])
        for r in range(config["order"]["resamples"])
    ]
    for scale, jobs in ORDER_JOBS.items()
}


# The calibrated method (order.calibration) takes its learning rate from the calibration record.
ORDER_CALIBRATED = order_spec.calibrated_method(config["order"])
ORDER_CALIBRATION = (
    f"{ORDER}/calibration/{ORDER_CALIBRATED}-{settings_digest(order_spec.job_config(config['order'], ORDER_CALIBRATED))}.json"
    if ORDER_CALIBRATED
    else None
)
ORDER_FIGURE_FORMAT = config["order"]["plot"]["format"]
# Figure 3 (variance per segment), its frontier (variance against final validation error), the
# validation curves, the aggregated store and its table, and the NISTP sheet showing what the stream
# does to the source images.
ORDER_TARGETS = [
    f"{ORDER}/figures/variance.{ORDER_FIGURE_FORMAT}",
    f"{ORDER}/figures/frontier.{ORDER_FIGURE_FORMAT}",
    f"{ORDER}/figures/validation.{ORDER_FIGURE_FORMAT}",
    f"{ORDER}/order.zarr.done",
    f"{ORDER}/variance.csv",
    "results/data/nistp_sheet.png",
]
# One job per (method, seed, segment) running its resamples as one vmapped program when
# `order.vmap_resamples`; else one job per resample (so adding a resample plans only its jobs).
ORDER_VMAPPED = config["order"]["vmap_resamples"]
ORDER_ALL_RESAMPLES = " ".join(str(r) for r in range(config["order"]["resamples"]))
ORDER_JOB = "{{method}}-{{key}}-seed{{seed}}-segment{{segment}}{}".format(
    "" if ORDER_VMAPPED else "-resample{resample}"
)


rule order_data:
    """The train part of the source (clean) and the deformed held-out and validation sets: the one
    split of the source, which every training job reads."""
    input:
        list(dataset_files(config["order"]["dataset"], config["datasets"]).values()),
    output:
        **{part: touch(path) for part, path in ORDER_DATA.items()},
    params:
        config=as_json(ORDER_DATA_CONFIG),
        datasets=as_json(ORDER_DATASETS),
        stores=lambda wc, output: stores(output),
        code=code_digest("order_data"),
    threads: RESOURCES["default"]["threads"]
    resources:
        mem_mb=RESOURCES["default"]["mem_mb"],
        runtime=RESOURCES["default"]["runtime"],
    log:
        f"results/logs/order/data-{Path(ORDER_DATA_DIR).name}.log",
    shell:
        "python -m natgrad.study order data --config {params.config:q} --datasets {params.datasets:q}"
        " --train {params.stores[0]} --heldout {params.stores[1]} --validation {params.stores[2]}"
        " 2> {log}"


if ORDER_CALIBRATED:

    rule order_calibrate:
        """Matched validation error as a rule: the calibrated method's learning rate, chosen from
        its grid by the final validation error closest to the reference method's."""
        input:
            **ORDER_DATA,
        output:
            ORDER_CALIBRATION,
        params:
            job=as_json(order_spec.job_config(config["order"], ORDER_CALIBRATED)),
            data=lambda wc, input: stores([input.train, input.heldout, input.validation]),
            compile_cache=COMPILE_CACHE,
            code=code_digest("order_train"),
        threads: RESOURCES["train"]["threads"]
        resources:
            gpu=RESOURCES["train"]["gpu"],
            mem_mb=RESOURCES["train"]["mem_mb"],
            runtime=RESOURCES["train"]["runtime"],
        retries: RESOURCES["retries"]
        log:
            f"results/logs/order/calibrate-{Path(ORDER_CALIBRATION).stem}.log",
        shell:
            "python -m natgrad.study order calibrate --job {params.job:q}"
            " --train {params.data[0]} --heldout {params.data[1]} --validation {params.data[2]}"
            " --out {output} --compile-cache {params.compile_cache} 2> {log}"


rule order_train:
    """One online run per resample of a segment: the stream with that segment replaced. Retried
    after a failure or preemption, it resumes from its checkpoint."""
    input:
        # the calibrated method's runs read the calibration record (its learning rate)
        unpack(lambda wc: {"calibration": ORDER_CALIBRATION} if "calibration" in ORDER_JOB_BY_KEY[wc.key] else {}),
        **ORDER_DATA,
    output:
        [touch(ORDER_RUN.format(method="{method}", key="{key}", seed="{seed}", segment="{segment}", resample=r)) for r in range(config["order"]["resamples"])]
        if ORDER_VMAPPED
        else [touch(ORDER_RUN)],
    params:
        job=lambda wc: as_json(ORDER_JOB_BY_KEY[wc.key]),
        resamples=lambda wc: ORDER_ALL_RESAMPLES if ORDER_VMAPPED else wc.resample,
        vmapped="--vmapped" if ORDER_VMAPPED else "",
        stores=lambda wc, output: stores(output),
        data=lambda wc, input: stores([input.train, input.heldout, input.validation]),
        checkpoint_every=config["order"]["checkpoint_every"],
        checkpoint=f"{ORDER}/checkpoints/{ORDER_JOB}.npz",
        compile_cache=COMPILE_CACHE,
        code=code_digest("order_train"),
        calibration=lambda wc, input: f"--calibration {input.calibration}" if "calibration" in input.keys() else "",
    wildcard_constraints:
        method="[A-Za-z0-9_]+",
        key="[0-9a-f]+",
        seed="[0-9]+",
        segment="[0-9]+",
        resample="[0-9]+",
    threads: RESOURCES["train"]["threads"]
    resources:
        gpu=RESOURCES["train"]["gpu"],
        mem_mb=RESOURCES["train"]["mem_mb"],
        runtime=RESOURCES["train"]["runtime"],
    retries: RESOURCES["retries"]
    log:
        f"results/logs/order/train/{ORDER_JOB}.log",
    shell:
        "python -m natgrad.study order train --job {params.job:q}"
        " --segment {wildcards.segment} --resamples {params.resamples} {params.vmapped}"
        " --seed {wildcards.seed} --out {params.stores} --checkpoint {params.checkpoint}"
        " --train {params.data[0]} --heldout {params.data[1]} --validation {params.data[2]}"
        " --checkpoint-every {params.checkpoint_every} --compile-cache {params.compile_cache}"
        " {params.calibration} 2> {log}"


rule order_aggregate:
    input:
        ORDER_RUNS[1.0],
    output:
        store=touch(f"{ORDER}/order.zarr.done"),
        table=report(
            f"{ORDER}/variance.csv",
            caption="../report/order_table.rst",
            category="Order robustness (figure 3)",
        ),
    params:
        # what can change the numbers: not the figures, checkpoints or vmapping
        config=as_json({k: v for k, v in config["order"].items() if k not in ("plot", "checkpoint_every", "vmap_resamples")}),
        runs=lambda wc, input: stores(input),
        store=lambda wc, output: stores([output.store])[0],
        code=code_digest("order_aggregate"),
    threads: RESOURCES["default"]["threads"]
    resources:
        mem_mb=RESOURCES["default"]["mem_mb"],
        runtime=RESOURCES["default"]["runtime"],
    log:
        "results/logs/order/aggregate.log",
    shell:
        "python -m natgrad.study order aggregate --runs {params.runs} --config {params.config:q}"
        " --out {params.store} --table {output.table} 2> {log}"


rule order_figures:
    input:
        f"{ORDER}/order.zarr.done",
    output:
        variance=report(
            f"{ORDER}/figures/variance.{ORDER_FIGURE_FORMAT}",
            caption="../report/order_variance.rst",
            category="Order robustness (figure 3)",
        ),
        frontier=report(
            f"{ORDER}/figures/frontier.{ORDER_FIGURE_FORMAT}",
            caption="../report/order_frontier.rst",
            category="Order robustness (figure 3)",
        ),
        validation=report(
            f"{ORDER}/figures/validation.{ORDER_FIGURE_FORMAT}",
            caption="../report/order_validation.rst",
            category="Order robustness (figure 3)",
        ),
    params:
        style=as_json(config["order"]["plot"]),
        store=lambda wc, input: stores(input)[0],
    threads: RESOURCES["default"]["threads"]
    resources:
        mem_mb=RESOURCES["default"]["mem_mb"],
        runtime=RESOURCES["default"]["runtime"],
    log:
        "results/logs/order/figures.log",
    shell:
        "python -m natgrad.study order plot --store {params.store} --variance {output.variance}"
        " --frontier {output.frontier} --validation {output.validation} --style {params.style:q}"
        " 2> {log}"
