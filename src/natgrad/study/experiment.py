"""What the study knows of one experiment: the `Experiment` each `natgrad.study.<name>` package
exports as `EXPERIMENT`, and which `natgrad.study.registry` lists.

An experiment is named once: its name is its config section, its command-line group
(`python -m natgrad.study <name>`, module `natgrad.study.<name>.cli`), its rule file
(`workflow/rules/<name>.smk`) and its plan (`natgrad.study.<name>.plan`: where its files live and
which jobs make them, read by its rule file). The plan may define, each taking the resolved config:

- `check(config)`: cross-key checks the schema cannot express; raises `ValueError` naming the key;
- `check_data(config)`: its data sets against its settings, before any job (`ConfigError`);
- `targets(config)`: `{target rule: [files]}`, the Snakefile's named targets and `all`;
- `claims(config)`: `{claims input: file}`, the results of it the claims table reads.

Its claims, if it has any, are rows of the claims table built by its module
`natgrad.study.<name>.claims`: `rows(paths, settings)` gives blocks (lists) of rows
(`natgrad.study.claims.rows.row`) from `{claims input: path}` and its config section.

The plan is imported when one of these is called, so listing the experiments (the command line
does) costs no experiment's imports.
"""
from __future__ import annotations

import dataclasses
import importlib
import importlib.util


def _nothing(config):
    return {}


@dataclasses.dataclass(frozen=True)
class Experiment:
    """One experiment's contract with the study (see the module's docstring)."""

    name: str

    @property
    def cli(self):
        """The module whose `main(argv)` runs `python -m natgrad.study <name> ...`."""
        return f"natgrad.study.{self.name}.cli"

    @property
    def rules(self):
        """Its rule file, relative to the project's root."""
        return f"workflow/rules/{self.name}.smk"

    @property
    def claims_module(self):
        """The module of its claims' rows (`rows(paths, settings)`), None if it has no claims."""
        name = f"natgrad.study.{self.name}.claims"
        return name if importlib.util.find_spec(name) is not None else None

    def claim_rows(self, paths, settings):
        """Blocks of its claims' rows from `{claims input: path}` and its config section."""
        module = self.claims_module
        return importlib.import_module(module).rows(paths, settings) if module else []

    def _plan(self, function):
        plan = importlib.import_module(f"natgrad.study.{self.name}.plan")
        return getattr(plan, function, _nothing)

    def check(self, config):
        self._plan("check")(config)

    def check_data(self, config):
        self._plan("check_data")(config)

    def targets(self, config):
        return dict(self._plan("targets")(config))

    def claims(self, config):
        return dict(self._plan("claims")(config))
