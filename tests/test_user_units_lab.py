"""`service.manager: systemd-user` on a real systemd host: apply puts the units in the service user's home,
makes that user's own systemd manager run (linger) and starts them there, as that user; each must answer
/readyz; a config change restarts only its unit; a re-plan is empty; status reads the user manager.

The lab's base rootfs is a debootstrap minbase, without libpam-systemd, which a user manager needs (it gives
`user@UID.service` its runtime directory): the host gets the controller's own pam_systemd.so (the same systemd
252 build), as an operator would install the package. The gateway is the stand-in (tests/support/standin-openclaw).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.lab.harness import Lab
from tests.lab.hosts import LabHost
from tests.openclaw_fixtures import OpenClawInstall
from tests.support.cli import Provision
from tests.support.lab_cli import LAB_ENV, STANDIN_PATH, install_standin, readyz

pytestmark = [pytest.mark.lab, pytest.mark.timeout(300)]

PAM_SYSTEMD = "/lib/x86_64-linux-gnu/security/pam_systemd.so"
HOME = "/home/openclaw"
UNITS = ("openclaw-gateway-main.service", "openclaw-gateway-ops.service")


def inventory(ops_level: str = "info", main_env: dict[str, str] | None = None, timeout: float = 30) -> dict[str, Any]:
    return {
        "version": 1,
        "openclaw": {"version": "2026.9.6", "command": [STANDIN_PATH]},
        "defaults": {"service": {"manager": "systemd-user", "user": "openclaw"},
                     "instance": {"health": {"timeout": timeout}}},
        "hosts": {"gw": {"instances": {"main": {"port": 18789, "env": main_env or {}},
                                       "ops": {"port": 19789, "config": {"logging": {"level": ops_level}}}}}},
    }


def user_host(make_host: Callable[..., LabHost]) -> LabHost:
    host = make_host("systemd")
    install_standin(host)
    host.write_file(PAM_SYSTEMD, Path(PAM_SYSTEMD).read_bytes())
    return host


def user_systemctl(host: LabHost, *args: str) -> str:
    """`systemctl --user` as the service user, the way the tool itself asks its manager."""
    uid = host.run(["id", "-u", "openclaw"]).stdout.strip()
    return host.run(["env", f"XDG_RUNTIME_DIR=/run/user/{uid}", "systemctl", "--user", *args], user="openclaw",
                    check=False).stdout.strip()


def invocations(host: LabHost) -> dict[str, str]:
    return {u: user_systemctl(host, "show", "-p", "InvocationID", "--value", u) for u in UNITS}


def test_apply_starts_user_units_in_the_users_own_manager_restarts_only_what_changed_and_converges(
        make_host: Callable[..., LabHost], lab: Lab, tmp_path: Path, inventory_writer: Callable[..., Path]) -> None:
    host = user_host(make_host)
    provision = Provision(tmp_path, lab=lab, env=LAB_ENV, timeout=180, forbid_traceback=True)
    inv = str(inventory_writer(inventory(), {"gw": host}, name="inv.yaml"))

    r = provision("plan", inv, "--detailed-exitcode", "--json")
    assert r.returncode == 2, r.stdout + r.stderr
    planned = {(c["action"], c["target"]) for h in json.loads(r.stdout)["hosts"] for c in h["changes"]}
    assert {("start", u) for u in UNITS} <= planned, planned

    r = provision("apply", inv, "--yes", "--json")
    assert r.returncode == 0, r.stdout + r.stderr
    res = json.loads(r.stdout)["hosts"][0]
    assert res["status"] == "changed", res
    # the units are the user's, in its home; none of root's
    for u in UNITS:
        path = f"{HOME}/.config/systemd/user/{u}"
        assert host.run(["stat", "-c", "%U", path]).stdout.strip() == "openclaw"
        assert not host.exists(f"/etc/systemd/system/{u}")
        assert host.run(["systemctl", "show", "-p", "LoadState", "--value", u]).stdout.strip() == "not-found"
    assert host.exists("/var/lib/systemd/linger/openclaw")  # the manager outlives any session, and boots
    for u in UNITS:
        assert user_systemctl(host, "is-active", u) == "active", u
        assert user_systemctl(host, "is-enabled", u) == "enabled", u
        # the gateway process runs in the user manager's tree, as the user
        pid = user_systemctl(host, "show", "-p", "MainPID", "--value", u)
        assert "/user@" in host.read_file(f"/proc/{pid}/cgroup").decode(), u
        assert host.run(["stat", "-c", "%U", f"/proc/{pid}"]).stdout.strip() == "openclaw"
    assert readyz(host, 18789) == "200" and readyz(host, 19789) == "200"

    r = provision("status", inv, "--json")
    assert r.returncode == 0, r.stdout + r.stderr
    states = {row["unit"]: (row["unit_state"], row["readyz"]) for row in json.loads(r.stdout)["instances"]}
    assert states == {u: ("active", "200") for u in UNITS}, states

    r = provision("plan", inv, "--detailed-exitcode")
    assert r.returncode == 0, r.stdout + r.stderr

    # a config change of ops restarts ops only, in the user manager, and is gated on its /readyz
    before = invocations(host)
    inv = str(inventory_writer(inventory("debug"), {"gw": host}, name="inv.yaml"))
    r = provision("plan", inv, "--detailed-exitcode", "--json")
    assert r.returncode == 2, r.stdout + r.stderr
    changes = [(c["action"], c["target"]) for h in json.loads(r.stdout)["hosts"] for c in h["changes"]
               if c["action"] != "noop"]
    assert changes == [("update", f"{HOME}/.openclaw-ops/openclaw.json"), ("restart", UNITS[1])], changes
    r = provision("apply", inv, "--yes", "--json")
    assert r.returncode == 0, r.stdout + r.stderr
    assert json.loads(r.stdout)["hosts"][0]["health"]["ops"].startswith("ready after"), r.stdout
    after = invocations(host)
    assert after[UNITS[0]] == before[UNITS[0]] and after[UNITS[1]] != before[UNITS[1]], (before, after)
    assert readyz(host, 19789) == "200"
    r = provision("plan", inv, "--detailed-exitcode")
    assert r.returncode == 0, r.stdout + r.stderr


def test_a_user_gateway_that_keeps_exiting_fails_the_gate_early_and_the_host_goes_back(
        make_host: Callable[..., LabHost], lab: Lab, tmp_path: Path, inventory_writer: Callable[..., Path]) -> None:
    host = user_host(make_host)
    provision = Provision(tmp_path, lab=lab, env=LAB_ENV, timeout=240, forbid_traceback=True)
    inv = str(inventory_writer(inventory(timeout=150), {"gw": host}, name="inv.yaml"))
    r = provision("apply", inv, "--yes")
    assert r.returncode == 0, r.stdout + r.stderr
    env_file = f"{HOME}/.openclaw-main/gateway.env"
    good_env, ops_before = host.read_file(env_file), invocations(host)[UNITS[1]]

    inv = str(inventory_writer(inventory(main_env={"STANDIN_EXIT": "3"}, timeout=150), {"gw": host}, name="inv.yaml"))
    start = time.monotonic()
    r = provision("apply", inv, "--yes", "--json")
    took = time.monotonic() - start
    assert r.returncode == 1, r.stdout + r.stderr
    res = json.loads(r.stdout)["hosts"][0]
    assert res["status"] == "failed" and res["rolled_back"], res
    assert "main will not start: the unit keeps exiting" in res["message"], res["message"]
    assert f"journalctl _SYSTEMD_USER_UNIT={UNITS[0]}" in res["message"], res["message"]
    assert took < 100, f"the user manager's crash loop was not seen: the gate waited {took:.0f} s of its 150"
    # back on its previous files, and running them again; ops was never touched
    assert host.read_file(env_file) == good_env
    assert readyz(host, 18789) == "200"
    assert user_systemctl(host, "is-active", UNITS[0]) == "active"
    assert invocations(host)[UNITS[1]] == ops_before


def test_a_user_instance_removed_from_the_inventory_is_stopped_and_its_unit_moved_aside_state_kept(
        make_host: Callable[..., LabHost], lab: Lab, tmp_path: Path, inventory_writer: Callable[..., Path]) -> None:
    host = user_host(make_host)
    provision = Provision(tmp_path, lab=lab, env=LAB_ENV, timeout=180, forbid_traceback=True)
    inv = str(inventory_writer(inventory(), {"gw": host}, name="inv.yaml"))
    r = provision("apply", inv, "--yes")
    assert r.returncode == 0, r.stdout + r.stderr
    main_before = invocations(host)[UNITS[0]]

    doc = inventory()
    del doc["hosts"]["gw"]["instances"]["ops"]
    inv = str(inventory_writer(doc, {"gw": host}, name="inv.yaml"))
    r = provision("plan", inv, "--detailed-exitcode", "--json")
    assert r.returncode == 2, r.stdout + r.stderr
    changes = [(c["action"], c["target"]) for h in json.loads(r.stdout)["hosts"] for c in h["changes"]
               if c["action"] != "noop"]
    assert changes == [("stop", UNITS[1])], changes
    r = provision("apply", inv, "--yes")
    assert r.returncode == 0, r.stdout + r.stderr

    unit_dir = f"{HOME}/.config/systemd/user"
    assert user_systemctl(host, "is-active", UNITS[1]) == "inactive"
    assert not host.exists(f"{unit_dir}/{UNITS[1]}") and host.exists(f"{unit_dir}/.ocp-prev/{UNITS[1]}")
    assert host.exists(f"{HOME}/.openclaw-ops/openclaw.json")  # its state is kept
    assert readyz(host, 19789, wait=0) != "200"
    assert invocations(host)[UNITS[0]] == main_before and readyz(host, 18789) == "200"
    r = provision("plan", inv, "--detailed-exitcode")
    assert r.returncode == 0, r.stdout + r.stderr


@pytest.mark.openclaw
@pytest.mark.timeout(1200)  # a first start of the real gateway, and removing a host holding a whole release
def test_the_real_gateway_runs_as_a_user_unit_and_answers_readyz(
        make_host: Callable[..., LabHost], lab: Lab, tmp_path: Path, inventory_writer: Callable[..., Path],
        openclaw_install: OpenClawInstall) -> None:
    """The real OpenClaw 2026.9.6, pushed from the controller's cache, as a unit of the service user's manager."""
    from provisioner.install.release import artifact

    artifact("2026.9.6", "24.21.0")  # the controller's cache, filled before the timed apply
    host = user_host(make_host)
    doc = inventory(timeout=400)
    doc["openclaw"] = {"version": "2026.9.6", "install": {"source": "push", "prefix": "/opt/openclaw"}}
    del doc["hosts"]["gw"]["instances"]["ops"]
    inv = str(inventory_writer(doc, {"gw": host}, name="inv.yaml"))
    provision = Provision(tmp_path, lab=lab, env=LAB_ENV, timeout=600, forbid_traceback=True)
    r = provision("apply", inv, "--yes", "--json")
    res = json.loads(r.stdout)["hosts"][0]
    assert r.returncode == 0, res
    print(f"real gateway as a user unit: {res['health']['main']}")
    assert res["health"]["main"].startswith("ready after"), res
    assert user_systemctl(host, "is-active", UNITS[0]) == "active"
    pid = user_systemctl(host, "show", "-p", "MainPID", "--value", UNITS[0])
    assert "/user@" in host.read_file(f"/proc/{pid}/cgroup").decode()
    assert readyz(host, 18789) == "200"
    r = provision("plan", inv, "--detailed-exitcode")
    assert r.returncode == 0, r.stdout + r.stderr
