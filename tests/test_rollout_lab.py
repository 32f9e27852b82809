"""Rolling rollouts across real systemd hosts: batches, a failing health gate, who runs which revision."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from provisioner.remote.scripts.probe import STATE_DIR
from tests.lab.harness import Lab
from tests.lab.hosts import LabHost
from tests.support.cli import Provision
from tests.support.lab_cli import LAB_ENV, STANDIN_PATH, install_standin, readyz

pytestmark = pytest.mark.lab

CFG = "/home/openclaw/.openclaw-main/openclaw.json"


def fleet(level: str, failing_host: str | None = None) -> dict[str, Any]:
    hosts: dict[str, Any] = {}
    for name in ("gw-1", "gw-2", "gw-3"):
        main: dict[str, Any] = {"port": 18789}
        if name == failing_host:
            main["env"] = {"STANDIN_READY": "no"}  # this host's gateway never becomes ready
        hosts[name] = {"instances": {"main": main}}
    return {
        "version": 1,
        "openclaw": {"version": "2026.9.6", "command": [STANDIN_PATH]},
        "defaults": {"instance": {"config": {"logging": {"level": level}}, "health": {"timeout": 5}}},
        "hosts": hosts,
    }


@pytest.fixture()
def three(make_host: Callable[..., LabHost]) -> dict[str, LabHost]:
    hosts = {f"gw-{i}": make_host("systemd") for i in (1, 2, 3)}
    for h in hosts.values():
        install_standin(h)
    return hosts


def test_serial_one_stops_at_the_failing_host_and_says_who_runs_what(
        three: dict[str, LabHost], lab: Lab, tmp_path: Path, inventory_writer: Callable[..., Path]) -> None:
    provision = Provision(tmp_path, lab=lab, env=LAB_ENV)
    inv = str(inventory_writer(fleet("info"), three, name="inv.yaml"))
    assert provision("apply", inv, "--yes").returncode == 0
    old = {n: h.read_file(CFG) for n, h in three.items()}
    playbook = tmp_path / "serial1.yaml"
    playbook.write_text("serial: 1\nmax_fail: 0\non_failure: stop\n")

    inv = str(inventory_writer(fleet("debug", failing_host="gw-2"), three, name="inv.yaml"))
    r = provision("apply", inv, "--yes", "--playbook", str(playbook), "--json")
    assert r.returncode == 1, r.stdout + r.stderr
    doc = json.loads(r.stdout)
    by_host = {h["host"]: h for h in doc["hosts"]}
    assert doc["batches"] == [["gw-1"], ["gw-2"], ["gw-3"]] and doc["stopped_after_batch"] == 2
    assert by_host["gw-1"]["status"] == "changed" and by_host["gw-1"]["revision"].startswith("new")
    assert by_host["gw-2"]["status"] == "failed" and by_host["gw-2"]["revision"] == "previous (rolled back)"
    assert by_host["gw-3"]["status"] == "not-reached" and by_host["gw-3"]["revision"] == "previous (not reached)"

    assert b'"level": "debug"' in three["gw-1"].read_file(CFG)
    assert three["gw-2"].read_file(CFG) == old["gw-2"]  # back on the old revision, and running it
    assert readyz(three["gw-2"], 18789) == "200"
    assert three["gw-3"].read_file(CFG) == old["gw-3"]  # untouched
    assert "lock" not in three["gw-3"].run(["ls", STATE_DIR]).stdout.split()

    # again, in the human view: gw-1 has nothing left to do, so gw-2 is the first batch now
    r = provision("apply", inv, "--yes", "--playbook", str(playbook))
    assert r.returncode == 1
    assert "Apply FAILED (rollout stopped after batch 1): 1 failed, 1 not-reached, 1 unchanged." in r.stdout
    lines = {ln.split()[1]: ln for ln in r.stdout.splitlines() if ln.startswith("  ") and ln.split()[1:2]
             and ln.split()[1].startswith("gw-")}
    assert "revision: new (inventory" in lines["gw-1"]
    assert "revision: previous (rolled back)" in lines["gw-2"] and "did not answer /readyz" in lines["gw-2"]
    assert "revision: previous (not reached)" in lines["gw-3"]


def test_rollback_policy_puts_the_whole_failed_batch_back(
        three: dict[str, LabHost], lab: Lab, tmp_path: Path, inventory_writer: Callable[..., Path]) -> None:
    provision = Provision(tmp_path, lab=lab, env=LAB_ENV)
    inv = str(inventory_writer(fleet("info"), three, name="inv.yaml"))
    assert provision("apply", inv, "--yes").returncode == 0
    old = {n: h.read_file(CFG) for n, h in three.items()}
    playbook = tmp_path / "all-or-nothing.yaml"
    playbook.write_text('serial: ["100%"]\nmax_fail: 0\non_failure: rollback\n')
    inv = str(inventory_writer(fleet("debug", failing_host="gw-3"), three, name="inv.yaml"))
    r = provision("apply", inv, "--yes", "--playbook", str(playbook), "--json")
    assert r.returncode == 1
    statuses = {h["host"]: h["status"] for h in json.loads(r.stdout)["hosts"]}
    assert statuses == {"gw-1": "rolled-back", "gw-2": "rolled-back", "gw-3": "failed"}
    assert {n: h.read_file(CFG) for n, h in three.items()} == old
    for h in three.values():
        assert readyz(h, 18789) == "200"


def test_a_playbook_error_is_located(tmp_path: Path, lab: Lab, make_host: Callable[..., LabHost],
                                     inventory_writer: Callable[..., Path]) -> None:
    provision = Provision(tmp_path, lab=lab, env=LAB_ENV)
    inv = str(inventory_writer(fleet("info"), {"gw-1": make_host("systemd"), "gw-2": make_host("systemd"),
                                               "gw-3": make_host("systemd")}))
    playbook = tmp_path / "bad.yaml"
    playbook.write_text("serial: [1, '150%']\nmax_fail: lots\n")
    r = provision("apply", inv, "--yes", "--playbook", str(playbook))
    assert r.returncode == 1
    assert f"{playbook}:1:13: error: serial.1: '150%' is not a percentage from 1% to 100%" in r.stderr
    assert f"{playbook}:2:11: error: max_fail:" in r.stderr
