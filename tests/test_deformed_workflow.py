"""A deformed large-pool row of table 1 through the real workflow: added to the tiny study, it
trains only its own jobs and the claims table decides C1 on it too, naming its data set."""
import pandas as pd
import yaml

from tiny_study import job_counts, snakemake

LARGE = {"overfitting": {"extra": {"large": {
    "enabled": True, "dataset": "digits",
    "split": {"train": 40, "unlabeled": 400, "valid": 40, "test": 400},
    "deform": {"preset": "pnist07", "c_max": 0.35, "image_size": 16,
               "sources": {"train": 40, "unlabeled": 100, "valid": 20, "test": 100}},
}}}}


def test_a_deformed_row_is_trained_and_decides_c1_on_its_own_data_set(tiny_study_copy):
    (tiny_study_copy / "large.yaml").write_text(yaml.safe_dump(LARGE))
    proc = snakemake(tiny_study_copy, "claims", configfiles=("tiny.yaml", "large.yaml"))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    counts = job_counts(proc.stdout + proc.stderr)
    # MSGD's two seeds in one vmapped job (config.yaml's seeds_per_job), NG-unlabeled's in two
    assert counts.get("overfitting_train") == 3 and counts.get("claims_table") == 1, counts
    df = pd.read_csv(tiny_study_copy / "results/claims/claims.csv", keep_default_na=False)
    rows = df[df["dataset"].str.startswith("large (digits, pnist07-deformed at c_max 0.35")]
    assert list(rows["claim_id"]) == ["C1", "C2", "C3"]
    assert rows.iloc[0]["verdict"] != "not run" and rows.iloc[0]["n"] == 2
    assert list(rows["verdict"])[1:] == ["not run", "not run"]  # it runs neither rival
    assert (df["dataset"] == "restricted_mnist (mnist5k)").sum() == 3
