# Hessian-free = natural gradient (paper section 7), float64 on small random MLPs.

from natgrad.study.equivalence import plan as equivalence_plan


rule equivalence_table:
    output:
        csv=equivalence_plan.TABLE,
        html=report(
            equivalence_plan.HTML,
            caption="../report/equivalence.rst",
            category="Hessian-free = natural gradient (section 7)",
        ),
    params:
        config=lambda wc: as_json(config["equivalence"]),
        code=code_digest("equivalence", "table"),
    threads: JOB["threads"]
    resources:
        **JOB["resources"],
    log:
        "results/logs/equivalence/table.log",
    shell:
        "python -m natgrad.study equivalence table --config {params.config:q} --out {output.csv}"
        " --html {output.html} 2> {log}"
