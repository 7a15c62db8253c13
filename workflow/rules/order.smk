# Order robustness (paper section 6, figure 3), stream length an axis of it (`scaling:`): data sets,
# training jobs, one aggregation per stream length, figures, the scaling table. Paths and jobs come
# from natgrad.study.order.plan; data sets and runs live at paths keyed by what defines them.
from natgrad.study.order import plan as order_plan
from natgrad.study.order import spec as order_spec

ORDER_DATASETS = datasets_entry(config, config["order"]["dataset"])
ORDER_DATA_DIR = order_plan.data_dir(config, ORDER_DATASETS)
ORDER_DATA = {part: f"{ORDER_DATA_DIR}/{part}.zarr.done" for part in ("train", "heldout", "validation")}
# Every training job's settings by the key its runs' paths carry, at every stream length.
ORDER_JOBS = order_plan.jobs(config)
ORDER_LENGTHS = order_plan.lengths(config)
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
        config=as_json(order_spec.data_config(config["order"])),
        datasets=as_json(ORDER_DATASETS),
        stores=lambda wc, output: stores(output),
        code=code_digest("order", "data"),
    threads: JOB["threads"]
    resources:
        **JOB["resources"],
    log:
        f"results/logs/order/data-{Path(ORDER_DATA_DIR).name}.log",
    shell:
        "python -m natgrad.study order data --config {params.config:q} --datasets {params.datasets:q}"
        " --train {params.stores[0]} --heldout {params.stores[1]} --validation {params.stores[2]}"
        " 2> {log}"


rule order_train:
    """One online run per resample of a segment: the stream with that segment replaced. Retried
    after a failure or preemption, it resumes from its checkpoint."""
    input:
        **ORDER_DATA,
    output:
        [touch(order_plan.RUN.format(method="{method}", key="{key}", seed="{seed}", segment="{segment}", resample=r)) for r in range(config["order"]["resamples"])]
        if ORDER_VMAPPED
        else [touch(order_plan.RUN)],
    params:
        job=lambda wc: as_json(ORDER_JOBS[wc.key]),
        resamples=lambda wc: ORDER_ALL_RESAMPLES if ORDER_VMAPPED else wc.resample,
        vmapped="--vmapped" if ORDER_VMAPPED else "",
        stores=lambda wc, output: stores(output),
        data=lambda wc, input: stores([input.train, input.heldout, input.validation]),
        checkpoint_every=config["order"]["checkpoint_every"],
        checkpoint=f"{order_plan.RESULTS}/checkpoints/{ORDER_JOB}.npz",
        compile_cache=COMPILE_CACHE,
        code=code_digest("order", "train"),
    wildcard_constraints:
        method="[A-Za-z0-9_]+",
        key="[0-9a-f]+",
        seed="[0-9]+",
        segment="[0-9]+",
        resample="[0-9]+",
    threads: TRAIN_JOB["threads"]
    resources:
        **TRAIN_JOB["resources"],
    retries: TRAIN_JOB["retries"]
    log:
        f"results/logs/order/train/{ORDER_JOB}.log",
    shell:
        "python -m natgrad.study order train --job {params.job:q}"
        " --segment {wildcards.segment} --resamples {params.resamples} {params.vmapped}"
        " --seed {wildcards.seed} --out {params.stores} --checkpoint {params.checkpoint}"
        " --train {params.data[0]} --heldout {params.data[1]} --validation {params.data[2]}"
        " --checkpoint-every {params.checkpoint_every} --compile-cache {params.compile_cache}"
        " 2> {log}"


rule order_aggregate:
    """The runs of one stream length in one store and its summary table: the study's length
    (`length` empty: results/order/order.zarr), or N samples of `scaling:` (`length` -N)."""
    input:
        lambda wc: order_plan.runs(config, order_plan.samples_of(config, wc.length)),
    output:
        store=touch(order_plan.STORE),
        table=report(order_plan.TABLE, caption="../report/order_table.rst", category="Order robustness (figure 3)"),
        levels=report(order_plan.LEVELS, caption="../report/order_levels.rst", category="Order robustness (figure 3)"),
    params:
        # what can change the numbers: not the figures, checkpoints or vmapping
        config=lambda wc: as_json(order_plan.numbers_config(config, order_plan.samples_of(config, wc.length))),
        runs=lambda wc, input: stores(input),
        store=lambda wc, output: stores([output.store])[0],
        code=code_digest("order", "aggregate"),
    wildcard_constraints:
        length="(-[0-9]+)?",
    threads: JOB["threads"]
    resources:
        **JOB["resources"],
    log:
        "results/logs/order/aggregate{length}.log",
    shell:
        "python -m natgrad.study order aggregate --runs {params.runs} --config {params.config:q}"
        " --out {params.store} --table {output.table} --levels {output.levels} 2> {log}"


rule order_figures:
    input:
        order_plan.STORE.format(length=""),
    output:
        variance=report(
            order_plan.figure(config, "variance"),
            caption="../report/order_variance.rst",
            category="Order robustness (figure 3)",
        ),
        frontier=report(
            order_plan.figure(config, "frontier"),
            caption="../report/order_frontier.rst",
            category="Order robustness (figure 3)",
        ),
        validation=report(
            order_plan.figure(config, "validation"),
            caption="../report/order_validation.rst",
            category="Order robustness (figure 3)",
        ),
    params:
        style=as_json(config["order"]["plot"]),
        store=lambda wc, input: stores(input)[0],
    threads: JOB["threads"]
    resources:
        **JOB["resources"],
    log:
        "results/logs/order/figures.log",
    shell:
        "python -m natgrad.study order plot --store {params.store} --variance {output.variance}"
        " --frontier {output.frontier} --validation {output.validation} --style {params.style:q}"
        " 2> {log}"


rule scaling_table:
    """results/scaling/order.csv and its figure: the NG/MSGD variance ratio at matched validation
    error at every stream length (the study's own from results/order/order.zarr)."""
    input:
        [order_plan.STORE.format(length=order_plan.length_suffix(config, n)) for n in sorted(ORDER_LENGTHS)],
    output:
        csv=report(order_plan.scaling_table(config)[0], caption="../report/scaling_table.rst", category="Scaling"),
        figure=report(order_plan.scaling_table(config)[1], caption="../report/scaling_figure.rst", category="Scaling"),
    params:
        stores=lambda wc, input: stores(input),
        style=as_json(config["order"]["plot"]),
        code=code_digest("order", "scaling"),
    threads: JOB["threads"]
    resources:
        **JOB["resources"],
    log:
        f"{order_plan.SCALING}/logs/table.log",
    shell:
        "python -m natgrad.study order scaling --stores {params.stores} --csv {output.csv}"
        " --figure {output.figure} --style {params.style:q} 2> {log}"


rule nistp_sheet:
    """A few source images under each NISTP module alone and under both presets (report figure)."""
    output:
        report(order_plan.SHEET, caption="../report/nistp_sheet.rst", category="Data"),
    params:
        spec=lambda wc: as_json(
            {
                "dataset": config["order"]["dataset"],
                "datasets": ORDER_DATASETS,
                **{k: config["order"][k] for k in ("image_size", "c_max", "data_seed")},
            }
        ),
    threads: JOB["threads"]
    resources:
        **JOB["resources"],
    log:
        "results/logs/data/nistp_sheet.log",
    shell:
        "python -m natgrad.study data sheet --spec {params.spec:q} --out {output} 2> {log}"
