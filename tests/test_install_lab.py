"""Upgrading OpenClaw itself: a version switch between two real releases rolls out host by host, each instance's
state is backed up on its host first, and a host where the new one fails its gate goes back to the old release
and to the old state dir, what the new one wrote moved aside. (A fresh host's first install, and a second apply
that transfers nothing, are proven in test_e2e_openclaw.py.)"""

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
STATE = "/home/openclaw/.openclaw-main"
# what 2026.9.6 writes when it first starts on 2026.9.5's state: the copy of the database it is about to migrate
# (measured: `state/openclaw.sqlite.pre-startup-migration-<uuid>.bak`; 2026.9.5 on its own state writes none)
MIGRATED = "openclaw.sqlite.pre-startup-migration-"
FAKE_TOKEN = "123456789:AAlabFakeTokenThatCannotConnect00"
TELEGRAM = {"enabled": True, "dmPolicy": "pairing", "groupPolicy": "allowlist",
            "botToken": {"source": "env", "provider": "default", "id": "TELEGRAM_BOT_TOKEN"}}


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
    provision = Provision(tmp_path, lab=lab, env={**LAB_ENV, "LAB_TELEGRAM_TOKEN": FAKE_TOKEN})
    instances = {"main": {"port": 18789}}
    ssh = {"user": "lab", "become": True}
    inv = str(inventory_writer(fleet_doc(OLD, list(hosts), instances, **ssh), hosts, user="lab", name="inv.yaml"))
    all_at_once = tmp_path / "all-at-once.yaml"
    all_at_once.write_text('serial: ["100%"]\n')
    r0 = provision("apply", inv, "--yes", "--playbook", str(all_at_once))
    assert r0.returncode == 0, r0.stdout + r0.stderr

    g1, g2 = hosts["gw-1"], hosts["gw-2"]
    g2.write_file(f"{STATE}/notes/before.txt", "made on 2026.9.5\n", mode=0o600, owner="openclaw:openclaw")
    doc = fleet_doc(NEW, list(hosts), instances, **ssh)
    # on gw-2 the new release also gets a Telegram channel that cannot connect: 2026.9.6 really starts there,
    # migrates the state (writes MIGRATED*.bak) and answers /readyz, then OpenClaw's live probe fails its gate
    doc["hosts"]["gw-2"]["instances"] = {"main": {
        "port": 18789, "stop_timeout": 30, "config": {"channels": {"telegram": TELEGRAM}},
        "secrets": {"TELEGRAM_BOT_TOKEN": {"env": "LAB_TELEGRAM_TOKEN"}}}}
    inv = str(inventory_writer(doc, hosts, user="lab", name="inv.yaml"))
    r = provision("plan", inv)
    assert f"switch current {OLD} -> {NEW}" in r.stdout
    assert f"each instance's state is backed up on the host (openclaw backup create, {OLD})" in r.stdout
    # gw-2 alone: back up, start 2026.9.6, fail, stop (its channel holds the stop to its 30 s), restore, start
    # 2026.9.5 again: several minutes on the loaded lab, beyond the runner's default 300 s
    r = provision("apply", inv, "--yes", "--json", timeout=1500)
    assert r.returncode == 1, r.stdout + r.stderr
    res = {h["host"]: h for h in json.loads(r.stdout)["hosts"]}
    assert res["gw-1"]["status"] == "changed" and res["gw-2"]["status"] == "failed"
    assert res["gw-2"]["revision"] == "previous (rolled back)"
    assert "channel telegram cannot connect" in res["gw-2"]["message"], res["gw-2"]
    assert "state of main put back from the backup before the switch" in res["gw-2"]["message"], res["gw-2"]

    # gw-2: the live state dir is the one from before the switch (what 2026.9.6 migrated is gone from it) ...
    assert MIGRATED not in g2.run(f"ls -a {STATE}/state").stdout
    assert g2.read_file(f"{STATE}/notes/before.txt") == b"made on 2026.9.5\n"
    assert "telegram" not in g2.read_file(f"{STATE}/openclaw.json").decode()  # its previous config
    # ... and what 2026.9.6 wrote is kept aside, whole, under the name the README gives
    aside = g2.run(f"ls -d {STATE}.ocp-failed-{NEW}-*").stdout.split()
    assert len(aside) == 1, aside
    assert MIGRATED in g2.run(f"ls -a {aside[0]}/state").stdout
    assert g2.run(f"stat -c %U {aside[0]}").stdout.strip() == "openclaw"
    # gw-1 upgraded: it ran 2026.9.6 on its state, and kept the backup made before the switch on the host
    assert MIGRATED in g1.run(f"ls -a {STATE}/state").stdout
    snaps = g1.run("ls /home/openclaw/.openclaw-provisioner/upgrades/main.*/").stdout.split()
    assert len(snaps) == 1 and snaps[0].endswith(".tar.gz"), snaps

    assert g1.run(["readlink", "/opt/openclaw/current"]).stdout.strip() == NEW
    assert f"/opt/openclaw/{NEW}/" in exec_start(g1, "openclaw-gateway-main.service")
    assert g2.run(["readlink", "/opt/openclaw/current"]).stdout.strip() == OLD
    assert f"/opt/openclaw/{OLD}/" in exec_start(g2, "openclaw-gateway-main.service")
    assert readyz(g1, 18789) == "200"
    assert readyz(g2, 18789, wait=120) == "200"  # running again, on the old release
    assert sorted(g1.run(["ls", "/opt/openclaw"]).stdout.split()) == [OLD, NEW, "current"]  # OLD kept: keep 2
