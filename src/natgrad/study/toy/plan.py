"""Where the toy experiment's files live (`workflow/rules/toy.smk`)."""
RESULTS = "results/toy"
PATHS = f"{RESULTS}/paths.csv"
KL_POINTS = f"{RESULTS}/kl_points.csv"
FIGURE = f"{RESULTS}/figure1.png"
ALL_STARTS = f"{RESULTS}/paths_all.png"


def targets(config):
    """Figure 1, a panel per start, and the paths and KL points as CSV."""
    return {"toy": [PATHS, KL_POINTS, FIGURE, ALL_STARTS]}


def claims(config):
    return {"toy_paths": PATHS}
