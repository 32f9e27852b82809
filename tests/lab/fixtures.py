"""Pytest plugin: the lab's hosts as fixtures. Load with `pytest_plugins = ["tests.lab.fixtures"]`."""

from __future__ import annotations

import itertools
import os
import subprocess
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from . import inventory
from .harness import Lab, LabError
from .hosts import Kind, LabHost

SSH_HOSTS = 3
SYSTEMD_HOSTS = 2
SSHFS_MOUNT = "/mnt/nas"
# using any of these makes a test a lab test; the fresh ones also make it destructive
LAB_FIXTURES = {"lab", "ssh_hosts", "systemd_hosts", "make_host", "fresh_ssh_host", "fresh_systemd_host",
                "sshfs_share", "inventory_writer", "lab_known_hosts", "lab_client_key"}
FRESH_FIXTURES = {"fresh_ssh_host", "fresh_systemd_host"}


def pytest_configure(config: pytest.Config) -> None:
    # registered here too, so the plugin works under --strict-markers whatever the ini file says
    config.addinivalue_line("markers", "lab: needs the lab (network namespaces, sshd, systemd-nspawn); root")
    config.addinivalue_line("markers", "destructive: gets a fresh lab host of its own")


@pytest.hookimpl(tryfirst=True)  # before `-m` deselection looks at the marks
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # `-m "not lab"` / `-m "not destructive"` then select correctly even where a mark was forgotten
    for item in items:
        used = set(getattr(item, "fixturenames", ()))
        if used & LAB_FIXTURES and item.get_closest_marker("lab") is None:
            item.add_marker(pytest.mark.lab)
        if used & FRESH_FIXTURES and item.get_closest_marker("destructive") is None:
            item.add_marker(pytest.mark.destructive)


def _fail(what: str, exc: BaseException) -> None:
    # never skip: a lab that cannot come up is a failure of the test run
    pytest.fail(f"{what}: {exc}", pytrace=False)


@pytest.fixture(scope="session")
def lab() -> Iterator[Lab]:
    """The lab of this test session (empty at first). A watchdog tears it down even if pytest is killed."""
    try:
        # another test run on this machine holds the lab: queue behind it rather than fail at once
        the_lab = Lab().open(reaper=True, lock_wait=float(os.environ.get("OCP_LAB_LOCK_WAIT", "600")))
    except (LabError, OSError, subprocess.SubprocessError) as exc:
        _fail("the lab could not come up (run scripts/lab-deps as root first)", exc)
    try:
        yield the_lab
    finally:
        the_lab.close()


def _add(lab: Lab, kind: Kind, count: int, **opts: Any) -> list[LabHost]:
    try:
        return lab.add_hosts(kind, count, **opts)
    except (LabError, OSError, subprocess.SubprocessError) as exc:
        _fail(f"could not start {count} lab {kind} host(s)", exc)
        raise  # unreachable: pytest.fail raises


@pytest.fixture(scope="session")
def ssh_hosts(lab: Lab) -> list[LabHost]:
    """SSH_HOSTS plain hosts (sshd as PID 1, no systemd), shared across the session: don't break them."""
    return _add(lab, "ssh", SSH_HOSTS)


@pytest.fixture(scope="session")
def systemd_hosts(lab: Lab) -> list[LabHost]:
    """SYSTEMD_HOSTS hosts booted with systemd (systemd-nspawn), shared across the session."""
    return _add(lab, "systemd", SYSTEMD_HOSTS)


@pytest.fixture()
def make_host(lab: Lab) -> Iterator[Callable[..., LabHost]]:
    """Factory for hosts of the calling test only: make_host(kind="ssh"|"systemd", *, bind_ro={src: dst},
    no_shared=False) -> LabHost. They are removed when the test ends."""
    made: list[LabHost] = []

    def make(kind: Kind = "ssh", *, bind_ro: Mapping[str, str] | None = None, no_shared: bool = False) -> LabHost:
        host = _add(lab, kind, 1, bind_ro=bind_ro, no_shared=no_shared)[0]
        made.append(host)
        return host

    yield make
    for host in made:
        lab.remove_host(host)


@pytest.fixture()
def fresh_ssh_host(make_host: Callable[..., LabHost]) -> LabHost:
    """A plain host of this test's own (the test is marked destructive)."""
    return make_host("ssh")


@pytest.fixture()
def fresh_systemd_host(make_host: Callable[..., LabHost]) -> LabHost:
    """A systemd host of this test's own (the test is marked destructive)."""
    return make_host("systemd")


@pytest.fixture(scope="session")
def lab_known_hosts(lab: Lab) -> Path:
    """The lab's known_hosts: every running host's key, kept current as hosts come and go."""
    return lab.cfg.known_hosts


@pytest.fixture(scope="session")
def lab_client_key(lab: Lab) -> Path:
    """The client private key (ed25519, made for this run) that root and `lab` accept on every host."""
    return lab.cfg.client_key


@dataclass(frozen=True)
class SshfsShare:
    """A real network filesystem: `server` exports `remote`, each client mounts it at `mountpoint`."""

    server: LabHost
    remote: str
    mountpoint: str
    clients: list[LabHost]


@pytest.fixture(scope="session")
def sshfs_share(lab: Lab, ssh_hosts: list[LabHost], systemd_hosts: list[LabHost]) -> SshfsShare:
    """The NAS host's export mounted with sshfs on the last plain host and the last systemd host."""
    clients = [ssh_hosts[-1], systemd_hosts[-1]]
    try:
        server = lab.nas()
        for c in clients:
            lab.mount_sshfs(c, SSHFS_MOUNT)
    except (LabError, OSError, subprocess.SubprocessError) as exc:
        _fail("could not mount the sshfs share", exc)
    return SshfsShare(server, "/export", SSHFS_MOUNT, clients)


@pytest.fixture()
def inventory_writer(lab: Lab, tmp_path: Path) -> Callable[..., Path]:
    """write(inventory: dict, hosts=None, *, user=None, name=None) -> Path of a YAML inventory in tmp_path.

    hosts: {inventory name: LabHost} | [LabHost] | None (match inventory host names to lab host names).
    Fills each matched host's `address` and defaults.ssh (user, port, identity_file, known_hosts,
    host_key_policy: strict) where the given inventory does not set them."""
    counter = itertools.count(1)

    def write(inv: Mapping[str, Any], hosts: Mapping[str, LabHost] | Sequence[LabHost] | None = None, *,
              user: str | None = None, name: str | None = None) -> Path:
        path = tmp_path / (name or f"inventory-{next(counter)}.yaml")
        return inventory.write(path, lab, inv, hosts, user=user)

    return write
