"""The CLI end to end on local stand-in hosts: exit codes, offline plans, saved plans, drift, secrets."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support.cli import Provision

CANARY = "canary-7f3a9c-secret"

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
      rescue:
        port: 19789
        config: {gateway: {auth: {mode: token}}}
        secrets: {OPENCLAW_GATEWAY_TOKEN: {env: RESCUE_TOKEN}}
  b:
    connection: local
    root: hosts/b
    instances:
      main: {port: 18789}
"""


@pytest.fixture()
def provision(tmp_path: Path) -> Provision:
    return Provision(tmp_path, env={"RESCUE_TOKEN": CANARY}, timeout=120)


def _inv(tmp_path: Path, text: str = INV) -> Path:
    p = tmp_path / "inventory.yaml"
    p.write_text(text)
    return p


def test_demo_validates_plans_applies_and_converges(tmp_path: Path, provision: Provision) -> None:
    r = provision("demo", "--dir", str(tmp_path / "demo"))
    assert r.returncode == 0, r.stdout + r.stderr
    assert "=== exit code 2" in r.stdout and r.stdout.rstrip().splitlines()[-2].startswith("demo OK")
    assert "Plan: no changes on 0 of 2 host(s)." in r.stdout


def test_plan_apply_noop_cycle_with_detailed_exitcode(tmp_path: Path, provision: Provision) -> None:
    inv = _inv(tmp_path)
    assert provision("plan", str(inv), "--detailed-exitcode").returncode == 2
    r = provision("apply", str(inv), "--yes")
    assert r.returncode == 0, r.stderr
    assert provision("plan", str(inv), "--detailed-exitcode").returncode == 0
    env = tmp_path / "hosts/a/home/openclaw/.openclaw-rescue/gateway.env"
    assert CANARY in env.read_text() and (env.stat().st_mode & 0o777) == 0o600
    r = provision("apply", str(inv), "--yes")
    assert r.returncode == 0 and "No changes" in r.stderr


def test_apply_without_yes_and_without_a_terminal_refuses(tmp_path: Path, provision: Provision) -> None:
    inv = _inv(tmp_path)
    r = provision("apply", str(inv))
    assert r.returncode == 1 and "pass --yes" in r.stderr
    assert not (tmp_path / "hosts").exists()


def test_hand_edit_shows_as_drift_with_a_readable_diff(tmp_path: Path, provision: Provision) -> None:
    inv = _inv(tmp_path)
    provision("apply", str(inv), "--yes")
    cfg = tmp_path / "hosts/b/home/openclaw/.openclaw-main/openclaw.json"
    cfg.write_text(cfg.read_text().replace('"port": 18789', '"port": 18800'))
    r = provision("plan", str(inv), "--detailed-exitcode")
    assert r.returncode == 2
    assert '-    "port": 18800\n' in r.stdout and '+    "port": 18789\n' in r.stdout
    assert "(the host's file was edited since the last apply (drift)" in r.stdout
    assert "host a: no changes" in r.stdout


def test_saved_plan_applies_exactly_and_refuses_after_drift(tmp_path: Path, provision: Provision) -> None:
    inv = _inv(tmp_path)
    planfile = tmp_path / "plan.json"
    assert provision("plan", str(inv), "--out", str(planfile)).returncode == 0
    r = provision("apply", str(planfile))
    assert r.returncode == 0, r.stderr
    assert provision("plan", str(inv), "--detailed-exitcode").returncode == 0
    # a new plan, then someone edits a host before it is applied: refused, nothing written
    cfg = tmp_path / "hosts/a/home/openclaw/.openclaw-main/openclaw.json"
    cfg.write_text(cfg.read_text() + "// edit 1\n")
    assert provision("plan", str(inv), "--out", str(planfile)).returncode == 0
    cfg.write_text(cfg.read_text() + "// edit 2\n")
    r = provision("apply", str(planfile))
    assert r.returncode == 1
    assert "changed since the plan was made" in r.stdout + r.stderr
    assert cfg.read_text().endswith("// edit 2\n")


def test_a_saved_plan_made_with_limit_applies_its_hosts_only(tmp_path: Path, provision: Provision) -> None:
    """docs/scale.md's matrix job: `plan --limit GROUP --out` then `apply PLANFILE` without --limit."""
    inv = _inv(tmp_path)
    planfile = tmp_path / "a.plan"
    assert provision("plan", str(inv), "--limit", "a", "--out", str(planfile)).returncode == 0
    r = provision("apply", str(planfile))
    assert r.returncode == 0, r.stdout + r.stderr
    assert (tmp_path / "hosts/a/home/openclaw/.openclaw-main/openclaw.json").exists()
    assert not (tmp_path / "hosts/b").exists()
    assert provision("plan", str(inv), "--limit", "a", "--detailed-exitcode").returncode == 0


def test_saved_plan_is_refused_when_the_inventory_changed(tmp_path: Path, provision: Provision) -> None:
    inv = _inv(tmp_path)
    planfile = tmp_path / "plan.json"
    provision("plan", str(inv), "--out", str(planfile))
    inv.write_text(INV + "# any edit, even a comment, makes the saved plan stale\n")
    r = provision("apply", str(planfile))
    assert r.returncode == 1 and "inventory" in r.stderr and "changed" in r.stderr
    assert not (tmp_path / "hosts").exists()


def test_offline_plan_compares_against_a_render_directory(tmp_path: Path, provision: Provision) -> None:
    inv = _inv(tmp_path)
    out = tmp_path / "rendered"
    assert provision("render", str(inv), "--out", str(out)).returncode == 0
    r = provision("plan", str(inv), "--offline", str(out), "--detailed-exitcode")
    assert r.returncode == 0, r.stdout + r.stderr
    (out / "b/home/openclaw/.openclaw-main/openclaw.json").unlink()
    r = provision("plan", str(inv), "--offline", str(out), "--detailed-exitcode", "--json")
    assert r.returncode == 2
    doc = json.loads(r.stdout)
    assert [(c["host"], c["action"], c["target"]) for h in doc["hosts"] for c in h["changes"]] == [
        ("b", "create", "/home/openclaw/.openclaw-main/openclaw.json")]


def test_secret_never_appears_in_plan_json_logs_or_plan_file(tmp_path: Path, provision: Provision) -> None:
    inv = _inv(tmp_path)
    planfile = tmp_path / "plan.json"
    outputs = []
    for args in (("plan", str(inv)), ("plan", str(inv), "--json", "--out", str(planfile)),
                 ("apply", str(inv), "--yes", "-v"), ("apply", str(inv), "--yes", "--json")):
        r = provision(*args)
        assert r.returncode == 0, (args, r.stdout, r.stderr)  # a run that failed early proves nothing
        outputs += [r.stdout, r.stderr]
    assert json.loads(outputs[-2])["ok"] is True  # the second apply ran, with nothing left to change
    inv.write_text(INV)  # a secret rotation shows as a masked change
    r = provision("plan", str(inv), "--detailed-exitcode", env={"RESCUE_TOKEN": CANARY + "-rotated"})
    assert r.returncode == 2, r.stdout + r.stderr
    outputs += [r.stdout, r.stderr]
    assert "OPENCLAW_GATEWAY_TOKEN=<redacted> (changed)" in r.stdout
    outputs.append(planfile.read_text())
    assert all(CANARY not in o for o in outputs)


def test_validate_json_reports_located_diagnostics_and_exit_1(tmp_path: Path, provision: Provision) -> None:
    inv = _inv(tmp_path, INV.replace("port: 19789", "port: 18800"))
    r = provision("validate", str(inv), "--json")
    assert r.returncode == 1
    doc = json.loads(r.stdout)
    assert doc["valid"] is False
    d = next(d for d in doc["diagnostics"] if d["code"] == "port-overlap")
    assert d["location"] == {"file": str(inv), "line": 12, "column": 9}


def test_missing_secret_is_a_located_error_before_anything_is_touched(tmp_path: Path, provision: Provision) -> None:
    inv = _inv(tmp_path)
    r = provision("apply", str(inv), "--yes", env={"RESCUE_TOKEN": None}, timeout=60)
    assert r.returncode == 1
    assert f"{inv}:14:" in r.stderr and "RESCUE_TOKEN" in r.stderr
    assert not (tmp_path / "hosts").exists()
