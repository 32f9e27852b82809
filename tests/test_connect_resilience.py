"""Connecting without hosts: --connect-timeout bounds each attempt over the inventory's value; a refused host is
retried with backoff, each retry reported, and fails after connect_retries more attempts."""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.support.cli import Provision


def _inventory(tmp_path: Path, port: int, **ssh: object) -> str:
    (tmp_path / "known_hosts").write_text("")
    if not (tmp_path / "key").exists():  # a real key, though no connection gets as far as logging in with it
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(tmp_path / "key")], check=True)
    inv = {"version": 1,
           "defaults": {"ssh": {"port": port, "known_hosts": str(tmp_path / "known_hosts"),
                                "identity_file": str(tmp_path / "key"), **ssh},
                        "service": {"manager": "none"}},
           "hosts": {"gw": {"address": "127.0.0.1", "instances": {"main": {"port": 18789}}}}}
    path = tmp_path / "inventory.yaml"
    path.write_text(yaml.safe_dump(inv))
    return str(path)


@pytest.fixture()
def silent_port() -> Iterator[int]:
    """A port that accepts TCP connections (the kernel does, from the backlog) and never says a word of SSH."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(16)
        yield s.getsockname()[1]


@pytest.fixture()
def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])  # closed again on return: connecting is refused


def test_connect_timeout_flag_bounds_each_attempt_over_the_inventory(tmp_path: Path, silent_port: int) -> None:
    inv = _inventory(tmp_path, silent_port, connect_timeout=60, connect_retries=0)
    start = time.monotonic()
    r = Provision(tmp_path)("plan", inv, "--connect-timeout", "1")
    took = time.monotonic() - start
    assert r.returncode == 1, r.stdout + r.stderr
    assert "gw" in r.stdout + r.stderr and "handshake" in r.stdout + r.stderr, r.stdout + r.stderr
    assert took < 30, f"plan took {took:.1f} s: the inventory's 60 s, not the flag's 1 s, bounded the attempt"


def test_a_refused_host_is_retried_with_backoff_and_each_retry_reported(tmp_path: Path, closed_port: int) -> None:
    inv = _inventory(tmp_path, closed_port, connect_retries=2)
    start = time.monotonic()
    r = Provision(tmp_path)("plan", inv)
    took = time.monotonic() - start
    assert r.returncode == 1, r.stdout + r.stderr
    assert "gw: connect attempt 1 of 3 failed (connection refused" in r.stderr, r.stderr
    assert "retrying in 1 s" in r.stderr and "connect attempt 2 of 3 failed" in r.stderr and "retrying in 2 s" \
        in r.stderr, r.stderr
    assert "attempt 3 of 3" not in r.stderr  # the last failure is the host's error, not a retry
    assert took >= 3, f"{took:.1f} s: the 1 s and 2 s backoffs were not waited"
