# The one-hidden-unit autoencoder (paper section 4, figure 1).

TOY = "results/toy"


# Figure 1 (results/toy/figure1.png), a panel per start, and the paths and KL points as CSV.
TOY_TARGETS = [f"{TOY}/paths.csv", f"{TOY}/kl_points.csv", f"{TOY}/figure1.png", f"{TOY}/paths_all.png"]


rule toy_paths:
    output:
        paths=f"{TOY}/paths.csv",
        kl_points=f"{TOY}/kl_points.csv",
    params:
        config=lambda wc: as_json(config["toy"]),
        code=code_digest("toy"),
    threads: RESOURCES["default"]["threads"]
    resources:
        mem_mb=RESOURCES["default"]["mem_mb"],
        runtime=RESOURCES["default"]["runtime"],
    log:
        "results/logs/toy/paths.log",
    shell:
        "python -m natgrad.study toy paths --config {params.config:q}"
        " --paths {output.paths} --kl-points {output.kl_points} 2> {log}"


rule toy_figure:
    input:
        paths=f"{TOY}/paths.csv",
        kl_points=f"{TOY}/kl_points.csv",
    output:
        figure=report(
            f"{TOY}/figure1.png",
            caption="../report/toy.rst",
            category="Toy autoencoder (figure 1)",
        ),
        all_starts=report(
            f"{TOY}/paths_all.png",
            caption="../report/toy_all_starts.rst",
            category="Toy autoencoder (figure 1)",
        ),
    params:
        config=lambda wc: as_json(config["toy"]),
    threads: RESOURCES["default"]["threads"]
    resources:
        mem_mb=RESOURCES["default"]["mem_mb"],
        runtime=RESOURCES["default"]["runtime"],
    log:
        "results/logs/toy/figure.log",
    shell:
        "python -m natgrad.study toy figure --config {params.config:q} --paths {input.paths}"
        " --kl-points {input.kl_points} --figure {output.figure} --all-starts {output.all_starts} 2> {log}"
