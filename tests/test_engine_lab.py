"""plan and apply over real SSH onto hosts booted with real systemd (issue 4's acceptance).

The gateways here are a small stand-in (tests/support/standin-openclaw) that answers /readyz like
OpenClaw, so that each test takes seconds; the real gateway is proven in the end-to-end tests.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from provisioner.remote.scripts.probe import STATE_DIR
from tests.lab.harness import Lab
from tests.lab.hosts import LabHost
from tests.support.cli import Provision
from tests.support.lab_cli import CANARY, LAB_ENV, STANDIN_PATH, install_standin, invocation, readyz

pytestmark = pytest.mark.lab


def inventory(**overrides: Any) -> dict[str, Any]:
    inv: dict[str, Any] = {
        "version": 1,
        "openclaw": {"version": "2026.9.6", "command": [STANDIN_PATH]},
        "defaults": {"service": {"manager": "systemd", "user": "openclaw"},
                     "instance": {"health": {"timeout": 20}}},
        "hosts": {
            "gw": {"instances": {
                "main": {"port": 18789, "config": {"logging": {"level": "info"}}},
                "rescue": {"port": 19789, "config": {"gateway": {"auth": {"mode": "token"}}},
                           "secrets": {"OPENCLAW_GATEWAY_TOKEN": {"env": "RESCUE_TOKEN"}}},
            }},
        },
    }
    inv.update(overrides)
    return inv


@pytest.fixture()
def gw(make_host: Callable[..., LabHost]) -> LabHost:
    host = make_host("systemd")
    install_standin(host)
    return host


@pytest.fixture()
def provision(lab: Lab, tmp_path: Path) -> Provision:
    return Provision(tmp_path, lab=lab, env=LAB_ENV)


def test_first_plan_2_apply_0_then_nothing_to_do(gw: LabHost, provision: Provision,
                                                 inventory_writer: Callable[..., Path]) -> None:
    inv = str(inventory_writer(inventory(), {"gw": gw}))
    r = provision("plan", inv, "--detailed-exitcode")
    assert r.returncode == 2, r.stdout + r.stderr
    assert "create-user" in r.stdout and "/etc/systemd/system/openclaw-gateway-main.service" in r.stdout
    r = provision("apply", inv, "--yes")
    assert r.returncode == 0, r.stdout + r.stderr
    assert readyz(gw, 18789) == "200" and readyz(gw, 19789) == "200"
    for unit in ("openclaw-gateway-main.service", "openclaw-gateway-rescue.service"):
        state = gw.run(["systemctl", "is-enabled", unit]).stdout.strip()
        assert state == "enabled"
    ids = {u: invocation(gw, u) for u in ("openclaw-gateway-main.service", "openclaw-gateway-rescue.service")}
    r = provision("plan", inv, "--detailed-exitcode")
    assert r.returncode == 0, r.stdout
    r = provision("apply", inv, "--yes")
    assert r.returncode == 0 and "No changes" in r.stderr
    assert ids == {u: invocation(gw, u) for u in ids}


def test_a_config_change_restarts_that_instance_only(gw: LabHost, provision: Provision,
                                                     inventory_writer: Callable[..., Path]) -> None:
    inv_doc = inventory()
    inv = str(inventory_writer(inv_doc, {"gw": gw}, name="inv.yaml"))
    assert provision("apply", inv, "--yes").returncode == 0
    before = {u: invocation(gw, u) for u in ("openclaw-gateway-main.service", "openclaw-gateway-rescue.service")}
    inv_doc["hosts"]["gw"]["instances"]["rescue"]["config"]["logging"] = {"level": "debug"}
    inv = str(inventory_writer(inv_doc, {"gw": gw}, name="inv.yaml"))
    r = provision("plan", inv, "--detailed-exitcode", "--json")
    assert r.returncode == 2
    changes = [(c["action"], c["target"]) for h in json.loads(r.stdout)["hosts"] for c in h["changes"]]
    assert changes == [("update", "/home/openclaw/.openclaw-rescue/openclaw.json"),
                       ("restart", "openclaw-gateway-rescue.service")]
    r = provision("apply", inv, "--yes")
    assert r.returncode == 0, r.stdout + r.stderr
    after = {u: invocation(gw, u) for u in before}
    assert after["openclaw-gateway-main.service"] == before["openclaw-gateway-main.service"]
    assert after["openclaw-gateway-rescue.service"] != before["openclaw-gateway-rescue.service"]
    assert b'"level": "debug"' in gw.read_file("/home/openclaw/.openclaw-rescue/openclaw.json")


def test_a_hand_edit_on_the_host_shows_up_as_drift(gw: LabHost, provision: Provision,
                                                  inventory_writer: Callable[..., Path]) -> None:
    inv = str(inventory_writer(inventory(), {"gw": gw}))
    assert provision("apply", inv, "--yes").returncode == 0
    path = "/home/openclaw/.openclaw-main/openclaw.json"
    text = gw.read_file(path).decode().replace('"level": "info"', '"level": "trace"')
    gw.write_file(path, text, mode=0o644, owner="openclaw:openclaw")
    r = provision("plan", inv, "--detailed-exitcode")
    assert r.returncode == 2
    assert f"~ update      file    [main] {path}" in r.stdout
    assert "the host's file was edited since the last apply (drift)" in r.stdout
    assert "mode 0644 -> 0600" in r.stdout
    assert '-    "level": "trace"' in r.stdout and '+    "level": "info"' in r.stdout
    assert "↻ restart     service [main] openclaw-gateway-main.service" in r.stdout


def test_secret_is_only_in_the_0600_env_file_on_the_host(gw: LabHost, provision: Provision, tmp_path: Path,
                                                          inventory_writer: Callable[..., Path]) -> None:
    inv = str(inventory_writer(inventory(), {"gw": gw}))
    planfile = str(tmp_path / "plan.json")
    for args in (("plan", inv, "--out", planfile), ("plan", inv, "--json"), ("apply", planfile, "-v"),
                 ("apply", inv, "--yes", "--json"), ("status", inv)):
        r = provision(*args)
        assert r.returncode == 0, (args, r.stdout, r.stderr)  # a run that stopped early proves nothing
    env_path = "/home/openclaw/.openclaw-rescue/gateway.env"
    assert f'OPENCLAW_GATEWAY_TOKEN="{CANARY}"' in gw.read_file(env_path).decode()
    assert gw.run(["stat", "-c", "%a %U", env_path]).stdout.split() == ["600", "openclaw"]
    # grep searched everything (no unreadable or missing place: exit 0, nothing on stderr) and found one file
    found = gw.run(["grep", "-rl", "--", CANARY, "/home", "/etc", STATE_DIR], check=False)
    assert (found.returncode, found.stdout.split(), found.stderr) == (0, [env_path], ""), found
    journal = gw.run(["journalctl", "--no-pager", "-q", "-o", "cat"], check=False)
    assert journal.returncode == 0 and "openclaw-gateway-rescue" in journal.stdout, journal.stderr
    assert CANARY not in journal.stdout
    assert all(CANARY not in o for o in provision.outputs)
    assert CANARY not in Path(planfile).read_text()


def test_a_failed_health_check_leaves_the_host_on_its_previous_files(gw: LabHost, provision: Provision,
                                                                    inventory_writer: Callable[..., Path]) -> None:
    inv_doc = inventory()
    inv = str(inventory_writer(inv_doc, {"gw": gw}, name="inv.yaml"))
    assert provision("apply", inv, "--yes").returncode == 0
    paths = ["/home/openclaw/.openclaw-main/openclaw.json", "/home/openclaw/.openclaw-main/gateway.env",
             "/etc/systemd/system/openclaw-gateway-main.service"]
    old = {p: gw.read_file(p) for p in paths}
    main = inv_doc["hosts"]["gw"]["instances"]["main"]
    main["env"] = {"STANDIN_READY": "no"}  # the stand-in never becomes ready
    main["health"] = {"timeout": 4}
    main["config"]["logging"] = {"level": "debug"}
    inv = str(inventory_writer(inv_doc, {"gw": gw}, name="inv.yaml"))
    r = provision("apply", inv, "--yes")
    assert r.returncode == 1, r.stdout + r.stderr
    assert "did not answer /readyz on port 18789 within 4 s" in r.stdout
    assert "put back on its previous files" in r.stdout
    assert {p: gw.read_file(p) for p in paths} == old
    temps = gw.run(["find", "/home/openclaw/.openclaw-main", "-name", "*ocp-tmp*"], check=False)
    assert (temps.returncode, temps.stdout, temps.stderr) == (0, "", ""), temps
    assert gw.run(["systemctl", "is-active", "openclaw-gateway-main.service"]).stdout.strip() == "active"
    assert readyz(gw, 18789) == "200"
    r = provision("plan", inv, "--detailed-exitcode")
    assert r.returncode == 2  # the change is still pending, not half-applied


def test_a_sudo_user_with_become_gets_the_same_result(gw: LabHost, provision: Provision,
                                                     inventory_writer: Callable[..., Path]) -> None:
    doc = inventory()
    doc["defaults"]["ssh"] = {"user": "lab", "become": True}
    inv = str(inventory_writer(doc, {"gw": gw}, user="lab"))
    r = provision("apply", inv, "--yes")
    assert r.returncode == 0, r.stdout + r.stderr
    assert readyz(gw, 18789) == "200" and readyz(gw, 19789) == "200"
    assert gw.run(["stat", "-c", "%U %a", "/home/openclaw/.openclaw-rescue/gateway.env"]).stdout.split() == [
        "openclaw", "600"]
    assert provision("plan", inv, "--detailed-exitcode").returncode == 0


def test_sudo_that_asks_for_a_password_is_a_clear_error(gw: LabHost, provision: Provision,
                                                       inventory_writer: Callable[..., Path]) -> None:
    gw.run(["rm", "-f", "/etc/sudoers.d/lab"])
    doc = inventory()
    doc["defaults"]["ssh"] = {"user": "lab", "become": True}
    inv = str(inventory_writer(doc, {"gw": gw}, user="lab"))
    r = provision("plan", inv)
    assert r.returncode == 1
    assert "sudo on gw asks for a password" in r.stdout + r.stderr
    assert not gw.exists("/home/openclaw")


def test_an_instance_removed_from_the_inventory_is_stopped_and_disabled_its_state_kept(
        gw: LabHost, provision: Provision, inventory_writer: Callable[..., Path]) -> None:
    doc = inventory()
    inv = str(inventory_writer(doc, {"gw": gw}, name="inv.yaml"))
    assert provision("apply", inv, "--yes").returncode == 0
    del doc["hosts"]["gw"]["instances"]["rescue"]
    inv = str(inventory_writer(doc, {"gw": gw}, name="inv.yaml"))
    r = provision("plan", inv, "--detailed-exitcode")
    assert r.returncode == 2
    assert "■ stop        service openclaw-gateway-rescue.service  (instance is no longer in the inventory" in r.stdout
    main_id = invocation(gw, "openclaw-gateway-main.service")
    assert provision("apply", inv, "--yes").returncode == 0
    unit = "openclaw-gateway-rescue.service"
    assert gw.run(["systemctl", "is-active", unit], check=False).stdout.strip() in ("inactive", "unknown")
    assert not gw.exists(f"/etc/systemd/system/{unit}")
    assert gw.exists("/home/openclaw/.openclaw-rescue/openclaw.json")  # state is never deleted
    assert invocation(gw, "openclaw-gateway-main.service") == main_id
    assert provision("plan", inv, "--detailed-exitcode").returncode == 0


def test_a_gateway_that_keeps_exiting_fails_the_gate_long_before_its_timeout(
        gw: LabHost, provision: Provision, inventory_writer: Callable[..., Path]) -> None:
    doc = inventory()
    inv = str(inventory_writer(doc, {"gw": gw}, name="inv.yaml"))
    assert provision("apply", inv, "--yes").returncode == 0
    main = doc["hosts"]["gw"]["instances"]["main"]
    main["env"] = {"STANDIN_EXIT": "3"}
    main["health"] = {"timeout": 120}
    inv = str(inventory_writer(doc, {"gw": gw}, name="inv.yaml"))
    began = time.monotonic()
    r = provision("apply", inv, "--yes")
    took = time.monotonic() - began
    assert r.returncode == 1, r.stdout + r.stderr
    assert "main will not start: the unit keeps exiting" in r.stdout and "journalctl -u" in r.stdout, r.stdout
    assert took < 60, f"waited {took:.0f} s for a unit that kept exiting"
    assert readyz(gw, 18789) == "200"  # put back on its previous files, and running again
