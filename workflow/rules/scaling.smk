# Figure 3's frontier verdict across scale: the order experiment at each of scaling.fractions of its
# stream length (segments scaled alike), one aggregated store per length, and the NG/MSGD variance
# ratio at matched validation error against stream length. Fraction 1 is the study's own runs.

SCALING = "results/scaling"
SCALING_SAMPLES = {cfg["online_samples"]: scale for scale, cfg in ORDER_SCALES.items()}
SCALING_STORE = f"{SCALING}/stores/order-{{samples}}.zarr.done"
SCALING_TARGETS = (
    [f"{SCALING}/order.csv", f"{SCALING}/order.{ORDER_FIGURE_FORMAT}"] if config.get("scaling") else []
)


rule scaling_aggregate:
    """The runs of one stream length in one store (as order_aggregate does for the study's)."""
    input:
        lambda wc: ORDER_RUNS[SCALING_SAMPLES[int(wc.samples)]],
    output:
        store=touch(SCALING_STORE),
        table=f"{SCALING}/stores/variance-{{samples}}.csv",
    params:
        config=lambda wc: as_json(
            {k: v for k, v in ORDER_SCALES[SCALING_SAMPLES[int(wc.samples)]].items() if k not in ("plot", "checkpoint_every", "vmap_resamples")}
        ),
        runs=lambda wc, input: stores(input),
        store=lambda wc, output: stores([output.store])[0],
        code=code_digest("order_aggregate"),
    wildcard_constraints:
        samples="[0-9]+",
    threads: RESOURCES["default"]["threads"]
    resources:
        mem_mb=RESOURCES["default"]["mem_mb"],
        runtime=RESOURCES["default"]["runtime"],
    log:
        f"{SCALING}/logs/aggregate-{{samples}}.log",
    shell:
        "python -m natgrad.study order aggregate --runs {params.runs} --config {params.config:q}"
        " --out {params.store} --table {output.table} 2> {log}"


rule scaling_table:
    """results/scaling/order.csv and its figure: the matched-level ratios at every stream length."""
    input:
        [SCALING_STORE.format(samples=n) for n in sorted(SCALING_SAMPLES)],
    output:
        csv=report(f"{SCALING}/order.csv", caption="../report/scaling_table.rst", category="Scaling"),
        figure=report(
            f"{SCALING}/order.{ORDER_FIGURE_FORMAT}", caption="../report/scaling_figure.rst", category="Scaling"
        ),
    params:
        stores=lambda wc, input: stores(input),
        style=as_json(config["order"]["plot"]),
        code=code_digest("order_scaling"),
    threads: RESOURCES["default"]["threads"]
    resources:
        mem_mb=RESOURCES["default"]["mem_mb"],
        runtime=RESOURCES["default"]["runtime"],
    log:
        f"{SCALING}/logs/table.log",
    shell:
        "python -m natgrad.study order scaling --stores {params.stores} --csv {output.csv}"
        " --figure {output.figure} --style {params.style:q} 2> {log}"
