"""Host ranges (`gw-[01:40]`) and group patterns: expansion, address templates, located errors for bad ranges."""

from __future__ import annotations

from pathlib import Path

import pytest

from provisioner.validate import validate_text

RANGE_40 = """\
version: 1
groups:
  first-half: {hosts: ["gw-[01:20]"]}
  everything: {hosts: ["gw-*", db]}
hosts:
  gw-[01:40]:
    address: "10.0.1.{n+100}"
    instances:
      main: {port: 18789}
  db:
    address: 10.0.2.1
    instances:
      main: {port: 18789}
"""


def _validate(text: str, tmp_path: Path):  # type: ignore[no-untyped-def]
    return validate_text(text, str(tmp_path / "inv.yaml"), check_configs=False)


def test_a_40_host_range_validates_with_padded_names_and_templated_addresses(tmp_path: Path) -> None:
    v = _validate(RANGE_40, tmp_path)
    assert v.ok, [d.format() for d in v.diagnostics]
    assert v.inventory is not None
    gw = [h for h in v.inventory.hosts if h.name.startswith("gw-")]
    assert [h.name for h in gw] == [f"gw-{i:02d}" for i in range(1, 41)]
    assert [h.address for h in gw] == [f"10.0.1.{100 + i}" for i in range(1, 41)]
    assert v.inventory.groups["first-half"] == tuple(f"gw-{i:02d}" for i in range(1, 21))
    assert v.inventory.groups["everything"] == (*(h.name for h in gw), "db")
    assert v.inventory.host("gw-07").groups == ("first-half", "everything")
    assert v.inventory.host("gw-33").groups == ("everything",)


def test_a_diagnostic_about_an_expanded_host_points_at_the_range_line(tmp_path: Path) -> None:
    # every gw-NN gets the same port twice: the overlap is reported at the range's lines, not nowhere
    doubled = "      main: {port: 18789}\n      b: {port: 18789}\n  db:"
    text = RANGE_40.replace("      main: {port: 18789}\n  db:", doubled)
    v = _validate(text, tmp_path)
    errors = [d for d in v.diagnostics if d.is_error]
    assert errors and all(d.span is not None and d.span.line in (9, 10) for d in errors), [d.format() for d in errors]
    assert any("gw-40" in d.message for d in errors)


@pytest.mark.parametrize(("key", "words", "col"), [
    ("gw-[40:01]", "reversed", 3),
    ("gw-[01:100]", "mixed widths", 3),
    ("gw-[1:9000]", "too large", 3),
    ("gw-[01:02][1:2]", "one range per name", 3),
    ("gw-[a:b]", "decimal numbers", 3),
])
def test_a_bad_range_is_a_located_error(tmp_path: Path, key: str, words: str, col: int) -> None:
    v = _validate(RANGE_40.replace("gw-[01:40]:", f"{key}:"), tmp_path)
    assert not v.ok
    errs = [d for d in v.diagnostics if d.code == "host-range"]
    assert len(errs) == 1 and words in errs[0].message, [d.format() for d in v.diagnostics]
    assert errs[0].span is not None and (errs[0].span.line, errs[0].span.col) == (6, col)


def test_a_range_colliding_with_another_host_names_both_lines(tmp_path: Path) -> None:
    text = RANGE_40.replace("  db:\n    address: 10.0.2.1", "  gw-17:\n    address: 10.0.2.1").replace(", db]", "]")
    v = _validate(text, tmp_path)
    errs = [d for d in v.diagnostics if d.code == "host-range"]
    assert len(errs) == 1 and "'gw-17'" in errs[0].message, [d.format() for d in v.diagnostics]
    assert errs[0].span is not None and errs[0].span.line == 6
    assert [r.line for r in errs[0].related] == [10]


def test_a_bad_template_and_an_empty_group_pattern_are_located(tmp_path: Path) -> None:
    v = _validate(RANGE_40.replace("{n+100}", "{m}"), tmp_path)
    errs = [d for d in v.diagnostics if d.code == "host-range"]
    assert len(errs) == 1 and "unknown field {m}" in errs[0].message
    assert errs[0].span is not None and (errs[0].span.line, errs[0].span.col) == (7, 14)
    v = _validate(RANGE_40.replace('"gw-*"', '"web-*"'), tmp_path)
    errs = [d for d in v.diagnostics if d.code == "host-range"]
    assert len(errs) == 1 and "'web-*' matches no host" in errs[0].message
    assert errs[0].span is not None and errs[0].span.line == 4
