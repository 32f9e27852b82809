"""SSH host-key trust through the CLI: an unknown or changed host key is refused naming the host and both
fingerprints, known_hosts is left alone, and accept-new records a key once (through a hostile known_hosts path)."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from provisioner.remote.scripts.probe import STATE_DIR
from tests.lab.harness import Lab
from tests.lab.hosts import LabHost
from tests.security.support import (
    VERSION,
    both,
    executed_on_controller,
    lab_ssh,
    marker,
    operator_cli,
    tail,
    write_yaml,
)
from tests.support.cli import Provision
from tests.support.lab_cli import STANDIN_PATH

pytestmark = pytest.mark.lab


# ---- SSH trust --------------------------------------------------------------------------------------------------

HOST_NAME = "edge-gw-7"  # distinctive, so "the message names the host" means something


def key_line(pubkey: str) -> str:
    return " ".join(pubkey.split()[:2])


def openssh_fingerprint(pubkey: str, tmp: Path) -> str:
    """The SHA256 fingerprint as OpenSSH itself prints it (ssh-keygen -l), not as the tool computes it."""
    f = tmp / f"key-{uuid.uuid4().hex}.pub"
    f.write_text(key_line(pubkey) + "\n")
    out = subprocess.run(["ssh-keygen", "-l", "-E", "sha256", "-f", str(f)], capture_output=True, text=True,
                         check=True).stdout
    fp = out.split()[1]
    assert fp.startswith("SHA256:"), out
    return fp


def another_ed25519_key() -> str:
    blob = b"\0\0\0\x0bssh-ed25519" + b"\0\0\0\x20" + os.urandom(32)
    return "ssh-ed25519 " + base64.b64encode(blob).decode()


def trust_inventory(host: LabHost, known_hosts: Path, policy: str | None) -> dict[str, Any]:
    ssh = lab_ssh(host, known_hosts=str(known_hosts), connect_timeout=5)
    del ssh["host_key_policy"]
    if policy is not None:
        ssh["host_key_policy"] = policy
    return {"version": 1, "openclaw": {"version": VERSION, "command": [STANDIN_PATH]},
            "defaults": {"ssh": ssh, "service": {"manager": "none"}},
            "hosts": {HOST_NAME: {"address": host.address, "instances": {"main": {"port": 18789}}}}}


def line_with(text: str, *needles_: str) -> str | None:
    return next((line for line in text.splitlines() if all(n in line for n in needles_)), None)


def untouched(host: LabHost) -> bool:
    return not host.exists(STATE_DIR) and not host.exists("/home/openclaw")


@pytest.fixture()
def cli(lab: Lab, tmp_path: Path) -> Provision:
    return operator_cli(lab, tmp_path)


def test_an_unknown_host_key_is_refused_by_default_and_known_hosts_is_left_alone(
        make_host: Callable[..., LabHost], cli: Provision, tmp_path: Path) -> None:
    host = make_host("ssh")
    offered = openssh_fingerprint(host.host_public_key, tmp_path)
    kh = tmp_path / "known_hosts"
    kh.write_text(f"unrelated.example {another_ed25519_key()}\n")
    kh.chmod(0o600)
    before = (kh.read_bytes(), kh.stat().st_mtime_ns)
    absent = tmp_path / "never-created" / "known_hosts"
    cases = [(kh, None, ("plan", "plan-detailed", "plan-json", "apply")), (kh, "strict", ("plan",)),
             (absent, None, ("plan",))]
    for n, (known, policy, runs) in enumerate(cases):
        inv = write_yaml(tmp_path / f"unknown-{n}.yaml", trust_inventory(host, known, policy))
        for how in runs:
            args = {"plan": ("plan", inv), "plan-detailed": ("plan", inv, "--detailed-exitcode"),
                    "plan-json": ("plan", inv, "--json"), "apply": ("apply", inv, "--yes")}[how]
            r = cli(*args)
            assert r.returncode == 1, f"{how} with policy {policy}: {tail(r)}"  # SPEC: 1 error, never 0 or 2
            said = line_with(both(r), offered)
            assert said is not None, f"{how}: the offered fingerprint {offered} is not shown:\n{tail(r)}"
            assert HOST_NAME in said and host.address in said and "known_hosts" in said, said
            if how == "plan-json":
                doc = json.loads(r.stdout)
                assert doc["summary"]["hosts_failed"] == 1 and offered in doc["hosts"][0]["error"]
    assert (kh.read_bytes(), kh.stat().st_mtime_ns) == before
    assert not absent.exists() and not absent.parent.exists()
    assert untouched(host)


def test_a_changed_host_key_is_refused_showing_both_fingerprints(
        make_host: Callable[..., LabHost], cli: Provision, tmp_path: Path) -> None:
    host = make_host("ssh")
    planted = another_ed25519_key()
    expected, offered = openssh_fingerprint(planted, tmp_path), openssh_fingerprint(host.host_public_key, tmp_path)
    kh = tmp_path / "known_hosts"
    kh.write_text(f"{host.address} {planted}\n")
    before = (kh.read_bytes(), kh.stat().st_mtime_ns)
    for policy in (None, "accept-new"):  # accept-new takes unknown keys only: a changed one is refused as well
        inv = write_yaml(tmp_path / f"changed-{policy}.yaml", trust_inventory(host, kh, policy))
        for args in (("plan", inv), ("apply", inv, "--yes")):
            r = cli(*args)
            assert r.returncode == 1, f"{args[0]} with policy {policy}: {tail(r)}"
            said = line_with(both(r), expected, offered)
            assert said is not None, f"both fingerprints ({expected}, {offered}) must be shown:\n{tail(r)}"
            assert HOST_NAME in said and host.address in said, said
    assert (kh.read_bytes(), kh.stat().st_mtime_ns) == before
    assert untouched(host)


def test_accept_new_records_the_key_once_then_refuses_a_different_one(
        make_host: Callable[..., LabHost], cli: Provision, tmp_path: Path) -> None:
    host = make_host("ssh")
    # the known_hosts path itself is hostile: the tool reads and writes it as a path, never through a shell
    kh = tmp_path / f"known hosts 'q' \"d\" $(touch {marker('kh1')}) `touch {marker('kh2')}`; ü" / "known_hosts"
    inv = write_yaml(tmp_path / "accept-new.yaml", trust_inventory(host, kh, "accept-new"))
    r = cli("plan", inv)
    assert r.returncode == 0, tail(r)
    assert kh.read_text().splitlines() == [f"{host.address} {key_line(host.host_public_key)}"]
    assert kh.stat().st_mode & 0o777 == 0o600
    recorded = (kh.read_bytes(), kh.stat().st_mtime_ns)
    r = cli("plan", inv)
    assert r.returncode == 0, tail(r)
    assert (kh.read_bytes(), kh.stat().st_mtime_ns) == recorded  # known now: nothing appended
    strict = write_yaml(tmp_path / "strict.yaml", trust_inventory(host, kh, "strict"))
    assert cli("plan", strict).returncode == 0  # the recorded key is what strict checking trusts

    # the host gets a new key (sshd reads its host key for every connection)
    host.run("rm -f /etc/ssh/ssh_host_ed25519_key /etc/ssh/ssh_host_ed25519_key.pub && "
             "ssh-keygen -q -t ed25519 -N '' -f /etc/ssh/ssh_host_ed25519_key")
    new_key = key_line(host.read_file("/etc/ssh/ssh_host_ed25519_key.pub").decode())
    old_fp, new_fp = (openssh_fingerprint(host.host_public_key, tmp_path), openssh_fingerprint(new_key, tmp_path))
    assert old_fp != new_fp
    for args in (("plan", inv), ("apply", inv, "--yes")):
        r = cli(*args)
        assert r.returncode == 1, f"{args[0]}: {tail(r)}"
        said = line_with(both(r), old_fp, new_fp)
        assert said is not None and HOST_NAME in said, f"both fingerprints must be shown:\n{tail(r)}"
    assert (kh.read_bytes(), kh.stat().st_mtime_ns) == recorded
    assert untouched(host)
    assert executed_on_controller(tmp_path) == []
