# Hessian-free = natural gradient (paper section 7), float64 on small random MLPs.

EQUIVALENCE = "results/equivalence"


# Section 7's table (results/equivalence/table.csv) and its HTML rendering for the report.
EQUIVALENCE_TARGETS = [f"{EQUIVALENCE}/table.csv", f"{EQUIVALENCE}/table.html"]


rule equivalence_table:
    output:
        csv=f"{EQUIVALENCE}/table.csv",
        html=report(
            f"{EQUIVALENCE}/table.html",
            caption="../report/equivalence.rst",
            category="Hessian-free = natural gradient (section 7)",
        ),
    params:
        config=lambda wc: as_json(config["equivalence"]),
        code=code_digest("equivalence"),
    threads: RESOURCES["default"]["threads"]
    resources:
        mem_mb=RESOURCES["default"]["mem_mb"],
        runtime=RESOURCES["default"]["runtime"],
    log:
        "results/logs/equivalence/table.log",
    shell:
        "python -m natgrad.study equivalence table --config {params.config:q} --out {output.csv}"
        " --html {output.html} 2> {log}"
