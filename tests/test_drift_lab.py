"""Drift versus change on a real systemd host over SSH (issue 14): the host keeps a record of what the last apply
wrote (keyed digests, root's alone), and the plan tells an inventory change from a hand edit, and both."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path

import pytest

from provisioner.remote.scripts.probe import APPLIED_PATH
from tests.lab.harness import Lab
from tests.lab.hosts import LabHost
from tests.support.cli import Provision
from tests.support.lab_cli import LAB_ENV, install_standin
from tests.test_engine_lab import inventory

pytestmark = pytest.mark.lab

MAIN_CFG = "/home/openclaw/.openclaw-main/openclaw.json"
MAIN_ENV = "/home/openclaw/.openclaw-main/gateway.env"
RESCUE_CFG = "/home/openclaw/.openclaw-rescue/openclaw.json"
MAIN_UNIT = "/etc/systemd/system/openclaw-gateway-main.service"


@pytest.fixture()
def gw(make_host: Callable[..., LabHost]) -> LabHost:
    host = make_host("systemd")
    install_standin(host)
    return host


@pytest.fixture()
def provision(lab: Lab, tmp_path: Path) -> Provision:
    return Provision(tmp_path, lab=lab, env=LAB_ENV, forbid_traceback=True)


def _edit(gw: LabHost, path: str, owner: str, extra: str) -> None:
    gw.write_file(path, gw.read_file(path).decode() + extra, mode=0o600 if path != MAIN_UNIT else 0o644, owner=owner)


def test_plan_tells_an_inventory_change_from_a_hand_edit_and_both(gw: LabHost, provision: Provision,
                                                                  inventory_writer: Callable[..., Path]) -> None:
    doc = inventory()
    inv = str(inventory_writer(doc, {"gw": gw}, name="inv.yaml"))
    assert provision("apply", inv, "--yes").returncode == 0
    record = gw.run(["stat", "-c", "%U %a", APPLIED_PATH]).stdout.split()
    assert record == ["root", "600"]
    text = gw.read_file(APPLIED_PATH).decode()
    assert f" {MAIN_ENV}\n" in text and f" {MAIN_UNIT}\n" in text
    assert hashlib.sha256(gw.read_file(MAIN_ENV)).hexdigest() not in text  # keyed digests only
    # inventory only: main's env file; the host only: main's config and unit; both: rescue's config
    doc["hosts"]["gw"]["instances"]["main"]["env"] = {"OPENCLAW_LOG_STYLE": "plain"}
    doc["hosts"]["gw"]["instances"]["rescue"]["config"]["logging"] = {"level": "debug"}
    inv = str(inventory_writer(doc, {"gw": gw}, name="inv.yaml"))
    _edit(gw, MAIN_CFG, "openclaw:openclaw", "// edited by hand\n")
    _edit(gw, RESCUE_CFG, "openclaw:openclaw", "// edited by hand\n")
    _edit(gw, MAIN_UNIT, "root:root", "# edited by hand\n")
    r = provision("plan", inv, "--detailed-exitcode", "--json")
    assert r.returncode == 2, r.stderr
    causes = {c["target"]: c["cause"] for h in json.loads(r.stdout)["hosts"] for c in h["changes"]
              if c["kind"] == "file"}
    assert causes == {MAIN_ENV: "inventory", MAIN_CFG: "drift", MAIN_UNIT: "drift", RESCUE_CFG: "both"}
    r = provision("plan", inv)
    assert f"[main] {MAIN_ENV}  (the inventory changed this file)" in r.stdout
    assert f"[main] {MAIN_CFG}  (the host's file was edited since the last apply (drift)" in r.stdout
    assert f"[rescue] {RESCUE_CFG}  (the inventory changed this file, and the host's file was also edited" in r.stdout
    # applied: the record follows, and the next edit of the inventory alone reads as such again
    assert provision("apply", inv, "--yes").returncode == 0
    doc["hosts"]["gw"]["instances"]["rescue"]["config"]["logging"] = {"level": "info"}
    inv = str(inventory_writer(doc, {"gw": gw}, name="inv.yaml"))
    r = provision("plan", inv, "--json")
    causes = {c["target"]: c["cause"] for h in json.loads(r.stdout)["hosts"] for c in h["changes"]
              if c["kind"] == "file"}
    assert causes == {RESCUE_CFG: "inventory"}
