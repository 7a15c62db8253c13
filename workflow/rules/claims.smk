# The claims table: each of the paper's claims decided from the aggregated results by the verdict
# rule fixed in natgrad.study.claims.verdict. Its inputs are what every experiment declares for it
# (natgrad.study.registry.claims_inputs; C9, TFD, only when the TFD row is declared; C1-C3 also on
# every other table-1 row that runs NG-unlabeled, inputs named table1_<experiment>).
from natgrad.study.claims import plan as claims_plan
from natgrad.study.overfitting.plan import TABLE1
from natgrad.study.registry import claims_inputs


rule claims_table:
    input:
        **claims_inputs(config),
    output:
        csv=report(
            claims_plan.CSV,
            caption="../report/claims.rst",
            category="Claims",
        ),
        md=claims_plan.MARKDOWN,
    params:
        stores=lambda wc, input: {k: stores([p])[0] if p.endswith(".done") else p for k, p in input.items()},
        toy=as_json(config["toy"]),
        tfd=lambda wc, input: f"--tfd {stores([input.tfd])[0]}" if "tfd" in input.keys() else "",
        table1=lambda wc, input: " ".join(f"--table1 {k[len(TABLE1):]}={stores([p])[0]}"
                                          for k, p in input.items() if k.startswith(TABLE1)),
        code=code_digest("claims", "table"),
    threads: JOB["threads"]
    resources:
        **JOB["resources"],
    log:
        f"{claims_plan.RESULTS}/claims.log",
    shell:
        "python -m natgrad.study claims table --restricted-mnist {params.stores[restricted_mnist]}"
        " --order {params.stores[order]} --toy-paths {input.toy_paths} --toy-config {params.toy:q}"
        " --equivalence {input.equivalence} {params.tfd} {params.table1}"
        " --csv {output.csv} --md {output.md} 2> {log}"
