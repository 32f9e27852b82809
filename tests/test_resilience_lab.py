"""A link cut mid-apply fails its host in seconds while the others finish; a host whose sshd comes up after the
run started is reached by a connect retry, reported as it happens (issue 18); watching the links costs the
client next to no CPU while they are idle.

Both wait on events, never on sleeps: the cut comes when the host's apply is seen blocked in `sync` (a stand-in
that announces itself through a FIFO), and the late sshd is started when the CLI reports its first failed attempt.
"""

from __future__ import annotations

import json
import resource
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from provisioner.remote.command import Command
from provisioner.remote.ssh import SSHTransport
from tests.lab.harness import Lab
from tests.lab.hosts import LabHost
from tests.support.cli import Provision

pytestmark = pytest.mark.lab

HOSTS = 10
CUT_WITHIN = 15.0  # the bound for a cut link to fail its host
FIFO = "/run/ocw-sync-reached"
# First on root's PATH over SSH: the apply's first `sync` announces itself, then never returns (the link is cut
# while the host's apply waits in it, so nothing but the dead link can end that command).
BLOCKING_SYNC = f"#!/bin/sh\necho reached > {FIFO}\nexec sleep 600\n"
PLAYBOOK = "serial: ['100%']\nmax_fail: 1\nhealth_gate: {enabled: false}\non_failure: stop\n"


@pytest.fixture(scope="module")
def fleet(lab: Lab) -> Iterator[list[LabHost]]:
    hosts = lab.add_hosts("ssh", HOSTS)
    yield hosts
    for h in hosts:
        lab.remove_host(h)


def _inventory(lab: Lab, hosts: list[LabHost], instance: str, **ssh: Any) -> dict[str, Any]:
    return {"version": 1,
            "defaults": {"ssh": {"user": "root", "identity_file": str(lab.cfg.client_key),
                                 "known_hosts": str(lab.cfg.known_hosts), "host_key_policy": "strict", **ssh},
                         "service": {"manager": "none", "user": "root"}},
            "hosts": {h.name: {"address": h.address, "instances": {instance: {"port": 18789}}} for h in hosts}}


def test_a_link_cut_mid_apply_fails_that_host_within_15_s_and_the_others_finish(
        lab: Lab, fleet: list[LabHost], tmp_path: Path) -> None:
    victim = fleet[3]
    victim.run(["mkfifo", "-m", "600", FIFO])
    victim.write_file("/usr/local/bin/sync", BLOCKING_SYNC, mode=0o755)
    inv = tmp_path / "inventory.yaml"
    inv.write_text(yaml.safe_dump(_inventory(lab, fleet, "cut")))
    (tmp_path / "playbook.yaml").write_text(PLAYBOOK)
    provision = Provision(tmp_path, lab=lab)
    proc = provision.start("apply", str(inv), "--yes", "--json-events", "--playbook", str(tmp_path / "playbook.yaml"))
    cut_at: list[float] = []

    def cut_when_reached() -> None:
        victim.run(["cat", FIFO], timeout=300)  # returns when the victim's apply is inside `sync`
        victim.cut_network()
        cut_at.append(time.monotonic())

    cutter = threading.Thread(target=cut_when_reached, daemon=True)
    cutter.start()
    try:
        report: dict[str, Any] = {}
        assert proc.stdout is not None
        for line in proc.stdout:
            event = json.loads(line)
            if event.get("type") == "result":
                report = event
                ended_at = time.monotonic()  # the run ends with the victim's failure: an upper bound for it
        result = provision.finish(proc)
        cutter.join(5)
        assert cut_at, f"the victim's apply never reached sync\n{result.stderr}"
        hosts = {h["host"]: h for h in report["hosts"]}
        message = hosts[victim.name]["message"]
        assert hosts[victim.name]["status"] == "failed", hosts[victim.name]
        assert "connection lost" in message and "stopped answering" in message, message
        assert ended_at - cut_at[0] <= CUT_WITHIN, f"failed {ended_at - cut_at[0]:.1f} s after the cut: {message}"
        others = [h for h in fleet if h is not victim]
        assert all(hosts[h.name]["status"] == "changed" for h in others), report["hosts"]
        assert all(h.exists("/root/.openclaw-cut/openclaw.json") for h in others)
        assert result.returncode == 1
    finally:
        if proc.poll() is None:
            proc.kill()
        victim.restore_network()
        victim.run(["rm", "-f", "/usr/local/bin/sync", FIFO])


def test_a_host_whose_sshd_comes_up_late_is_reached_by_a_reported_retry(
        lab: Lab, fleet: list[LabHost], tmp_path: Path) -> None:
    late = fleet[9]
    known = tmp_path / "known_hosts"
    known.write_text(f"[{late.address}]:2222 {late.host_public_key}\n")
    inv = _inventory(lab, [late], "late", port=2222, connect_retries=5, known_hosts=str(known))
    path = tmp_path / "inventory.yaml"
    path.write_text(yaml.safe_dump(inv))
    provision = Provision(tmp_path, lab=lab)
    proc = provision.start("apply", str(path), "--yes")
    pidfile = "/run/sshd-2222.pid"
    try:
        assert proc.stderr is not None
        seen = []
        for line in proc.stderr:  # nothing listens on 2222 yet: the first attempt is refused and reported
            seen.append(line)
            if "connect attempt 1 of 6 failed" in line:
                break
        assert seen and "connection refused" in seen[-1], "".join(seen)
        # sshd forks into the background once it listens: when this returns, the port answers
        late.run(["/usr/sbin/sshd", "-p", "2222", "-o", f"PidFile={pidfile}"])
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, out + "".join(seen) + err
        assert late.exists("/root/.openclaw-late/openclaw.json")
    finally:
        if proc.poll() is None:
            proc.kill()
        late.run(f"[ -f {pidfile} ] && kill \"$(cat {pidfile})\"", check=False)


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def test_idle_watched_connections_cost_the_client_next_to_no_cpu(lab: Lab, fleet: list[LabHost]) -> None:
    # A fleet's connections stay open for the whole run. paramiko's own thread polls an idle one every 0.1 s
    # and sends its keepalives itself, ~0.46 ms of client CPU per connection and second (measured: 50
    # connections, 10 s); the kernel's keepalive probes watch the link for nothing. 30 connections for 4 s:
    # ~55 ms the first way, ~2 ms the second.
    conns, idle, budget_ms = 3 * len(fleet), 4.0, 15.0
    open_ = [SSHTransport.connect(h.name, h.address, port=h.port, user=h.user, identity_file=str(h.key_path),
                                  known_hosts=str(h.known_hosts_path), sock_factory=lab.connect_socket,
                                  keepalive=3.0)
             for h in fleet for _ in range(3)]
    try:
        assert all(t.run(Command("true")).ok for t in open_)  # each logged in and used, then idle
        c0, t0 = _cpu(), time.monotonic()
        done = threading.Event()
        done.wait(idle)  # nothing happens on these connections meanwhile: what it costs is the idle cost
        used_ms = 1000 * (_cpu() - c0)
        assert time.monotonic() - t0 >= idle
        assert used_ms <= budget_ms, f"{conns} idle connections cost {used_ms:.1f} ms of CPU in {idle:g} s"
        assert all(t.is_active() for t in open_)
    finally:
        for t in open_:
            t.close()
