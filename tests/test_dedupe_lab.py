"""The shared inbound-dedupe directory on real lab hosts: verify proves a shared store (bind and sshfs) and
names the hosts that do not share it; apply mounts an sshfs share persistently with a systemd mount unit."""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.lab.fixtures import SshfsShare
from tests.lab.harness import Lab
from tests.lab.hosts import LabHost
from tests.support.cli import Provision
from tests.support.lab_cli import LAB_ENV, STANDIN_PATH, install_standin

pytestmark = pytest.mark.lab


def dedupe_doc(d: str, names: list[str], mount: dict[str, Any] | None = None, user: str = "lab") -> dict[str, Any]:
    dedupe: dict[str, Any] = {"dir": d, "configure_gateway": False}
    if mount:
        dedupe["mount"] = mount
    return {
        "version": 1,
        "openclaw": {"version": "2026.9.6", "command": [STANDIN_PATH]},
        "defaults": {"service": {"manager": "systemd", "user": user}},
        "dedupe": dedupe,
        "hosts": {n: {"instances": {"main": {"port": 18789}}} for n in names},
    }


def verify(lab: Lab, tmp_path: Path, writer: Callable[..., Path], doc: dict[str, Any],
           hosts: dict[str, LabHost]) -> tuple[int, dict[str, Any]]:
    r = Provision(tmp_path, lab=lab, env=LAB_ENV)("dedupe", "verify", str(writer(doc, hosts)), "--json")
    return r.returncode, json.loads(r.stdout) if r.stdout.strip() else {"stderr": r.stderr}


def check(doc: dict[str, Any], name: str) -> dict[str, Any]:
    return next(c for c in doc["checks"] if c["check"] == name)


def deletion_ms(doc: dict[str, Any], hosts: dict[str, LabHost]) -> dict[str, int]:
    """host -> ms until it saw the deletion, for every host but the one that deleted."""
    c = check(doc, "deletion visible elsewhere")
    m = re.fullmatch(r"deleted on (\S+): seen on the others after at most (\d+) ms \((.*)\)", c["detail"])
    assert c["ok"] and m, c
    times = {n: int(t) for n, t in re.findall(r"(\S+) (\d+) ms", m.group(3))}
    assert sorted(times) == sorted(set(hosts) - {m.group(1)}) and int(m.group(2)) == max(times.values()), c
    return times


def test_verify_passes_on_a_bind_shared_directory(ssh_hosts: list[LabHost], lab: Lab, tmp_path: Path,
                                                  inventory_writer: Callable[..., Path]) -> None:
    d = f"/srv/shared/claims-{secrets.token_hex(4)}"
    ssh_hosts[0].run(["install", "-d", "-m", "1777", d])
    hosts = {f"gw-{i}": h for i, h in enumerate(ssh_hosts, 1)}
    rc, doc = verify(lab, tmp_path, inventory_writer, dedupe_doc(d, list(hosts)), hosts)
    assert rc == 0, doc
    assert check(doc, "one shared store")["ok"] and check(doc, "exclusive-create race")["detail"].startswith(
        "exactly one winner")
    # one filesystem seen through bind mounts: the deletion is there at the first look
    assert max(deletion_ms(doc, hosts).values()) < 500, check(doc, "deletion visible elsewhere")


def test_verify_passes_on_sshfs_and_handles_eperm_losers(sshfs_share: SshfsShare, lab: Lab, tmp_path: Path,
                                                         inventory_writer: Callable[..., Path]) -> None:
    d = f"{sshfs_share.mountpoint}/claims-{secrets.token_hex(4)}"
    sshfs_share.server.run(["install", "-d", "-m", "1777", f"{sshfs_share.remote}/{d.rsplit('/', 1)[1]}"])
    hosts = {f"gw-{i}": h for i, h in enumerate(sshfs_share.clients, 1)}
    rc, doc = verify(lab, tmp_path, inventory_writer, dedupe_doc(d, list(hosts)), hosts)
    assert rc == 0, doc
    assert check(doc, "exclusive-create race")["ok"]
    # sshfs caches directory entries for dcache_timeout=1 s (tests/lab/harness.py): seen within that, with slack
    assert max(deletion_ms(doc, hosts).values()) < 5000, check(doc, "deletion visible elsewhere")


def test_verify_fails_on_per_host_directories_naming_the_hosts(ssh_hosts: list[LabHost], lab: Lab, tmp_path: Path,
                                                               inventory_writer: Callable[..., Path]) -> None:
    d = f"/var/tmp/claims-{secrets.token_hex(4)}"
    for h in ssh_hosts:
        h.run(["install", "-d", "-m", "1777", d])
    hosts = {f"gw-{i}": h for i, h in enumerate(ssh_hosts, 1)}
    rc, doc = verify(lab, tmp_path, inventory_writer, dedupe_doc(d, list(hosts)), hosts)
    assert rc == 1
    shared = check(doc, "one shared store")
    assert not shared["ok"] and shared["hosts"] == ["gw-2", "gw-3"]
    assert "gw-2, gw-3 do not share the store with gw-1" in shared["detail"]


def test_verify_fails_on_a_host_where_the_share_is_not_mounted(
        ssh_hosts: list[LabHost], make_host: Callable[..., LabHost], lab: Lab, tmp_path: Path,
        inventory_writer: Callable[..., Path]) -> None:
    d = f"/srv/shared/claims-{secrets.token_hex(4)}"
    ssh_hosts[0].run(["install", "-d", "-m", "1777", d])
    lonely = make_host("ssh", no_shared=True)
    lonely.run(["install", "-d", "-m", "1777", d])  # the path exists there, but as a plain local directory
    hosts = {"gw-1": ssh_hosts[0], "gw-2": ssh_hosts[1], "gw-3": lonely}
    rc, doc = verify(lab, tmp_path, inventory_writer, dedupe_doc(d, list(hosts)), hosts)
    assert rc == 1
    assert check(doc, "one shared store")["hosts"] == ["gw-3"]
    # with a managed mount, the missing mount itself is named
    doc2 = dedupe_doc(d, list(hosts), mount={"type": "bind", "source": "/srv/shared"})
    rc, doc = verify(lab, tmp_path, inventory_writer, doc2, hosts)
    assert rc == 1 and "gw-3" in check(doc, "mounted")["hosts"]


def test_apply_mounts_an_sshfs_share_persistently_and_a_second_apply_changes_nothing(
        make_host: Callable[..., LabHost], lab: Lab, tmp_path: Path, inventory_writer: Callable[..., Path]) -> None:
    nas = lab.nas()
    sub = f"claims-{secrets.token_hex(4)}"
    nas.run(["install", "-d", "-m", "1777", f"/export/{sub}"])
    hosts = {"gw-1": make_host("systemd"), "gw-2": make_host("systemd")}
    for h in hosts.values():
        install_standin(h)
    d = "/var/lib/openclaw/inbound-claim"
    mount = {"type": "sshfs", "source": f"root@{nas.address}:/export/{sub}", "identity_file": "/root/.ssh/id_ed25519",
             "options": ["StrictHostKeyChecking=yes", "UserKnownHostsFile=/etc/ssh/ssh_known_hosts"]}
    inv = str(inventory_writer(dedupe_doc(d, list(hosts), mount, user="openclaw"), hosts))
    provision = Provision(tmp_path, lab=lab, env=LAB_ENV)
    r = provision("apply", inv, "--yes")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "PASS  one shared store" in r.stderr and "will NOT coordinate" in r.stderr
    unit = "var-lib-openclaw-inbound\\x2dclaim.mount"
    for h in hosts.values():
        assert h.run(["systemctl", "is-active", unit]).stdout.strip() == "active"
        assert h.run(["systemctl", "is-enabled", unit]).stdout.strip() == "enabled"
        assert "fuse.sshfs" in h.run(["findmnt", "-n", "-o", "FSTYPE", d]).stdout
    hosts["gw-1"].write_file(f"{d}/hello", "from gw-1\n")
    assert hosts["gw-2"].read_file(f"{d}/hello") == b"from gw-1\n"
    assert nas.read_file(f"/export/{sub}/hello") == b"from gw-1\n"
    assert provision("plan", inv, "--detailed-exitcode").returncode == 0
    r = provision("apply", inv, "--yes")
    assert r.returncode == 0 and "No changes" in r.stderr
