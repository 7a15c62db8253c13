"""Where the claims table lives (`workflow/rules/claims.smk`); its inputs are every experiment's
`claims` (`natgrad.study.registry.claims_inputs`)."""
RESULTS = "results/claims"
CSV = f"{RESULTS}/claims.csv"
MARKDOWN = f"{RESULTS}/claims.md"


def targets(config):
    return {"claims": [CSV, MARKDOWN]}
