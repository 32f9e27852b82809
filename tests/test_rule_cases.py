"""Data-driven rule tests: every case file holds a failing inventory with its located diagnostics (the whole
message, word for word) and a passing one."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from provisioner.validate import validate_file

CASES = sorted((Path(__file__).parent / "cases" / "rules").glob("*.yaml"))


def _case(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(path.read_text())
    return data


def _write(tmp_path: Path, text: str) -> str:
    p = tmp_path / "inventory.yaml"
    p.write_text(text)
    return str(p)


@pytest.mark.parametrize("case", CASES, ids=[c.stem for c in CASES])
def test_failing_inventory_reports_each_expected_diagnostic_at_its_line_and_column(case: Path, tmp_path: Path) -> None:
    data = _case(case)
    path = _write(tmp_path, data["fail"]["inventory"])
    v = validate_file(path)
    got = [(f"{d.span.line}:{d.span.col}" if d.span else "?", d.severity.value, d.code, d.message, d.span)
           for d in v.diagnostics]
    for exp in data["fail"]["expect"]:
        assert "message" in exp, f"{case.name}: {exp}: give the whole message (message:), not a fragment"
        sev = exp.get("severity", "error")
        match = [g for g in got
                 if g[0] == exp["at"] and g[1] == sev and g[2] == exp["code"] and exp["message"] == g[3]]
        assert match, f"expected {sev} [{exp['code']}] at {exp['at']}: {exp['message']!r}; got:\n" + \
            "\n".join(f"  {g[0]} {g[1]} [{g[2]}] {g[3]}" for g in got)
        assert all(m[4].path == path for m in match)
    # and nothing else: a diagnostic no expectation names is a rule firing where it should not
    extra = [g for g in got if not any(g[0] == e["at"] and g[1] == e.get("severity", "error") and g[2] == e["code"]
                                       and e["message"] == g[3] for e in data["fail"]["expect"])]
    assert extra == [], "diagnostics no expectation names:\n" + "\n".join(f"  {g[0]} {g[1]} [{g[2]}] {g[3]}"
                                                                       for g in extra)
    if any(e.get("severity", "error") == "error" for e in data["fail"]["expect"]):
        assert not v.ok


@pytest.mark.parametrize("case", CASES, ids=[c.stem for c in CASES])
def test_passing_inventory_has_no_error_and_not_the_rule(case: Path, tmp_path: Path) -> None:
    data = _case(case)
    v = validate_file(_write(tmp_path, data["pass"]["inventory"]))
    codes = {e["code"] for e in data["fail"]["expect"]}
    assert v.ok, "\n".join(d.format() for d in v.diagnostics)
    assert not [d for d in v.diagnostics if d.code in codes], "\n".join(d.format() for d in v.diagnostics)
