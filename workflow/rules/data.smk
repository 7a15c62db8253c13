# Data figures that belong to no experiment.


rule nistp_sheet:
    """A few source images under each NISTP module alone and under both presets (report figure)."""
    output:
        report(
            "results/data/nistp_sheet.png",
            caption="../report/nistp_sheet.rst",
            category="Data",
        ),
    params:
        spec=lambda wc: as_json(
            {
                "dataset": config["order"]["dataset"],
                "datasets": datasets_entry(config["order"]["dataset"]),
                **{k: config["order"][k] for k in ("image_size", "c_max", "data_seed")},
            }
        ),
    threads: RESOURCES["default"]["threads"]
    resources:
        mem_mb=RESOURCES["default"]["mem_mb"],
        runtime=RESOURCES["default"]["runtime"],
    log:
        "results/logs/data/nistp_sheet.log",
    shell:
        "python -m natgrad.study data sheet --spec {params.spec:q} --out {output} 2> {log}"
