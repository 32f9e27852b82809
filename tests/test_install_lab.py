"""Upgrading OpenClaw itself: a version switch between two real releases rolls out host by host, and a host
where the new one does not become ready goes back to the old one. (A fresh host's first install, and a
second apply that transfers nothing, are proven in test_e2e_openclaw.py.)"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.lab.harness import Lab
from tests.lab.hosts import LabHost
from tests.openclaw_fixtures import OpenClawInstall
from tests.support.cli import Provision
from tests.support.lab_cli import LAB_ENV, readyz

pytestmark = [pytest.mark.lab, pytest.mark.openclaw]

OLD, NEW = "2026.9.5", "2026.9.6"


def fleet_doc(version: str, hosts: list[str], instances: dict[str, Any], **ssh: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "version": 1,
        "openclaw": {"version": version, "install": {"source": "push", "prefix": "/opt/openclaw", "keep": 2}},
        "defaults": {"instance": {"health": {"timeout": 240}}},
        "hosts": {h: {"instances": instances} for h in hosts},
    }
    if ssh:
        doc["defaults"]["ssh"] = ssh
    return doc


def exec_start(host: LabHost, unit: str) -> str:
    return host.run(["systemctl", "show", "-p", "ExecStart", "--value", unit]).stdout


@pytest.fixture(scope="module")
def releases(openclaw_install: OpenClawInstall) -> None:
    """Both releases in the controller's cache before the timed parts (the first fetch is ~1 min each)."""
    from provisioner.install.release import artifact

    for v in (OLD, NEW):
        artifact(v, "24.21.0")


def test_a_version_switch_rolls_host_by_host_and_a_host_that_fails_goes_back(
        releases: None, make_host: Callable[..., LabHost], lab: Lab, tmp_path: Path,
        inventory_writer: Callable[..., Path]) -> None:
    """With a sudo-enabled non-root SSH user (become), as operators of the official playbook ask for."""
    hosts = {"gw-1": make_host("systemd"), "gw-2": make_host("systemd")}
    provision = Provision(tmp_path, lab=lab, env=LAB_ENV)
    instances = {"main": {"port": 18789}}
    ssh = {"user": "lab", "become": True}
    inv = str(inventory_writer(fleet_doc(OLD, list(hosts), instances, **ssh), hosts, user="lab", name="inv.yaml"))
    all_at_once = tmp_path / "all-at-once.yaml"
    all_at_once.write_text('serial: ["100%"]\n')
    r0 = provision("apply", inv, "--yes", "--playbook", str(all_at_once))
    assert r0.returncode == 0, r0.stdout + r0.stderr

    doc = fleet_doc(NEW, list(hosts), instances, **ssh)
    doc["hosts"]["gw-2"]["instance"] = {"health": {"timeout": 1}}  # the new release cannot be ready that fast
    inv = str(inventory_writer(doc, hosts, user="lab", name="inv.yaml"))
    r = provision("plan", inv)
    assert f"switch current {OLD} -> {NEW}" in r.stdout
    r = provision("apply", inv, "--yes", "--json")
    assert r.returncode == 1, r.stdout + r.stderr
    res = {h["host"]: h for h in json.loads(r.stdout)["hosts"]}
    assert res["gw-1"]["status"] == "changed" and res["gw-2"]["status"] == "failed"
    assert res["gw-2"]["revision"] == "previous (rolled back)"

    g1, g2 = hosts["gw-1"], hosts["gw-2"]
    assert g1.run(["readlink", "/opt/openclaw/current"]).stdout.strip() == NEW
    assert f"/opt/openclaw/{NEW}/" in exec_start(g1, "openclaw-gateway-main.service")
    assert g2.run(["readlink", "/opt/openclaw/current"]).stdout.strip() == OLD
    assert f"/opt/openclaw/{OLD}/" in exec_start(g2, "openclaw-gateway-main.service")
    assert readyz(g1, 18789) == "200"
    assert readyz(g2, 18789, wait=120) == "200"  # running again, on the old release
    assert sorted(g1.run(["ls", "/opt/openclaw"]).stdout.split()) == [OLD, NEW, "current"]  # OLD kept: keep 2
