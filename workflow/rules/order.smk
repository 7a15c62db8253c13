# Order robustness (paper section 6, figure 3): data sets, training jobs, aggregation, figures.

ORDER = "results/order"
ORDER_DATA = {part: f"results/data/order/{part}.zarr" for part in ("train", "heldout", "validation")}
ORDER_RUN = f"{ORDER}/runs/{{method}}/seed{{seed}}/segment{{segment}}/resample{{resample}}.zarr"
ORDER_FIGURE_FORMAT = config["order"]["plot"]["format"]


# Every run store of the study: methods × seeds × segments × resamples.
ORDER_RUNS = [
    ORDER_RUN.format(method=m, seed=s, segment=k, resample=r)
    for m in config["order"]["methods"]
    for s in config["order"]["seeds"]
    for k in range(config["order"]["segments"])
    for r in range(config["order"]["resamples"])
]
# Figure 3 (variance per segment), the validation curves, the aggregated store and its table, and
# the NISTP sheet showing what the stream does to the source images.
ORDER_TARGETS = [
    f"{ORDER}/figures/variance.{ORDER_FIGURE_FORMAT}",
    f"{ORDER}/figures/validation.{ORDER_FIGURE_FORMAT}",
    f"{ORDER}/order.zarr",
    f"{ORDER}/variance.csv",
    "results/data/nistp_sheet.png",
]


rule order_data:
    """The train part of the source (clean) and the deformed held-out and validation sets: the one
    split of the source, which every training job reads."""
    conda:
        CONDA_ENV
    output:
        **{part: directory(path) for part, path in ORDER_DATA.items()},
    params:
        config=lambda wc: as_json(order_spec.data_config(config["order"])),
        datasets=lambda wc: as_json(datasets_entry(config["order"]["dataset"])),
    log:
        "results/logs/order/data.log",
    shell:
        "python -m natgrad.study order data --config {params.config:q} --datasets {params.datasets:q}"
        " --train {output.train} --heldout {output.heldout} --validation {output.validation}"
        " > {log} 2>&1"


# One job per (method, seed, segment) running its resamples as one vmapped program when
# `order.vmap_resamples`; else one job per resample (so adding a resample plans only its jobs).
ORDER_VMAPPED = config["order"]["vmap_resamples"]
ORDER_JOB = "{method}-seed{seed}-segment{segment}" + ("" if ORDER_VMAPPED else "-resample{resample}")
ORDER_ALL_RESAMPLES = " ".join(str(r) for r in range(config["order"]["resamples"]))


rule order_train:
    """One online run per resample of a segment: the stream with that segment replaced."""
    conda:
        CONDA_ENV
    input:
        **ORDER_DATA,
    output:
        [directory(ORDER_RUN.replace("{resample}", str(r))) for r in range(config["order"]["resamples"])]
        if ORDER_VMAPPED
        else [directory(ORDER_RUN)],
    params:
        job=lambda wc: as_json(order_spec.job_config(config["order"], wc.method)),
        resamples=lambda wc: ORDER_ALL_RESAMPLES if ORDER_VMAPPED else wc.resample,
        compile_cache=COMPILE_CACHE,
        vmapped="--vmapped" if ORDER_VMAPPED else "",
        checkpoint_every=config["order"]["checkpoint_every"],
        checkpoint=f"{ORDER}/checkpoints/{ORDER_JOB}.npz",
    wildcard_constraints:
        method="[A-Za-z0-9_]+",
        seed="[0-9]+",
        segment="[0-9]+",
        resample="[0-9]+",
    log:
        f"results/logs/order/train/{ORDER_JOB}.log",
    shell:
        "python -m natgrad.study order train --job {params.job:q}"
        " --segment {wildcards.segment} --resamples {params.resamples} {params.vmapped}"
        " --seed {wildcards.seed} --out {output} --checkpoint {params.checkpoint}"
        " --train {input.train} --heldout {input.heldout} --validation {input.validation}"
        " --checkpoint-every {params.checkpoint_every} --compile-cache {params.compile_cache} 2> {log}"


rule order_aggregate:
    conda:
        CONDA_ENV
    input:
        ORDER_RUNS,
    output:
        store=directory(f"{ORDER}/order.zarr"),
        table=report(
            f"{ORDER}/variance.csv",
            caption="../report/order_table.rst",
            category="Order robustness (figure 3)",
        ),
    params:
        # what can change the numbers: not the figures, checkpoints or vmapping
        config=lambda wc: as_json({k: v for k, v in config["order"].items()
                                   if k not in ("plot", "checkpoint_every", "vmap_resamples")}),
    log:
        "results/logs/order/aggregate.log",
    shell:
        "python -m natgrad.study order aggregate --runs {input} --config {params.config:q}"
        " --out {output.store} --table {output.table} 2> {log}"


rule order_figures:
    conda:
        CONDA_ENV
    input:
        f"{ORDER}/order.zarr",
    output:
        variance=report(
            f"{ORDER}/figures/variance.{ORDER_FIGURE_FORMAT}",
            caption="../report/order_variance.rst",
            category="Order robustness (figure 3)",
        ),
        validation=report(
            f"{ORDER}/figures/validation.{ORDER_FIGURE_FORMAT}",
            caption="../report/order_validation.rst",
            category="Order robustness (figure 3)",
        ),
    params:
        style=lambda wc: as_json(config["order"]["plot"]),
    log:
        "results/logs/order/figures.log",
    shell:
        "python -m natgrad.study order plot --store {input} --variance {output.variance}"
        " --validation {output.validation} --style {params.style:q} 2> {log}"
