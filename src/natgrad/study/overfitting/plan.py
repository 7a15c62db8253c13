"""Where the overfitting experiment's files live and which training jobs make them: the bookkeeping
of its rule file (`workflow/rules/overfitting.smk`) and of its `EXPERIMENT`.

A training run is a study run (stage `overfitting`) or a pilot run of the tune stage (stage `tune`:
every grid point of a tuned method on the pilot seeds), stored at a path keyed by a digest of its
spec, so other settings write beside the old results. A tuned method's study runs read the tune
record of the method whose settings they take.

A training job trains one seed, or several seeds of a first-order method as one vmapped program
(`overfitting.seeds_per_job`, `natgrad.study.overfitting.runner.VMAPPED_KINDS`); its output is
the marker `seeds<s>_<s>....done` beside one store per seed, `seed<s>.zarr` (`store_paths`).
"""
from __future__ import annotations

import dataclasses

from natgrad.study.config import datasets_entry
from natgrad.study.overfitting import spec as spec_lib
from natgrad.study.overfitting import tune as tune_lib
from natgrad.study.overfitting.runner import VMAPPED_KINDS
from natgrad.study.provenance import settings_digest

RESULTS = "results/overfitting"
TUNE = "results/tune"
RUN = "results/{stage}/{experiment}/runs/{method}-{key}/seeds{seeds}.done"
STORE_OF_SEED = "seed{seed}.zarr"


def seed_groups(kind, seeds, per_job):
    """The seeds of one job each: `per_job` at a time for a vmappable kind, else one."""
    size = per_job if kind in VMAPPED_KINDS else 1
    return [list(seeds[i:i + size]) for i in range(0, len(seeds), size)]


def run_marker(stage, experiment, method, key, group):
    """The output marker of the job training the seeds `group`."""
    return RUN.format(stage=stage, experiment=experiment, method=method, key=key,
                      seeds="_".join(str(s) for s in group))


def group_of(seeds):
    """The seeds of a job from its `seeds` wildcard ("0_1_2")."""
    return [int(s) for s in seeds.split("_")]


def store_paths(markers):
    """The run stores behind job markers, one per seed, in order."""
    out = []
    for marker in markers:
        folder, _, name = str(marker).rpartition("/seeds")
        out += [f"{folder}/{STORE_OF_SEED.format(seed=s)}" for s in group_of(name[:-len(".done")])]
    return out
STORE = f"{RESULTS}/{{experiment}}/runs.zarr.done"
RECORD = f"{TUNE}/{{experiment}}/{{method}}-{{key}}.json"


@dataclasses.dataclass(frozen=True)
class Plan:
    """Every training job of the experiment and its tune stage, built once from the config.

    `specs`: `{(stage, experiment, method, key): spec}` of every run; `runs`: `{experiment: [study
    run stores]}`; `pilots`: `{(experiment, method): [pilot run stores]}` of each tuned method;
    `records`: `{(experiment, method): tune record}` (runs and pilots as job markers, several seeds
    to a marker where jobs vmap them); `reported_at`: `{experiment: the evaluation
    its table and claims read}`."""

    experiments: dict
    specs: dict
    runs: dict
    pilots: dict
    records: dict
    reported_at: dict

    @classmethod
    def of(cls, config):
        section = config["overfitting"]
        per_job = section.get("seeds_per_job", 1)
        experiments = spec_lib.experiments(section)
        specs, runs, pilots, records = {}, {}, {}, {}
        for name, experiment in experiments.items():
            runs[name] = []
            for m in experiment["methods"]:
                job = spec_lib.job_spec(section, name, m)
                key = settings_digest([job, datasets_entry(config, job["dataset"])])
                specs["overfitting", name, m, key] = job
                kind = spec_lib.kind_of(m, job["methods"][m])
                runs[name] += [run_marker("overfitting", name, m, key, group)
                               for group in seed_groups(kind, experiment["seeds"], per_job)]
                tune = job["methods"][m].get("tune")
                if tune and tune["method"] == m:
                    records[name, m] = RECORD.format(experiment=name, method=m, key=key)
                    pilots[name, m] = []
                    for settings in tune_lib.points(tune["grid"]):
                        pilot = tune_lib.pilot_spec(job, m, settings)
                        pilot_key = settings_digest([pilot, datasets_entry(config, pilot["dataset"])])
                        specs["tune", name, m, pilot_key] = pilot
                        pilots[name, m] += [run_marker("tune", name, m, pilot_key, group)
                                            for group in seed_groups(kind, tune["seeds"], per_job)]
        reported_at = {name: spec_lib.reported_at(section, name) for name in experiments}
        return cls(experiments, specs, runs, pilots, records, reported_at)

    def spec(self, wc):
        """The spec of one run (a study run or a pilot run), by the wildcards of its path."""
        return self.specs[wc.stage, wc.experiment, wc.method, wc.key]

    def tune_record(self, wc):
        """`{"tuned": record}` for a run of a tuned method (the record of the method whose settings
        it takes), else `{}`."""
        tune = self.spec(wc)["methods"][wc.method].get("tune")
        return {"tuned": self.records[wc.experiment, tune["method"]]} if tune else {}


def targets(config):
    """`overfitting`: table 1 (results/overfitting/table.csv and its HTML), figures 2/4 of every
    experiment; `tune`: one table per experiment with a tuned method."""
    plan = Plan.of(config)
    figures = [f"{RESULTS}/{name}/curves_{x}.png" for name in plan.experiments
               for x in ("updates", "wallclock")]
    tuned = dict.fromkeys(name for name, _ in plan.records)
    return {"overfitting": [f"{RESULTS}/table.csv", f"{RESULTS}/table.html"] + figures,
            "tune": [f"{TUNE}/{name}.csv" for name in tuned]}


#: The claims table's input name of another table-1 experiment's store (`TABLE1` + its name).
TABLE1 = "table1_"


def claims(config):
    """Restricted MNIST's store, TFD's when table 1's TFD row is declared (C9), and the store of
    every other enabled row that runs NG-unlabeled (C1-C3 decided on its data set too), under
    `TABLE1` + its name."""
    experiments = spec_lib.experiments(config["overfitting"])
    out = {name: STORE.format(experiment=name) for name in experiments
           if name in (spec_lib.MAIN, "tfd")}
    out.update({TABLE1 + name: STORE.format(experiment=name)
                for name, spec in experiments.items()
                if name != spec_lib.MAIN and "ng_unlabeled" in spec["methods"]})
    return out


def check(config):
    spec_lib.experiments(config["overfitting"])


def check_data(config):
    """Every experiment's data set exists and its split fits it."""
    from natgrad.study.config import ConfigError, dataset_size
    from natgrad.study.overfitting.split import deformed_counts, split_counts

    for name, spec in spec_lib.experiments(config["overfitting"]).items():
        where = "overfitting" if name == spec_lib.MAIN else f"overfitting.extra.{name}"
        key = f"{where}.split"
        n = dataset_size(spec["dataset"], config["datasets"], f"{where}.dataset")
        try:
            if spec.get("deform"):
                counts = deformed_counts(n, spec["split"], spec["deform"])[1]
            else:
                counts = split_counts(n, spec["split"])
        except ValueError as err:
            detail = f"{where}.{err}" if spec.get("deform") else err
            raise ConfigError(f"{key} does not fit dataset {spec['dataset']} ({n} examples): "
                              f"{detail}") from None
        if "ng_different_batch" in spec["methods"] and counts["train"] < 2:
            raise ConfigError(f"{key}: ng_different_batch needs at least 2 training examples (a "
                              f"gradient and a disjoint metric minibatch), the split leaves "
                              f"{counts['train']}")
