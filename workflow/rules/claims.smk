# The claims table: each of the paper's claims decided from the aggregated results by the verdict
# rule fixed in natgrad.study.claims.verdict. Its inputs are what every experiment's plan declares for
# its claims (natgrad.study.registry.claims_results), its rows what each experiment's claims module
# builds from them; this file names no experiment.
from natgrad.study.claims import plan as claims_plan
from natgrad.study.registry import claims_inputs, claims_modules, claims_results


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
        # unsorted JSON: an experiment's inputs keep their order (table 1's rows follow it)
        results=json.dumps(
            {name: {k: stores([p])[0] if p.endswith(".done") else p for k, p in files.items()}
             for name, files in claims_results(config).items()}
        ),
        settings=as_json({name: config.get(name) for name in claims_results(config)}),
        code=code_digest("claims", "table", *claims_modules()),
    threads: JOB["threads"]
    resources:
        **JOB["resources"],
    log:
        f"{claims_plan.RESULTS}/claims.log",
    shell:
        "python -m natgrad.study claims table --results {params.results:q} --settings {params.settings:q}"
        " --csv {output.csv} --md {output.md} 2> {log}"
