"""Upgrades that can be undone, without a host: before a version switch each instance's state is backed up with
the OLD release; when the new one fails its gate, the gateways stop, the files go back, then the state dirs, and
only then the old gateways start. A failed backup changes nothing. The plan says so."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from provisioner.apply.executor import apply_host
from provisioner.apply.facts import user_side
from provisioner.apply.results import HostStatus
from provisioner.apply.upgrade_state import StateGuard
from provisioner.plan import plan_host
from provisioner.remote.scripts.state_restore import RESTORED
from provisioner.render.files import render_host
from provisioner.validate import validate_text
from tests.support.fake_transport import FakeTransport, result
from tests.test_backup_logic import created_output
from tests.test_executor_logic import _facts

INV = """\
version: 1
openclaw: {version: "2026.9.6", install: {prefix: /opt/openclaw, keep: 2}}
hosts:
  gw-1:
    address: 192.0.2.10
    instances:
      main: {port: 18789}
"""
OLD, NEW = "2026.9.5", "2026.9.6"
UNIT = "openclaw-gateway-main.service"

pytestmark = [pytest.mark.timeout(30), pytest.mark.usefixtures("own_controller")]


def world(tmp_path: Path, current: str | None = OLD):  # type: ignore[no-untyped-def]
    v = validate_text(INV, str(tmp_path / "inv.yaml"), check_configs=False)
    assert v.inventory is not None
    host = v.inventory.hosts[0]
    desired = render_host(v.inventory, host)
    observed = _facts(desired, stale=(f"/etc/systemd/system/{UNIT}",))  # the unit runs the old release
    releases = {x: f"openclaw={x} node=24.21.0" for x in (OLD, NEW)}
    observed = replace(observed, releases=releases, current_release=current)
    planned = plan_host(desired, observed)
    fake = FakeTransport("gw-1", observed=observed, user_paths=user_side(desired)["user_paths"])
    base = fake.probe_text
    lines = "".join(f"I {x} {stamp}\n" for x, stamp in releases.items()) + f"IC {current or ''}\n"
    fake.probe_text = lambda: base().replace("END\n", lines + "END\n")  # type: ignore[method-assign]
    return host, desired, planned, fake


def test_the_plan_shows_the_backup_step_of_a_version_switch(tmp_path: Path) -> None:
    _, _, planned, _ = world(tmp_path)
    [switch] = [c for c in planned.changes if c.target == "/opt/openclaw/current"]
    assert f"switch current {OLD} -> {NEW}" in switch.reason
    assert f"each instance's state is backed up on the host (openclaw backup create, {OLD})" in switch.reason
    _, _, first, _ = world(tmp_path, current=None)  # a first install has no state to protect
    assert "backed up" not in next(c for c in first.changes if c.target == "/opt/openclaw/current").reason


def test_a_failed_gate_after_a_switch_stops_restores_the_files_then_the_state_then_starts(tmp_path: Path) -> None:
    host, desired, planned, fake = world(tmp_path)
    fake.on("backup create", result(created_output(0)))
    fake.on("backup restore", result(f"@@OCP 0 BEGIN\n~ {RESTORED}\n\n@@OCP 0 END\n"))
    fake.on_http(503)
    guard = StateGuard(host, "/opt/openclaw", keep=2)
    res = apply_host(fake, desired, planned, health_poll=0.01, health_timeout=0.05, guard=guard)
    assert res.status is HostStatus.FAILED and res.rolled_back, res.message
    assert f"state of main put back from the backup before the switch; what {NEW} wrote is in " \
           f"/home/openclaw/.openclaw-main.ocp-failed-{NEW}-" in res.message
    steps = [("backup" if "backup create" in s.script else "state" if "backup restore" in s.script else
              "stop" if "disable --now" in s.script else s.kind) for s in fake.sent]
    steps = [s for s in steps if s not in ("unit-states", "other")]
    assert steps == ["lock", "backup", "write", "systemctl", "stop", "restore", "state", "systemctl", "unlock"]
    [backup] = [s.script for s in fake.sent if "backup create" in s.script]
    assert f"/opt/openclaw/{OLD}/bin/openclaw" in backup and f"/opt/openclaw/{NEW}/" not in backup
    [state] = [s.script for s in fake.sent if "backup restore" in s.script]
    assert f"/opt/openclaw/{OLD}/bin/openclaw" in state and ".openclaw-provisioner/upgrades/main." in state


def test_a_backup_that_fails_before_the_switch_changes_nothing(tmp_path: Path) -> None:
    host, desired, planned, fake = world(tmp_path)
    fake.on("backup create", result("@@OCP 0 BEGIN\n~ Error: disk full\n@@OCP 0 END\n", rc=0))
    res = apply_host(fake, desired, planned, health_poll=0.01, guard=StateGuard(host, "/opt/openclaw"))
    assert res.status is HostStatus.FAILED and "nothing else was changed" in res.message, res.message
    assert "backing up the state of main before the switch" in res.message
    assert "write" not in fake.kinds() and "systemctl" not in fake.kinds()


def test_a_healthy_switch_keeps_its_backup_and_restores_nothing(tmp_path: Path) -> None:
    host, desired, planned, fake = world(tmp_path)
    fake.on("backup create", result(created_output(0)))
    guard = StateGuard(host, "/opt/openclaw")
    res = apply_host(fake, desired, planned, health_poll=0.01, guard=guard)
    assert res.status is HostStatus.CHANGED, res.message
    assert list(guard.archives) == ["main"] and not any("backup restore" in s.script for s in fake.sent)
