"""Where the equivalence experiment's files live (`workflow/rules/equivalence.smk`)."""
RESULTS = "results/equivalence"
TABLE = f"{RESULTS}/table.csv"
HTML = f"{RESULTS}/table.html"


def targets(config):
    """Section 7's table and its HTML rendering for the report."""
    return {"equivalence": [TABLE, HTML]}


def claims(config):
    return {"equivalence": TABLE}
