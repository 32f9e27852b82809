"""The health gate and watched restarts with the real OpenClaw 2026.9.6 gateway on systemd lab hosts.

The lab has no route out, so an enabled Telegram channel with a (fake) token cannot reach its API: exactly the
broken-channel case. A channel that works is a Telegram channel whose `apiRoot` points at a stand-in Bot API on
the host itself (tests/support/fake_telegram.py). The OpenClaw install is bound read-only into each host (no
push): these tests are about the gate, not the install. Each test has hosts of its own, so they run in parallel.
"""

from __future__ import annotations

import json
import re
import select
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.lab.harness import Lab
from tests.lab.hosts import LabHost
from tests.openclaw_fixtures import OpenClawInstall
from tests.support.cli import Provision
from tests.support.lab_cli import LAB_ENV, invocation

pytestmark = [pytest.mark.lab, pytest.mark.openclaw]

OC_DIR = "/opt/openclaw-ro"
UNIT = "openclaw-gateway-main.service"
STATE = "/home/openclaw/.openclaw-main"
FILES = (f"{STATE}/openclaw.json", f"{STATE}/gateway.env", f"/etc/systemd/system/{UNIT}")
FAKE_TOKEN = "123456789:AAlabFakeTokenThatCannotConnect00"
FAKE_API = Path(__file__).parent / "support" / "fake_telegram.py"
TELEGRAM = {"enabled": True, "dmPolicy": "pairing", "groupPolicy": "allowlist",
            "botToken": {"source": "env", "provider": "default", "id": "TELEGRAM_BOT_TOKEN"}}
# one bot token per host: a token polled by two gateways is an error (the one-poller rule)
ENV = {**LAB_ENV, **{f"LAB_TELEGRAM_TOKEN_{n}": f"{FAKE_TOKEN}{n}" for n in (1, 2)}}


def doc(hosts: list[str], telegram: dict[str, Any] | None = None, **main: Any) -> dict[str, Any]:
    def inst(n: int) -> dict[str, Any]:
        out: dict[str, Any] = {"port": 18789, "stop_timeout": 30, **main}
        if telegram is not None:
            out["config"] = {"channels": {"telegram": telegram}}
            out["secrets"] = {"TELEGRAM_BOT_TOKEN": {"env": f"LAB_TELEGRAM_TOKEN_{n}"}}
        return out
    return {"version": 1, "openclaw": {"version": "2026.9.6", "command": [f"{OC_DIR}/bin/openclaw"]},
            "defaults": {"service": {"manager": "systemd", "user": "openclaw"},
                         "instance": {"bind": "loopback", "health": {"timeout": 300}}},
            "hosts": {h: {"instances": {"main": inst(n)}}
                      for n, h in enumerate(hosts, 1)}}


class Fleet:
    def __init__(self, lab: Lab, hosts: dict[str, LabHost], workdir: Path, write: Callable[..., Path]) -> None:
        self.hosts = hosts
        self.workdir = workdir
        self._write = write
        self.provision = Provision(workdir, lab=lab, env=ENV, timeout=900)

    def inventory(self, d: dict[str, Any], name: str) -> str:
        return str(self._write(d, self.hosts, name=name))

    def files(self, name: str) -> dict[str, bytes]:
        return {p: self.hosts[name].read_file(p) for p in FILES}

    def apply(self, inv: str, *args: str) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
        r = self.provision("apply", inv, "--yes", "--json", "-v", *args)
        return r, json.loads(r.stdout) if r.stdout.strip() else {}


def make_fleet(lab: Lab, make_host: Callable[..., LabHost], install: OpenClawInstall, tmp_path: Path,
               write: Callable[..., Path], n: int) -> Fleet:
    hosts = {f"gw-{i + 1}": make_host("systemd", bind_ro={str(install.dir): OC_DIR}) for i in range(n)}
    fleet = Fleet(lab, hosts, tmp_path, write)
    all_at_once = tmp_path / "all-at-once.yaml"
    all_at_once.write_text('serial: ["100%"]\n')
    r, _ = fleet.apply(fleet.inventory(doc(list(hosts)), "baseline.yaml"), "--playbook", str(all_at_once))
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr + "".join(
        f"\n--- journal of {n}:\n" + h.run(f"journalctl -u {UNIT} --no-pager | tail -40", check=False).stdout
        for n, h in hosts.items())
    return fleet


def host_result(report: dict[str, Any], host: str) -> dict[str, Any]:
    return next(h for h in report["hosts"] if h["host"] == host)


def test_a_channel_that_cannot_connect_fails_at_the_canary_named_and_rolled_back(
        lab: Lab, make_host: Callable[..., LabHost], openclaw_install: OpenClawInstall, tmp_path: Path,
        inventory_writer: Callable[..., Path]) -> None:
    fleet = make_fleet(lab, make_host, openclaw_install, tmp_path, inventory_writer, 2)
    before = {n: fleet.files(n) for n in fleet.hosts}
    running = {n: invocation(h, UNIT) for n, h in fleet.hosts.items()}
    t0 = time.monotonic()
    r, report = fleet.apply(fleet.inventory(doc(list(fleet.hosts), TELEGRAM), "broken.yaml"))  # default playbook
    took = time.monotonic() - t0
    print(f"broken-channel apply with the default playbook: {took:.0f} s")
    assert r.returncode == 1, r.stdout + r.stderr
    canary = host_result(report, "gw-1")
    assert canary["status"] == "failed" and canary["rolled_back"], canary
    assert "main: channel telegram cannot connect" in canary["message"], canary
    assert canary["failing"] == {"main": ["telegram"]}
    assert host_result(report, "gw-2")["status"] == "not-reached"
    assert "settling" not in r.stderr  # found by the live probe, not by sitting out the channel's 120 s grace
    assert FAKE_TOKEN not in r.stdout + r.stderr  # (the tokens are FAKE_TOKEN + "1" / "2")
    # the canary runs its previous files again, byte for byte; the other host was never touched
    assert fleet.files("gw-1") == before["gw-1"]
    assert fleet.files("gw-2") == before["gw-2"] and invocation(fleet.hosts["gw-2"], UNIT) == running["gw-2"]
    # putting the canary back stopped the broken gateway: watched, within its 30 s budget, and said so
    stopped = re.search(rf"gw-1: {re.escape(UNIT)}: stopped after (\d+) s of its 30 s stop budget", r.stderr)
    assert stopped and int(stopped.group(1)) <= 35, r.stderr


def test_a_channel_that_connects_passes_without_settling(
        lab: Lab, make_host: Callable[..., LabHost], openclaw_install: OpenClawInstall, tmp_path: Path,
        inventory_writer: Callable[..., Path]) -> None:
    fleet = make_fleet(lab, make_host, openclaw_install, tmp_path, inventory_writer, 2)
    for h in fleet.hosts.values():
        h.write_file("/root/fake_telegram.py", FAKE_API.read_bytes())
        h.run(["systemd-run", "--unit=fake-telegram", "python3", "/root/fake_telegram.py", "8081"])
        _wait_listening(h, 8081)
    t0 = time.monotonic()
    fine = {**TELEGRAM, "apiRoot": "http://127.0.0.1:8081"}
    r, report = fleet.apply(fleet.inventory(doc(list(fleet.hosts), fine), "fine.yaml"))  # default playbook
    took = time.monotonic() - t0
    print(f"working-channel apply with the default playbook (canary, then the rest): {took:.0f} s")
    assert r.returncode == 0, r.stdout + r.stderr
    assert report["batches"] == [["gw-1"], ["gw-2"]]
    for h in report["hosts"]:
        assert "channels telegram passed the live probe" in h["health"]["main"], h
    assert "settling" not in r.stderr  # the canary's settle time (130 s) was not paid


def test_a_broken_channel_is_named_by_status_and_its_restart_is_watched_to_its_stop_budget(
        lab: Lab, make_host: Callable[..., LabHost], openclaw_install: OpenClawInstall, tmp_path: Path,
        inventory_writer: Callable[..., Path]) -> None:
    fleet = make_fleet(lab, make_host, openclaw_install, tmp_path, inventory_writer, 1)
    tolerated = {**TELEGRAM}
    r, _ = fleet.apply(fleet.inventory(doc(["gw-1"], tolerated, health={"channels": "ignore"}), "tolerated.yaml"))
    assert r.returncode == 0, r.stdout + r.stderr
    r = fleet.provision("status", fleet.inventory(doc(["gw-1"], tolerated), "status.yaml"), "--json")
    assert r.returncode == 1, r.stdout + r.stderr
    [row] = json.loads(r.stdout)["instances"]
    assert row["channels_failing"] == ["telegram"] and not row["healthy"], row
    assert "ENETUNREACH" in row["channels"] or "fetch failed" in row["channels"], row
    # a change restarts the gateway whose channel hangs its stop: apply says so while it waits
    inv = fleet.inventory(doc(["gw-1"], {**tolerated, "name": "changed"}, health={"channels": "ignore"}), "next.yaml")
    proc = fleet.provision.start("apply", inv, "--yes", "--json", "-v")
    assert proc.stderr is not None
    seen, t_stopping = [], None
    while t_stopping is None:
        ready, _, _ = select.select([proc.stderr], [], [], 600)
        line = proc.stderr.readline() if ready else ""
        if not line:
            break
        seen.append(line)
        if re.search(rf"{re.escape(UNIT)}: stopping \(.*\), \d+ s of its 30 s stop budget", line):
            t_stopping = time.monotonic()
    assert t_stopping is not None and proc.poll() is None, "".join(seen)  # reported while the apply waits
    done = fleet.provision.finish(proc)
    assert done.returncode == 0, done.stdout + done.stderr
    stopped = re.search(rf"{re.escape(UNIT)}: stopped after (\d+) s of its 30 s stop budget", done.stderr)
    assert stopped and int(stopped.group(1)) <= 35, done.stderr
    [h] = json.loads(done.stdout)["hosts"]
    note = h["restarts"][UNIT]
    bundle = re.search(r"stability bundle: (\S+stop_shutdown_timeout\.json)", note)
    assert note.startswith("its stop reached the deadline") and bundle, note
    assert bundle.group(1).startswith(f"{STATE}/logs/stability/") and fleet.hosts["gw-1"].exists(bundle.group(1))


def _wait_listening(host: LabHost, port: int, timeout: float = 30.0) -> None:
    end = time.monotonic() + timeout
    while f":{port} " not in host.run("ss -ltnH").stdout:
        assert time.monotonic() < end, f"nothing listens on {port} on {host.name}"
        time.sleep(0.1)
