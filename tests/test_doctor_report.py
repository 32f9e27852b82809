"""`openclaw doctor --lint --json` as `provision status` reads it: the real CLI's output, and a hostile one."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from provisioner.apply.doctor import parse_lint
from provisioner.apply.health import InstanceHealth
from provisioner.output.status_view import render_status, status_json
from provisioner.output.style import Style
from tests.openclaw_fixtures import OpenClawInstall


@pytest.mark.openclaw
def test_the_real_doctor_lint_output_is_read_finding_by_finding(openclaw_install: OpenClawInstall,
                                                                tmp_path: Path) -> None:
    cfg = tmp_path / "openclaw.json"
    cfg.write_text(json.dumps({"gateway": {"mode": "local", "port": 18789, "bind": "loopback"},
                               "agents": {"defaults": {"workspace": str(tmp_path / "ws")}}}))
    (tmp_path / "home").mkdir()
    env = openclaw_install.env(home=tmp_path / "home", state_dir=tmp_path / "state", config_path=cfg,
                               OPENCLAW_CONFIG_READONLY="1")
    r = openclaw_install.run(["doctor", "--lint", "--json"], env, timeout=240)
    raw = json.JSONDecoder().raw_decode(r.stdout, r.stdout.index("{"))[0]
    # as status gets it: stdout and stderr in one stream, the CLI's own notes around the document
    report = parse_lint("note: starting\n" + r.stdout + "\n" + r.stderr)
    assert report.error == "" and report.ok is raw["ok"] is False and r.returncode == 1
    assert [(f.check_id, f.severity, f.message, f.path) for f in report.findings] == \
        [(f["checkId"], f["severity"], f["message"], f.get("path", "")) for f in raw["findings"]]
    auth = next(f for f in report.findings if f.check_id == "core/doctor/gateway-auth")  # no auth configured
    assert (auth.severity, auth.path) == ("warning", "gateway.auth.token") and "generate" in auth.fix_hint


def test_what_the_service_user_prints_is_data_and_every_finding_is_shown() -> None:
    printed = ('{"not": "a report"}\n{"schemaVersion":1,"ok":false,"findings":['
               '{"checkId":"x/two","severity":"warning","message":"second\\u001b[2J\\nline","target":"t"},'
               '{"checkId":"x/one","severity":"error","message":"first","path":"gateway.bind","fixHint":"do"}]}\n'
               "(node:1) slow op\n")
    report = parse_lint(printed)
    assert [f.check_id for f in report.findings] == ["x/two", "x/one"]
    assert report.findings[0].message == "second [2J line"  # no escape sequence, no line break reaches a terminal
    assert report.findings[0].extra == (("target", "t"),)
    assert report.summary() == "1 error, 1 warning"
    row = InstanceHealth("gw-1", "main", "u", 18789, "active", "200", "200", "rpc ok", True)
    table = render_status([row], {}, Style(False), {("gw-1", "main"): report})
    lines = table.splitlines()
    assert lines.index("gw-1/main: doctor error x/one: first") < lines.index(
        "gw-1/main: doctor warning x/two: second [2J line")
    assert "1 error, 1 warning" in lines[1] and "DOCTOR" in lines[0]
    other = InstanceHealth("gw-2", "main", "u", 18789, "active", "200", "200", "rpc ok", True)
    assert "not asked" in render_status([row, other], {}, Style(False), {("gw-1", "main"): report}).splitlines()[2]
    assert "DOCTOR" not in render_status([row], {}, Style(False), {})  # --no-doctor: no column
    doc = status_json([row], {}, {("gw-1", "main"): report})["instances"][0]["doctor"]
    assert doc["findings"][1] == {"checkId": "x/one", "severity": "error", "message": "first", "path": "gateway.bind",
                                  "fixHint": "do"}
    assert parse_lint("sh: openclaw: not found\n").error == "no JSON report: sh: openclaw: not found"
