# The one-hidden-unit autoencoder (paper section 4, figure 1).

from natgrad.study.toy import plan as toy_plan


rule toy_paths:
    output:
        paths=toy_plan.PATHS,
        kl_points=toy_plan.KL_POINTS,
    params:
        config=lambda wc: as_json(config["toy"]),
        code=code_digest("toy", "paths"),
    threads: JOB["threads"]
    resources:
        **JOB["resources"],
    log:
        "results/logs/toy/paths.log",
    shell:
        "python -m natgrad.study toy paths --config {params.config:q}"
        " --paths {output.paths} --kl-points {output.kl_points} 2> {log}"


rule toy_figure:
    input:
        paths=toy_plan.PATHS,
        kl_points=toy_plan.KL_POINTS,
    output:
        figure=report(
            toy_plan.FIGURE,
            caption="../report/toy.rst",
            category="Toy autoencoder (figure 1)",
        ),
        all_starts=report(
            toy_plan.ALL_STARTS,
            caption="../report/toy_all_starts.rst",
            category="Toy autoencoder (figure 1)",
        ),
    params:
        config=lambda wc: as_json(config["toy"]),
    threads: JOB["threads"]
    resources:
        **JOB["resources"],
    log:
        "results/logs/toy/figure.log",
    shell:
        "python -m natgrad.study toy figure --config {params.config:q} --paths {input.paths}"
        " --kl-points {input.kl_points} --figure {output.figure} --all-starts {output.all_starts} 2> {log}"
