# The claims table: each of the paper's claims decided from the aggregated results by the verdict
# rule fixed in natgrad.study.claims.verdict (C9, TFD, only when the TFD row is declared).

CLAIMS = "results/claims"
CLAIMS_INPUTS = {
    "restricted_mnist": f"{OVERFITTING}/{overfitting_spec.MAIN}/runs.zarr.done",
    "order": f"{ORDER}/order.zarr.done",
    "toy_paths": f"{TOY}/paths.csv",
    "equivalence": f"{EQUIVALENCE}/table.csv",
}
if "tfd" in OVERFITTING_EXPERIMENTS:
    CLAIMS_INPUTS["tfd"] = f"{OVERFITTING}/tfd/runs.zarr.done"
CLAIMS_TARGETS = [f"{CLAIMS}/claims.csv", f"{CLAIMS}/claims.md"]


rule claims_table:
    input:
        **CLAIMS_INPUTS,
    output:
        csv=report(
            f"{CLAIMS}/claims.csv",
            caption="../report/claims.rst",
            category="Claims",
        ),
        md=f"{CLAIMS}/claims.md",
    params:
        stores=lambda wc, input: {k: stores([p])[0] if p.endswith(".done") else p for k, p in input.items()},
        toy=as_json(config["toy"]),
        tfd=lambda wc, input: f"--tfd {stores([input.tfd])[0]}" if "tfd" in input.keys() else "",
        code=code_digest("claims"),
    threads: RESOURCES["default"]["threads"]
    resources:
        mem_mb=RESOURCES["default"]["mem_mb"],
        runtime=RESOURCES["default"]["runtime"],
    log:
        f"{CLAIMS}/claims.log",
    shell:
        "python -m natgrad.study claims table --restricted-mnist {params.stores[restricted_mnist]}"
        " --order {params.stores[order]} --toy-paths {input.toy_paths} --toy-config {params.toy:q}"
        " --equivalence {input.equivalence} {params.tfd}"
        " --csv {output.csv} --md {output.md} 2> {log}"
