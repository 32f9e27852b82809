"""The CLI's contract with scripts and CI (issue 14): exit codes, usage errors, common flags anywhere, --version,
and stdout that is exactly one JSON document with --json, on success and on failure."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support.cli import Provision

INV = """\
version: 1
openclaw: {version: "2026.9.6", command: [/opt/openclaw/bin/openclaw]}
defaults:
  service: {manager: none}
hosts:
  a:
    connection: local
    root: hosts/a
    instances:
      main: {port: 18789}
  b:
    connection: local
    root: hosts/b
    instances:
      main: {port: 18789}
"""


@pytest.fixture()
def provision(tmp_path: Path) -> Provision:
    return Provision(tmp_path, timeout=120, forbid_traceback=True)


@pytest.fixture()
def inv(tmp_path: Path) -> Path:
    p = tmp_path / "inventory.yaml"
    p.write_text(INV)
    return p


@pytest.mark.parametrize(("argv", "usage"), [
    (["plan", "{inv}", "--ofline", "r"], "usage: provision plan "),  # a mistyped flag
    (["plan", "{inv}", "--offline"], "usage: provision plan "),  # a flag without its value
    (["plan"], "usage: provision plan "),  # a missing argument
    (["render", "{inv}"], "usage: provision render "),  # a missing required flag
    (["dedupe", "verify", "{inv}", "--zz"], "usage: provision dedupe verify "),
    (["frobnicate"], "usage: provision "),  # an unknown command
    ([], "usage: provision "),
])
def test_usage_errors_exit_1_with_the_commands_usage(provision: Provision, inv: Path, argv: list[str],
                                                     usage: str) -> None:
    r = provision(*[a.format(inv=inv) for a in argv])
    assert r.returncode == 1, r.stderr
    assert r.stderr.startswith(usage) and "error:" in r.stderr
    assert r.stdout == ""


def test_a_usage_error_with_json_still_prints_one_document(provision: Provision, inv: Path) -> None:
    r = provision("--json", "plan", str(inv), "--ofline", "r")
    assert r.returncode == 1
    doc = json.loads(r.stdout)
    assert doc["ok"] is False and doc["exit_code"] == 1 and doc["command"] == "plan"
    assert "--ofline" in doc["errors"][0]


def test_help_and_version_exit_0_on_stdout(provision: Provision) -> None:
    r = provision("--version")
    assert r.returncode == 0 and r.stdout.startswith("provision 0.") and r.stderr == ""
    r = provision("plan", "--help")
    assert r.returncode == 0 and r.stdout.startswith("usage: provision plan ")


@pytest.mark.parametrize("where", ["before", "after"])
def test_common_flags_work_before_or_after_the_command(provision: Provision, inv: Path, where: str) -> None:
    flags = ["--json", "-l", "b", "--no-color", "-v"]
    argv = [*flags, "plan", str(inv)] if where == "before" else ["plan", str(inv), *flags]
    r = provision(*argv)
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert [h["host"] for h in doc["hosts"]] == ["b"]


def test_limit_given_before_and_after_adds_up(provision: Provision, inv: Path) -> None:
    r = provision("--limit", "a", "plan", str(inv), "-l", "b", "--json")
    assert [h["host"] for h in json.loads(r.stdout)["hosts"]] == ["a", "b"]


def test_validate_prints_its_verdict_on_stdout(provision: Provision, inv: Path, tmp_path: Path) -> None:
    r = provision("validate", str(inv))
    assert r.returncode == 0 and r.stdout.startswith(f"{inv}: valid (2 host(s), 2 instance(s)")
    bad = tmp_path / "bad.yaml"
    bad.write_text(INV.replace("port: 18789}\n  b:", "port: 99999}\n  b:"))
    r = provision("validate", str(bad))
    assert r.returncode == 1 and r.stdout.startswith(f"{bad}: invalid; 1 error")
    assert f"{bad}:10:" in r.stderr


def _document(stdout: str) -> dict[str, object]:
    doc = json.loads(stdout)  # exactly one document: json.loads refuses trailing data
    assert isinstance(doc, dict)
    assert doc["format_version"] == "1.0" and str(doc["format"]).startswith("openclaw-provisioner-")
    for key in ("command", "ok", "exit_code", "errors", "diagnostics"):
        assert key in doc, key
    return doc


@pytest.mark.parametrize("command", ["validate", "render", "plan", "apply", "status", "unlock", "dedupe"])
def test_json_on_failure_is_one_document_with_located_errors(provision: Provision, tmp_path: Path,
                                                             command: str) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(INV.replace("port: 18789}\n  b:", "port: 99999}\n  b:"))
    argv = {"render": ["render", str(bad), "--out", "r"], "apply": ["apply", str(bad), "--yes"],
            "dedupe": ["dedupe", "verify", str(bad)]}.get(command, [command, str(bad)])
    r = provision(*argv, "--json")
    assert r.returncode == 1
    doc = _document(r.stdout)
    assert doc["ok"] is False and doc["exit_code"] == 1
    assert {"severity": "error", "location": {"file": str(bad), "line": 10, "column": 20}}.items() <= \
        next(iter(doc["diagnostics"])).items()  # type: ignore[call-overload]


def test_json_on_a_missing_secret_and_a_limit_matching_nothing(provision: Provision, inv: Path,
                                                               tmp_path: Path) -> None:
    sec = tmp_path / "secret.yaml"
    sec.write_text(INV.replace("main: {port: 18789}\n  b:",
                               "main: {port: 18789, secrets: {OPENCLAW_GATEWAY_TOKEN: {env: NOPE_TOKEN}}}\n  b:"))
    r = provision("plan", str(sec), "--json", env={"NOPE_TOKEN": None})
    doc = _document(r.stdout)
    assert r.returncode == 1 and doc["ok"] is False
    assert "NOPE_TOKEN" in doc["diagnostics"][0]["message"] and doc["diagnostics"][0]["location"]["line"] == 10
    r = provision("plan", str(inv), "--json", "-l", "zz")
    doc = _document(r.stdout)
    assert r.returncode == 1 and "zz" in doc["errors"][0]


def test_json_on_success_carries_the_envelope(provision: Provision, inv: Path) -> None:
    r = provision("plan", str(inv), "--json", "--detailed-exitcode")
    doc = _document(r.stdout)
    assert r.returncode == 2 and doc["exit_code"] == 2 and doc["ok"] is True and doc["changes_pending"] is True
    assert doc["format"] == "openclaw-provisioner-plan/1"
    r = provision("validate", str(inv), "--json")
    doc = _document(r.stdout)
    assert doc["format"] == "openclaw-provisioner-validate/1" and doc["valid"] is True


def test_apply_json_events_streams_one_object_per_line_then_the_result(provision: Provision, inv: Path) -> None:
    r = provision("apply", str(inv), "--yes", "--json-events")
    assert r.returncode == 0, r.stderr
    events = [json.loads(line) for line in r.stdout.splitlines()]  # every line parses on its own
    assert all({"type", "host", "message", "timestamp"} <= e.keys() for e in events[:-1])
    assert all(e["timestamp"].endswith("Z") for e in events)
    assert [e["type"] for e in events if e["type"] != "progress"] == ["batch", "host_done", "batch", "host_done",
                                                                      "result"]
    assert {(e["host"], e["message"]) for e in events if e["type"] == "progress"} >= {("a", "writing 2 file(s)"),
                                                                                      ("b", "writing 2 file(s)")}
    result = events[-1]
    assert result["format"] == "openclaw-provisioner-apply/1" and result["exit_code"] == 0
    assert [h["status"] for h in result["hosts"]] == ["changed", "changed"]
    r = provision("apply", str(inv), "--yes", "--json-events")  # nothing to do: still the result line
    assert [json.loads(line)["type"] for line in r.stdout.splitlines()] == ["result"]


def test_demo_json_is_one_document(provision: Provision, tmp_path: Path) -> None:
    r = provision("demo", "--dir", str(tmp_path / "demo"), "--json")
    doc = _document(r.stdout)
    assert r.returncode == 0 and doc["ok"] is True
    assert [s["exit_code"] for s in doc["steps"]] == [0, 2, 0, 0]


def test_a_progress_report_that_carries_facts_streams_them() -> None:
    from provisioner.output.progress import JsonEventsProgress

    class Report(str):  # what a report with facts looks like to the stream: text, plus kind and fields
        kind = "gate"
        fields = {"instance": "main", "elapsed": 1.5, "failing": ["telegram"]}

    events: list[dict[str, object]] = []
    p = JsonEventsProgress(events.append)
    p("gw-a", Report("main not ready: telegram failing"))
    p("controller", "interrupted")
    assert events == [
        {"type": "progress", "host": "gw-a", "message": "main not ready: telegram failing", "kind": "gate",
         "data": {"instance": "main", "elapsed": 1.5, "failing": ["telegram"]}},
        {"type": "progress", "host": None, "message": "interrupted"}]
    assert type(events[0]["message"]) is str
