"""The code digests come from the import graph: a docstring edit reruns nothing, a code edit reruns
the job kinds that import it and no other (edits made on a copy of the source tree). (That the
workflow computes them from its own checkout's code: tests/test_lint.py.)"""
import re
import shutil
from pathlib import Path

import pytest

from natgrad.study.code_digest import code_digest
from natgrad.study.registry import claims_modules

ROOT = Path(__file__).resolve().parents[1]
#: Every digest a rule asks for: the arguments of its `code_digest(...)` parameter.
JOBS = sorted({eval(f"({args},)", {"claims_modules": claims_modules})  # noqa: S307 - our rule files
               for p in (ROOT / "workflow/rules").glob("*.smk")
               for args in re.findall(r"code_digest\((.*)\),$", p.read_text(), re.M)})


@pytest.fixture
def source(tmp_path):
    """A copy of src/natgrad to edit."""
    return Path(shutil.copytree(ROOT / "src/natgrad", tmp_path / "natgrad",
                                ignore=shutil.ignore_patterns("__pycache__")))


def digests(root):
    return {job[:2]: code_digest(*job, root=root) for job in JOBS}


def edit(path, old, new):
    text = path.read_text()
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new, 1))


def changed_by(source, path, old, new):
    before = digests(source)
    edit(source / path, old, new)
    after = digests(source)
    return {job for job in before if before[job] != after[job]}


def test_every_rules_job_kind_is_planned():
    assert {("order", "train"), ("order", "aggregate"), ("overfitting", "train"),
            ("claims", "table")} <= {job[:2] for job in JOBS}


def test_a_docstring_or_comment_edit_changes_no_digest(source):
    before = digests(source)
    edit(source / "study/methods.py", '"""', '"""Reworded. ')
    edit(source / "study/order/frontier.py", "\ndef ", "\n# a comment\n\n\ndef ")
    text = (source / "study/order/frontier.py").read_text()
    first_def = text.index("\ndef ")
    body = text.index('"""', first_def)
    (source / "study/order/frontier.py").write_text(text[:body + 3] + "Reworded. " + text[body + 3:])
    assert digests(source) == before


def test_a_frontier_edit_reruns_what_writes_levels_and_the_claims_not_training(source):
    changed = changed_by(source, "study/order/frontier.py", "\ndef ", "\nEDITED = 1\n\n\ndef ")
    assert changed == {("order", "aggregate"), ("order", "scaling"), ("claims", "table")}


def test_a_martens_edit_reruns_natural_gradient_training(source):
    changed = changed_by(source, "preconditioners/martens.py", "\ndef ", "\nEDITED = 1\n\n\ndef ")
    assert {("order", "train"), ("overfitting", "train")} <= changed
    assert ("toy", "paths") not in changed and ("order", "scaling") not in changed


def test_an_unknown_command_is_named():
    with pytest.raises(ValueError, match="no command 'fly'"):
        code_digest("order", "fly")
    with pytest.raises(ValueError, match="no command-line group 'nope'"):
        code_digest("nope", "train")

