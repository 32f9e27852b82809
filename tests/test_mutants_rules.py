"""Every diagnostic of an inventory, exactly: the inventories of tests/cases/inventory-diagnostics.yaml, each with
all its located diagnostics word for word and in order (the schema's explanations of each kind of error, the
isolation rules' edge cases). Found by mutation testing (`scripts/mutation rules`): the rule cases matched a
fragment of one message each, and several explanations and rule branches had no fast test at all.

README: "Every diagnostic has a file:line:col" and names its rule; `validate` explains each schema error in words."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from provisioner.core.diagnostics import Diagnostic
from provisioner.rules import schema
from provisioner.validate import validate_text

CASES: list[dict[str, Any]] = yaml.safe_load(
    (Path(__file__).parent / "cases" / "inventory-diagnostics.yaml").read_text(encoding="utf-8"))


def _line(d: Diagnostic) -> str:
    """A diagnostic as the case file spells it: as `validate` prints it, its rule, and the other places it names."""
    also = " also at " + ", ".join(str(r) for r in d.related) if d.related else ""
    return f"{d.format()} [{d.code}]{also}"


@pytest.fixture(autouse=True)
def _no_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OCP_NO_VALIDATION_CACHE", "1")
    # Each case builds the schema validator itself: it is cached per process, so otherwise only the first test of
    # a run builds it, and a mutation run (which asks which tests reach expanded_schema) would try its mutants on
    # that one test alone.
    schema._validator.cache_clear()


def test_case_names_are_unique() -> None:
    names = [c["name"] for c in CASES]
    assert len(names) == len(set(names))


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_an_inventory_gets_exactly_its_located_diagnostics(case: dict[str, Any]) -> None:
    v = validate_text(case["inventory"], "i.yaml")
    assert [_line(d) for d in v.diagnostics] == case["diagnostics"]
    assert v.ok is not any(" error: " in d for d in case["diagnostics"])


def test_expanding_the_schema_leaves_the_published_one_as_written() -> None:
    # the published schema (README: "the full format") describes the file as written, with ranges, globs
    # and templates; the schema the data is checked against after expansion is a changed copy of it
    text = (Path(__file__).parents[1] / "schemas" / "inventory.schema.json").read_text(encoding="utf-8")
    published = json.loads(text)
    expanded = schema.expanded_schema()
    assert schema.inventory_schema() == published
    assert expanded["properties"]["hosts"]["propertyNames"] == {"$ref": "#/$defs/name"}
    assert published["properties"]["hosts"]["propertyNames"] == {"$ref": "#/$defs/hostKey"}
