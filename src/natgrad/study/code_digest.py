"""The code a workflow job runs, derived from the import graph, and its digest.

A rule passes `code_digest(group, command)` (its `python -m natgrad.study <group> <command>`; and
the modules it imports by name at run time, as the claims table does its experiments' claims) as a
parameter, so that editing the code the job runs reruns that job (Snakemake's `params` rerun
trigger), and only the job kinds that import the edit: a change to the plots never retrains
anything.

The code of a job is the import closure inside natgrad of what it runs: the command line's entry
(`natgrad/study/__main__.py`), and in the group's `cli` module its module-level imports and those of
the command's function and of the module's functions that it names. Every other module contributes
all its imports (module level and in functions: a lazy import runs when its function does). An
import names files under `src/natgrad`: the module imported, and for `from package import name` the
submodule `name` when there is one; a package's `__init__` counts only where it is imported by name
(`natgrad/__init__.py` re-exports the whole library, which would tie every job to every file).

Each file is hashed over its syntax tree with docstrings dropped (comments are not in the tree), so
an edit of the prose reruns nothing.
"""
from __future__ import annotations

import ast
import functools
import hashlib
from pathlib import Path

#: src/natgrad: the files a digest covers.
PACKAGE_ROOT = Path(__file__).resolve().parents[1]
ENTRY = "natgrad.study.__main__"


def code_digest(group, command, *modules, root=PACKAGE_ROOT):
    """A short SHA-256 of the code `python -m natgrad.study <group> <command>` runs (`code_files`)."""
    root = Path(root)
    h = hashlib.sha256()
    for path in code_files(group, command, *modules, root=root):
        h.update(str(path.relative_to(root)).encode())
        h.update(_without_docstrings(path.read_text()).encode())
    return h.hexdigest()[:16]


def code_files(group, command, *modules, root=PACKAGE_ROOT):
    """The sorted files under `root` (src/natgrad) that `python -m natgrad.study <group> <command>`
    imports, with `modules` (names: what it imports at run time by name, which no import statement
    shows); raises `ValueError` naming an unknown group, command or module."""
    root = Path(root)
    cli = module_file(f"natgrad.study.{group}.cli", root)
    if cli is None:
        raise ValueError(f"code_digest: no command-line group {group!r} (no natgrad/study/{group}/cli.py)")
    entry = module_file(ENTRY, root)
    tree = _tree(cli)
    seen = {entry, cli}
    named = [module_file(name, root) for name in modules]
    if None in named:
        raise ValueError(f"code_digest: no module {modules[named.index(None)]!r} under {root}")
    todo = [*named, *_file_imports(entry, root),
            *_imports(cli, _command_nodes(tree, _command_function(tree, group, command)), root)]
    while todo:
        path = todo.pop()
        if path not in seen:
            seen.add(path)
            todo.extend(_file_imports(path, root))
    return sorted(seen)


def module_file(name, root=PACKAGE_ROOT):
    """The file of module `name` (`natgrad...`) under `root` (src/natgrad), or None."""
    parts = name.split(".")
    if parts[0] != "natgrad":
        return None
    base = Path(root).joinpath(*parts[1:])
    for path in (base.with_suffix(".py"), base / "__init__.py"):
        if path.is_file():
            return path
    return None


def _command_function(tree, group, command):
    """The function `command` runs: `p = sub.add_parser(command, ...)`, then `p.set_defaults(func=F)`
    before `p` names another parser."""
    parsers = {}
    calls = sorted((n for n in ast.walk(tree) if isinstance(n, (ast.Assign, ast.Call))),
                   key=lambda n: (n.lineno, n.col_offset))
    for node in calls:
        if (isinstance(node, ast.Assign) and isinstance(node.value, ast.Call)
                and isinstance(node.value.func, ast.Attribute) and node.value.func.attr == "add_parser"
                and node.value.args and isinstance(node.value.args[0], ast.Constant)):
            parsers.update({t.id: node.value.args[0].value for t in node.targets if isinstance(t, ast.Name)})
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                and node.func.attr == "set_defaults" and isinstance(node.func.value, ast.Name)
                and parsers.get(node.func.value.id) == command):
            for keyword in node.keywords:
                if keyword.arg == "func" and isinstance(keyword.value, ast.Name):
                    return keyword.value.id
    raise ValueError(f"code_digest: natgrad.study.{group}.cli has no command {command!r}")


def _command_nodes(tree, function):
    """The nodes of module `tree` that run for `function`: its module level, `function`, and the
    module's functions these name (transitively)."""
    functions = {n.name: n for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))}
    module_level = [n for n in tree.body if n.__class__ not in (ast.FunctionDef, ast.AsyncFunctionDef)]
    nodes, todo, named = [], [*module_level, functions[function]], {function}
    while todo:
        node = todo.pop()
        for sub in ast.walk(node):
            nodes.append(sub)
            if isinstance(sub, ast.Name) and sub.id in functions and sub.id not in named:
                named.add(sub.id)
                todo.append(functions[sub.id])
    return nodes


def _imports(path, nodes, root):
    """The files under `root` that the import statements among `nodes` (of file `path`) name."""
    package = _module_name(path, root).rpartition(".")[0] if path.name != "__init__.py" \
        else _module_name(path, root)
    files = []
    for node in nodes:
        if isinstance(node, ast.Import):
            files += [module_file(alias.name, root) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            files.append(module_file(base, root))
            files += [module_file(f"{base}.{alias.name}", root) for alias in node.names]
    return [f for f in files if f is not None]


def _file_imports(path, root):
    """The files under `root` that file `path` imports, anywhere in it."""
    return _imports_of_source(path, root, path.read_text())


@functools.lru_cache(maxsize=None)
def _imports_of_source(path, root, source):
    return _imports(path, ast.walk(_parsed(source)), root)


def _module_name(path, root):
    parts = ("natgrad", *path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _tree(path):
    return _parsed(Path(path).read_text())


@functools.lru_cache(maxsize=None)
def _parsed(source):
    return ast.parse(source)


@functools.lru_cache(maxsize=None)
def _without_docstrings(source):
    """The syntax tree of `source` without its docstrings, as text (no line numbers: moving code is
    no edit)."""
    tree = ast.parse(source)
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
                    and isinstance(body[0].value.value, str):
                node.body = body[1:]
    return ast.dump(tree)
