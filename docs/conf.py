"""Sphinx configuration: the API reference is built from the docstrings (autodoc + napoleon).

Build (warnings are errors, as in CI):  sphinx-build -W --keep-going -b html docs docs/_build/html
Needs the `docs` extra: pip install -e ".[docs]"
"""
import re
import sys

from sphinx.pycode import ModuleAnalyzer

import natgrad

project = "natgrad"
author = "the natgrad authors"
copyright = "2026, the natgrad authors"
release = natgrad.__version__
version = release

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",  # the docstrings are Google style (Args:, Returns:)
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "myst_parser",  # pages in Markdown (docs/*.md); their ```python blocks run in tests/test_docs.py
]
source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build"]

# The docstrings write code in Markdown style, `x`: render single backticks as inline code.
default_role = "code"

napoleon_google_docstring = True
napoleon_numpy_docstring = False
napoleon_use_rtype = False

autodoc_member_order = "bysource"
autodoc_typehints = "signature"
# Defaults as written in the source (`rtol=1e-4`, `damping=Constant(0.0)`).
autodoc_preserve_defaults = True
python_use_unqualified_type_names = True

# MyST highlights a fence by its first word, so "```python no-run" (shown in the docs, not executed by
# tests/test_docs.py) is Python too.
myst_enable_extensions = ["dollarmath"]

html_theme = "furo"
html_title = f"natgrad {release}"


# --- Docstring adjustments, made here so that the library's docstrings stay as they are. ---------

_FIELD = re.compile(r"^(?P<indent>\s*)(?P<name>[A-Za-z_][\w, ]*): \S")


def _field_lines_as_bullets(lines):
    """A record's field list written as `name: text` lines, a wrapped description indented below its
    line (NamedTuple docstrings such as StepInfo and SolverInfo), is not valid reStructuredText (an
    indented line after a paragraph). Rewrite each such block of two or more `name: text` lines as a
    bullet list; any other text is left alone."""
    out, i = [], 0
    while i < len(lines):
        start = i
        while i < len(lines) and lines[i].strip():
            i += 1
        block = lines[start:i]
        base = min((len(line) - len(line.lstrip()) for line in block), default=0)
        heads = [line for line in block if len(line) - len(line.lstrip()) == base]
        if len(heads) >= 2 and all(_FIELD.match(line) for line in heads):
            if out and out[-1].strip():
                out.append("")
            for line in block:
                indent = len(line) - len(line.lstrip())
                out.append(" " * base + ("- " if indent == base else "  ") + line.strip())
            out.append("")
        else:
            out.extend(block)
        while i < len(lines) and not lines[i].strip():
            out.append(lines[i])
            i += 1
    lines[:] = out


# Module constants re-exported by a package (natgrad.solvers.CONVERGED, ...) are documented by a `#:`
# comment in the submodule that defines them (natgrad/solvers/_info.py); autodoc looks only in the
# package and would show the docstring of their type (int, dict) instead.


def _data_docstring(app, what, name, obj, options, lines):
    if what != "data":
        return
    package, _, attr = name.rpartition(".")
    for module in sorted(m for m in sys.modules if m.startswith(package + ".")):
        try:
            docs = ModuleAnalyzer.for_module(module).find_attr_docs()
        except Exception:  # a compiled or source-less module
            continue
        if ("", attr) in docs and getattr(sys.modules[module], attr, None) is obj:
            lines[:] = list(docs[("", attr)])
            return
    if obj is not None and lines and "\n".join(lines).strip() == (type(obj).__doc__ or "").strip():
        lines[:] = []


def _solver_flags(app, docname, source):
    """Expand the line `.. natgrad-solver-flags::` of api.rst into one autodata entry per exit flag
    exported by natgrad.solvers (every upper-case int in its __all__), in the order of their values,
    so that a flag added to the solvers appears here without editing the page."""
    import natgrad.solvers as solvers

    flags = sorted((getattr(solvers, n), n) for n in solvers.__all__
                   if n.isupper() and isinstance(getattr(solvers, n), int))
    entries = "".join(f".. autodata:: natgrad.solvers.{n}\n\n" for _, n in flags)
    source[0] = source[0].replace(".. natgrad-solver-flags::\n", entries)


def setup(app):
    # Field lists before napoleon (priority 500), so that napoleon's own output is never touched;
    # the constants' comments after it, so that napoleon does not read "CG only: ..." as a type.
    app.connect("autodoc-process-docstring",
                lambda app, what, name, obj, options, lines: _field_lines_as_bullets(lines), priority=400)
    app.connect("autodoc-process-docstring", _data_docstring, priority=600)
    app.connect("source-read", _solver_flags)
