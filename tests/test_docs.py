"""The documentation's code runs: every ```python block of a page, in order, in one namespace.

Pages: each `docs/*.md`, and the section "## The library" of README.md. A page's blocks share one
namespace, so a later block uses the names an earlier one defined; any exception fails the page's
test, with a traceback that points at the page and line (`docs/training_loop.md:42`). A block fenced
"```python no-run" is shown to the reader but not executed (for code that needs data or hardware
the tests do not have). Only blocks whose info string starts with `python` run (```bash, ```yaml,
... are ignored). Blocks run in a temporary working directory.
"""
from __future__ import annotations

import dataclasses
import re
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
SKIP_WORD = "no-run"

_FENCE_OPEN = re.compile(r"^(?P<indent> {0,3})(?P<fence>`{3,}|~{3,})\s*(?P<info>[^`]*?)\s*$")
_HEADING = re.compile(r"^ {0,3}(?P<hashes>#{1,6})\s+(?P<title>.*?)\s*#*\s*$")


@dataclasses.dataclass(frozen=True)
class Block:
    """One fenced code block: its info string words, its code, and the file line of its first code line."""

    info: tuple[str, ...]
    code: str
    line: int

    @property
    def runs(self) -> bool:
        return bool(self.info) and self.info[0] == "python" and SKIP_WORD not in self.info[1:]


def parse(text: str) -> list[tuple[str, object]]:
    """The page as a sequence of ("heading", (level, title)) and ("block", Block), in order.

    Headings inside code blocks are not headings (a `# comment` line in a block is code).
    """
    items: list[tuple[str, object]] = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        opening = _FENCE_OPEN.match(lines[i])
        if opening:
            fence, indent = opening["fence"], len(opening["indent"])
            closing = re.compile(rf"^ {{0,3}}{re.escape(fence[0])}{{{len(fence)},}}\s*$")
            body, j = [], i + 1
            while j < len(lines) and not closing.match(lines[j]):
                # a fence indented by k spaces strips up to k spaces of indentation from its lines
                prefix = lines[j][:indent]
                body.append(lines[j][indent:] if not prefix.strip() else lines[j].lstrip())
                j += 1
            info = tuple(opening["info"].replace("{", " ").replace("}", " ").split())
            items.append(("block", Block(info, textwrap.dedent("\n".join(body)) + "\n", i + 2)))
            i = j + 1
            continue
        heading = _HEADING.match(lines[i])
        if heading:
            items.append(("heading", (len(heading["hashes"]), heading["title"])))
        i += 1
    return items


def blocks(text: str, section: str | None = None) -> list[Block]:
    """The page's blocks, or those under the heading `section` up to the next heading of its level or above."""
    items = parse(text)
    if section is not None:
        starts = [k for k, (kind, value) in enumerate(items) if kind == "heading" and value[1] == section]
        if not starts:
            raise LookupError(f"no heading {section!r}")
        level = items[starts[0]][1][0]
        rest = items[starts[0] + 1:]
        end = next((k for k, (kind, value) in enumerate(rest) if kind == "heading" and value[0] <= level),
                   len(rest))
        items = rest[:end]
    return [value for kind, value in items if kind == "block"]


def run_blocks(path: Path, code_blocks: list[Block]) -> dict:
    """Execute the runnable blocks in order in one namespace; return the namespace."""
    namespace: dict = {"__name__": "__main__", "__file__": str(path)}
    for block in code_blocks:
        if block.runs:
            # Padding with newlines makes the traceback's line numbers the page's own.
            exec(compile("\n" * (block.line - 1) + block.code, str(path), "exec"), namespace)
    return namespace


def _pages():
    """docs/training_loop.md (its code is the point of the page), any other docs page with a python
    block, and README's library section."""
    pages = []
    for path in sorted(DOCS.glob("*.md")):
        if path.name == "training_loop.md" or any(b.runs for b in blocks(path.read_text(encoding="utf-8"))):
            pages.append(pytest.param(path, None, id=path.relative_to(ROOT).as_posix()))
    pages.append(pytest.param(ROOT / "README.md", "The library", id="README.md#the-library"))
    return pages


@pytest.fixture
def page_sandbox(tmp_path, monkeypatch):
    """Run in a temporary directory and undo a page's `jax.config.update("jax_enable_x64", ...)`."""
    import jax

    monkeypatch.chdir(tmp_path)
    x64 = bool(jax.config.jax_enable_x64)
    yield
    jax.config.update("jax_enable_x64", x64)


@pytest.mark.parametrize("path, section", _pages())
def test_page_code_runs(path, section, page_sandbox):
    code_blocks = blocks(path.read_text(encoding="utf-8"), section)
    if not any(block.runs for block in code_blocks):
        pytest.skip(f"{path.name} has no python blocks yet (a placeholder)")
    run_blocks(path, code_blocks)


#: The modules whose every exported name docs/examples.md shows in running code.
EXAMPLE_MODULES = ("natgrad", "natgrad.families", "natgrad.damping", "natgrad.economics",
                   "natgrad.preconditioners", "natgrad.preconditioners.kronecker",
                   "natgrad.solvers", "natgrad.pytree", "natgrad.stalls")


def test_every_public_name_has_a_running_example():
    import importlib

    code = "\n".join(b.code for b in blocks((DOCS / "examples.md").read_text(encoding="utf-8"))
                     if b.runs)
    missing = [f"{module}.{name}" for module in EXAMPLE_MODULES
               for name in importlib.import_module(module).__all__
               if not re.search(rf"\b{re.escape(name)}\b", code)]
    assert not missing, f"docs/examples.md has no running example of {', '.join(missing)}"


# The extraction itself.

PAGE = """\
# Title

```bash
pip install natgrad
```

## The library

```python
a = 1
# not a heading: a comment in a block
```

Text.

~~~python
b = a + 1
~~~

```python no-run
raise RuntimeError("shown, not run")
```

```{code-block} python
c = 3
```

### A subsection

  ```python
  d = b * 2
  ```

## Next section

```python
raise RuntimeError("outside the section")
```
"""


def test_blocks_of_a_section_run_in_order_in_one_namespace(tmp_path):
    found = blocks(PAGE, "The library")
    assert [b.info for b in found] == [("python",), ("python",), ("python", "no-run"),
                                       ("code-block", "python"), ("python",)]
    assert [b.runs for b in found] == [True, True, False, False, True]
    assert found[0].line == PAGE.splitlines().index("a = 1") + 1
    assert found[-1].code == "d = b * 2\n"
    namespace = run_blocks(tmp_path / "page.md", found)
    assert (namespace["a"], namespace["b"], namespace["d"]) == (1, 2, 4)
    assert "c" not in namespace


def test_whole_page_and_missing_section():
    assert len(blocks(PAGE)) == 7
    with pytest.raises(LookupError, match="Nowhere"):
        blocks(PAGE, "Nowhere")


def test_failure_points_at_the_page_line(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("# P\n\n```python\nx = 1\ny = undefined_name\n```\n")
    with pytest.raises(NameError) as excinfo:
        run_blocks(page, blocks(page.read_text()))
    frame = excinfo.traceback[-1]
    assert Path(frame.path) == page and frame.lineno + 1 == 5
