"""docs/testing.md maps each README section and claim to the tests that prove it: every test it names must exist
(found by reading the test files with ast, without running them), and every `##` section of the README must
have a row. A claim without a test must say `not tested` in plain words."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "testing.md"
TABLE_HEADING = "## README claims and their tests"
TEST_ID = re.compile(r"`(tests/[\w/]+\.py)::(\w+)(\[[^\]`]*\])?`")


def table_rows(text: str) -> list[list[str]]:
    """The rows of the first table under TABLE_HEADING, as lists of cells (header and rule line dropped).
    A `\\|` inside a cell is text, not a cell border."""
    lines = text.splitlines()
    start = lines.index(TABLE_HEADING)
    rows = []
    for line in lines[start + 1:]:
        if line.startswith("## "):
            break
        if not line.startswith("|"):
            if rows:
                break
            continue
        cells = [c.strip() for c in re.split(r"(?<!\\)\|", line.strip())[1:-1]]
        rows.append(cells)
    assert len(rows) > 2, f"{DOC}: no table under {TABLE_HEADING!r}"
    assert rows[0] == ["README section", "claim", "tests"], rows[0]
    return rows[2:]


def defined_tests(path: Path) -> set[str]:
    """The test functions pytest would collect from one file: module-level `test_*` and `test_*` methods of
    `Test*` classes (named by their function name: the table does not name classes)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name.startswith("test_"):
            names.add(node.name)
        elif isinstance(node, ast.ClassDef) and node.name.startswith("Test"):
            names |= {f.name for f in node.body if isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef))
                      and f.name.startswith("test_")}
    return names


def readme_sections() -> list[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    out, fenced = [], False
    for line in text.splitlines():
        if line.startswith("```"):
            fenced = not fenced
        elif not fenced and line.startswith("## "):
            out.append(line[3:].strip())
    return out


def problems(doc: str, sections: list[str]) -> list[str]:
    """Everything wrong with the table, in words (empty when it is true)."""
    out = []
    known: dict[str, set[str]] = {}
    seen_sections = set()
    for i, (section, claim, tests) in enumerate(table_rows(doc), 1):
        seen_sections.add(section)
        if section not in sections:
            out.append(f"row {i}: {section!r} is not a section of README.md")
        ids = TEST_ID.findall(tests)
        if not ids and not tests.startswith("not tested"):
            out.append(f"row {i} ({claim}): names no test and does not say `not tested`")
        for file, name, _param in ids:
            path = ROOT / file
            if file not in known:
                known[file] = defined_tests(path) if path.is_file() else set()
            if name not in known[file]:
                out.append(f"row {i} ({claim}): {file}::{name} does not exist")
        rest = TEST_ID.sub("", tests).replace(",", "").strip()
        if ids and rest:
            out.append(f"row {i} ({claim}): text that is not a test id: {rest!r}")
    out += [f"README section {s!r} has no row" for s in sections if s not in seen_sections]
    return out


def test_every_named_test_exists_and_every_readme_section_has_a_row() -> None:
    sections = readme_sections()
    assert "Rollouts" in sections and "Who is trusted (threat model)" in sections, sections
    assert problems(DOC.read_text(encoding="utf-8"), sections) == []


def test_the_check_fails_for_a_missing_test_a_missing_section_and_an_unproven_claim() -> None:
    """The control: the same check on a doctored copy finds each kind of mistake."""
    doc = DOC.read_text(encoding="utf-8")
    real = "`tests/test_rollout.py::test_batches`"
    assert real in doc
    gone = doc.replace(real, "`tests/test_rollout.py::test_batches_gone`", 1)
    assert problems(gone, readme_sections()) == [
        next(p for p in problems(gone, readme_sections()) if "test_batches_gone does not exist" in p)]
    assert any("'Made Up Section' has no row" in p for p in problems(doc, [*readme_sections(), "Made Up Section"]))
    bare = doc.replace("not tested: it is what runs the suite", "it is what runs the suite", 1)
    assert any("names no test and does not say `not tested`" in p for p in problems(bare, readme_sections()))
    wrong_file = doc.replace(real, "`tests/test_nothing_here.py::test_batches`", 1)
    assert any("test_nothing_here.py::test_batches does not exist" in p
               for p in problems(wrong_file, readme_sections()))
