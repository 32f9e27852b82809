"""Hosts reachable only through bastions (issue 18): planned and applied through ProxyJump in the inventory, through
an ssh_config file and through a two-hop chain; a bastion with an unknown key refused; agent-only keys.

The lab: bastion b1 is on the control network and on inner network 1; b2 is on inner networks 1 and 2; host t1
is on inner network 1 only, t2 on inner network 2 only. The controller has no route to either inner network.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.lab.harness import Lab
from tests.lab.hosts import LabHost
from tests.support.cli import Provision

pytestmark = pytest.mark.lab

INNER_1 = "10.102.0"  # the brief's inner subnet for this lab
INNER_2 = "10.102.1"


@dataclass(frozen=True)
class Bastions:
    b1: LabHost  # control network + inner 1
    b1_inner: str
    b2: LabHost  # inner 1 + inner 2
    t1: LabHost  # inner 1 only
    t2: LabHost  # inner 2 only


@pytest.fixture(scope="module")
def net(lab: Lab) -> Iterator[Bastions]:
    inner1 = lab.add_network("in1", INNER_1)
    inner2 = lab.add_network("in2", INNER_2)
    b1 = lab.add_hosts("ssh", 1)[0]
    b1_inner = lab.attach(b1, inner1)
    b2, t1 = lab.add_hosts("ssh", 2, network=inner1)
    lab.attach(b2, inner2)
    t2 = lab.add_hosts("ssh", 1, network=inner2)[0]
    yield Bastions(b1, b1_inner, b2, t1, t2)
    for h in (t2, t1, b2, b1):
        lab.remove_host(h)


def _inventory(hosts: dict[str, dict[str, Any]], ssh: dict[str, Any], instance: str) -> dict[str, Any]:
    # files only (no service manager on these sshd-only hosts), as root: the route is what is under test
    return {"version": 1, "defaults": {"ssh": ssh, "service": {"manager": "none", "user": "root"}},
            "hosts": {name: {"instances": {instance: {"port": 18789}}, **h} for name, h in hosts.items()}}


def _write(tmp_path: Path, inv: dict[str, Any], name: str = "inventory.yaml") -> str:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(inv, sort_keys=False))
    return str(path)


def _lab_ssh(lab: Lab) -> dict[str, Any]:
    return {"user": "root", "identity_file": str(lab.cfg.client_key), "known_hosts": str(lab.cfg.known_hosts),
            "host_key_policy": "strict"}


def _plan_apply_converge(provision: Provision, inv: str, host: LabHost, instance: str) -> None:
    r = provision("plan", inv, "--detailed-exitcode")
    assert r.returncode == 2, r.stdout + r.stderr
    r = provision("apply", inv, "--yes")
    assert r.returncode == 0, r.stdout + r.stderr
    assert host.exists(f"/root/.openclaw-{instance}/openclaw.json")
    r = provision("plan", inv, "--detailed-exitcode")
    assert r.returncode == 0, r.stdout + r.stderr


def test_the_controller_cannot_reach_the_inner_networks_directly(lab: Lab, net: Bastions) -> None:
    for target in (net.t1, net.t2):
        with pytest.raises(OSError):
            lab.connect_socket(target.address, 22, timeout=3).close()
    lab.connect_socket(net.b1.address, 22, timeout=10).close()  # while the bastion itself answers


def test_proxy_jump_in_the_inventory_plans_and_applies_through_an_inventory_bastion(
        lab: Lab, net: Bastions, tmp_path: Path) -> None:
    inv = _inventory({"bastion": {"address": net.b1.address},
                      "inner": {"address": net.t1.address, "ssh": {"proxy_jump": "bastion"}}},
                     _lab_ssh(lab), "viajump")
    inv["hosts"]["bastion"]["instances"] = {}
    _plan_apply_converge(Provision(tmp_path, lab=lab), _write(tmp_path, inv), net.t1, "viajump")


def test_a_two_hop_chain_of_address_bastions_plans_and_applies(lab: Lab, net: Bastions, tmp_path: Path) -> None:
    chain = f"root@{net.b1.address}:22,root@{net.b2.address}"
    inv = _inventory({"deep": {"address": net.t2.address, "ssh": {"proxy_jump": chain}}}, _lab_ssh(lab), "chain")
    _plan_apply_converge(Provision(tmp_path, lab=lab), _write(tmp_path, inv), net.t2, "chain")


def test_proxy_jump_from_an_ssh_config_file_plans_and_applies(lab: Lab, net: Bastions, tmp_path: Path) -> None:
    config = tmp_path / "ssh_config"
    config.write_text(f"Host inner-alias\n    HostName {net.t1.address}\n    ProxyJump jump-alias\n"
                      f"Host jump-alias\n    HostName {net.b1.address}\n"
                      f"Host *\n    User root\n    IdentityFile {lab.cfg.client_key}\n")
    # no user, no identity_file, no address of its own: all of it comes from the config file
    ssh = {"config_file": str(config), "known_hosts": str(lab.cfg.known_hosts), "host_key_policy": "strict"}
    inv = _inventory({"inner": {"address": "inner-alias"}}, ssh, "viaconfig")
    _plan_apply_converge(Provision(tmp_path, lab=lab, env={"SSH_AUTH_SOCK": None}), _write(tmp_path, inv), net.t1,
                         "viaconfig")


def test_a_bastion_with_an_unknown_host_key_is_refused_naming_the_bastion(
        lab: Lab, net: Bastions, tmp_path: Path) -> None:
    known = tmp_path / "known_hosts"
    lines = lab.cfg.known_hosts.read_text().splitlines(keepends=True)
    known.write_text("".join(line for line in lines if not line.startswith(f"{net.b1.address},")))
    assert any(line.startswith(f"{net.t1.address},") for line in known.read_text().splitlines())
    ssh = {**_lab_ssh(lab), "known_hosts": str(known)}
    inv = _inventory({"inner": {"address": net.t1.address, "ssh": {"proxy_jump": f"root@{net.b1.address}"}}},
                     ssh, "refused")
    r = Provision(tmp_path, lab=lab)("plan", _write(tmp_path, inv))
    assert r.returncode == 1, r.stdout + r.stderr
    out = r.stdout + r.stderr
    assert f"via bastion root@{net.b1.address}" in out and "is not in known_hosts" in out, out
    assert not net.t1.exists("/root/.openclaw-refused")


@pytest.fixture()
def agent(tmp_path: Path, lab: Lab) -> Iterator[str]:
    """A real ssh-agent holding the lab's client key; yields its socket."""
    sock = str(tmp_path / "agent.sock")
    # without -D the agent forks and its parent exits once the socket is listening: that exit is the event
    out = subprocess.run(["ssh-agent", "-s", "-a", sock], check=True, capture_output=True, text=True).stdout
    pid = int(out.split("SSH_AGENT_PID=", 1)[1].split(";", 1)[0])
    try:
        subprocess.run(["ssh-add", "-q", str(lab.cfg.client_key)], env={**os.environ, "SSH_AUTH_SOCK": sock},
                       check=True, capture_output=True)
        yield sock
    finally:
        os.kill(pid, signal.SIGTERM)


def test_agent_only_keys_log_in_to_the_bastion_and_the_host(lab: Lab, net: Bastions, tmp_path: Path,
                                                             agent: str) -> None:
    home = tmp_path / "home"  # no ~/.ssh/id_ed25519 to fall back on: only the agent holds a key
    home.mkdir()
    ssh = {"user": "root", "known_hosts": str(lab.cfg.known_hosts), "host_key_policy": "strict"}
    inv = _write(tmp_path, _inventory(
        {"inner": {"address": net.t1.address, "ssh": {"proxy_jump": f"root@{net.b1.address}"}}}, ssh, "agent"))
    provision = Provision(tmp_path, lab=lab, env={"SSH_AUTH_SOCK": agent, "HOME": str(home)})
    _plan_apply_converge(provision, inv, net.t1, "agent")
    r = Provision(tmp_path, lab=lab, env={"SSH_AUTH_SOCK": None, "HOME": str(home)})("plan", inv)
    assert r.returncode == 1 and "no key to log in with" in r.stdout + r.stderr, r.stdout + r.stderr


def test_proxy_command_from_an_ssh_config_file_plans_and_applies(lab: Lab, net: Bastions, tmp_path: Path) -> None:
    config = tmp_path / "ssh_config"
    # OpenSSH's own client as the pipe to the host, through the bastion (the lab's config knows its key)
    config.write_text(f"Host {net.t1.address}\n    ProxyCommand ssh -F {lab.cfg.ssh_config} -W %h:%p {net.b1.name}\n")
    ssh = {**_lab_ssh(lab), "config_file": str(config)}
    inv = _inventory({"inner": {"address": net.t1.address}}, ssh, "viacommand")
    _plan_apply_converge(Provision(tmp_path, lab=lab), _write(tmp_path, inv), net.t1, "viacommand")


CUT_WITHIN = 15.0  # issue 18's bound for a cut link, behind a bastion too
FIFO = "/run/ocp-sync-reached"


def test_a_link_cut_behind_the_bastion_fails_the_host_within_15_s(lab: Lab, net: Bastions, tmp_path: Path) -> None:
    # the host's apply blocks in a `sync` that announces itself; then the host's only link (to the bastion) goes
    # down while the controller's link to the bastion stays up: no socket of ours sees the cut, only SSH can
    t1 = net.t1
    t1.run(["mkfifo", "-m", "600", FIFO])
    t1.write_file("/usr/local/bin/sync", f"#!/bin/sh\necho reached > {FIFO}\nexec sleep 600\n", mode=0o755)
    ssh = {**_lab_ssh(lab), "command_timeout": 60}  # what a cut link waited for before: far past the bound
    inv = _inventory({"inner": {"address": t1.address, "ssh": {"proxy_jump": f"root@{net.b1.address}"}}}, ssh,
                     "behind")
    provision = Provision(tmp_path, lab=lab)
    proc = provision.start("apply", _write(tmp_path, inv), "--yes", "--json")
    try:
        t1.run(["cat", FIFO], timeout=300)  # returns once the apply waits inside `sync`
        t1.cut_network()
        cut = time.monotonic()
        r = provision.finish(proc, timeout=120)
        took = time.monotonic() - cut
        host = json.loads(r.stdout)["hosts"][0]
        assert r.returncode == 1 and host["status"] == "failed", r.stdout[-2000:] + r.stderr[-2000:]
        assert "connection lost" in host["message"] and "no answer through the connection for 9 s (the link stopped " \
            "answering)" in host["message"], host["message"]
        assert took <= CUT_WITHIN, f"failed {took:.1f} s after the cut: {host['message']}"
        print(f"cut behind the bastion: failed after {took:.1f} s: {host['message']}")
    finally:
        if proc.poll() is None:
            proc.kill()
        t1.restore_network()
        t1.run(["rm", "-f", "/usr/local/bin/sync", FIFO])
