"""The lab itself: strict host keys, private filesystems, the shared dir, systemd units, sshfs, network cuts and
cleanup after normal, interrupted and killed runs."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import paramiko
import pytest
import yaml

from tests.lab import cleanup, procs
from tests.lab.config import LabConfig
from tests.lab.harness import Lab, lock_holder
from tests.lab.hosts import LabHost

if TYPE_CHECKING:  # imported by pytest as a plugin (with assertion rewriting); don't import it first
    from tests.lab.fixtures import SshfsShare

# Loaded here too so this file runs on its own; registering the same plugin twice is a no-op.
pytest_plugins = ["tests.lab.fixtures"]
pytestmark = [pytest.mark.lab, pytest.mark.timeout(300)]

REPO = Path(__file__).resolve().parents[1]


def _ssh(lab: Lab, host: LabHost, known_hosts: Path, user: str | None = None) -> paramiko.SSHClient:
    client = paramiko.SSHClient()
    client.load_host_keys(str(known_hosts))
    client.set_missing_host_key_policy(paramiko.RejectPolicy())
    client.connect(host.address, host.port, username=user or host.user, key_filename=str(host.key_path),
                   sock=lab.connect_socket(host.address, host.port, 10), look_for_keys=False, allow_agent=False,
                   timeout=10, banner_timeout=10, auth_timeout=10)
    return client


def _exec(client: paramiko.SSHClient, command: str) -> str:
    _in, out, err = client.exec_command(command, timeout=30)
    text = out.read().decode()
    assert out.channel.recv_exit_status() == 0, err.read().decode()
    return text


# ---- SSH -------------------------------------------------------------------------------------------------

def test_strict_host_key_login(lab: Lab, ssh_hosts: list[LabHost], systemd_hosts: list[LabHost]) -> None:
    for host in [*ssh_hosts, *systemd_hosts]:
        client = _ssh(lab, host, host.known_hosts_path)
        try:
            assert _exec(client, "hostname").strip() == host.name
            transport = client.get_transport()
            assert transport is not None
            assert transport.get_remote_server_key().get_base64() == host.host_public_key.split()[1]
        finally:
            client.close()
        client = _ssh(lab, host, host.known_hosts_path, user=host.alt_user)
        try:
            assert _exec(client, "id -un; sudo -n id -u").split() == [host.alt_user, "0"]
        finally:
            client.close()


def test_unknown_or_wrong_host_key_is_refused(lab: Lab, ssh_hosts: list[LabHost], tmp_path: Path) -> None:
    a, b = ssh_hosts[0], ssh_hosts[1]
    lacking = tmp_path / "lacking"
    lacking.write_text(b.known_hosts_line)  # knows b only
    with pytest.raises(paramiko.SSHException, match="not found in known_hosts"):
        _ssh(lab, a, lacking)
    wrong = tmp_path / "wrong"
    wrong.write_text(f"{a.address} {b.host_public_key}\n")  # a's address, b's key
    with pytest.raises(paramiko.BadHostKeyException):
        _ssh(lab, a, wrong)


def test_openssh_client_from_the_control_namespace(lab: Lab, ssh_hosts: list[LabHost], tmp_path: Path) -> None:
    host = ssh_hosts[0]
    ok = subprocess.run(lab.ssh_argv(host, "hostname"), capture_output=True, text=True, timeout=30)
    assert (ok.returncode, ok.stdout.strip()) == (0, host.name), ok.stderr
    wrong = tmp_path / "known_hosts"
    wrong.write_text(f"{host.address} {ssh_hosts[1].host_public_key}\n")
    bad = subprocess.run(lab.ssh_argv(host, "-o", f"UserKnownHostsFile={wrong}", "true"), capture_output=True,
                         text=True, timeout=30)
    assert bad.returncode == 255 and "Host key verification failed" in bad.stderr
    # nothing was added to the root network namespace (never probe lab addresses from there: that
    # traffic would leave the machine through its default route)
    root_addrs = subprocess.run(["ip", "-o", "addr"], capture_output=True, text=True, check=True).stdout
    assert f" {lab.cfg.subnet}." not in root_addrs
    assert not [ln for ln in root_addrs.splitlines() if ln.split()[1].startswith(("vh", "vn", "br0"))]


# ---- filesystems -----------------------------------------------------------------------------------------

def test_files_are_private_except_in_the_shared_dir(lab: Lab, ssh_hosts: list[LabHost],
                                                    systemd_hosts: list[LabHost]) -> None:
    writer, *others = [*ssh_hosts, *systemd_hosts]
    token = uuid.uuid4().hex
    writer.write_file(f"/root/private-{token}", token, 0o600)
    writer.write_file(f"/srv/shared/{token}", token)
    assert writer.read_file(f"/root/private-{token}") == token.encode()
    for other in others:
        assert not other.exists(f"/root/private-{token}"), other.name
        assert other.read_file(f"/srv/shared/{token}") == token.encode(), other.name
    assert (lab.cfg.shared_dir / token).read_text() == token


@pytest.mark.parametrize("kind", ["ssh", "systemd"])
def test_host_without_shared_dir_and_with_read_only_bind(lab: Lab, make_host: Callable[..., LabHost],
                                                         tmp_path: Path, kind: str) -> None:
    (tmp_path / "tool").mkdir()
    (tmp_path / "tool" / "VERSION").write_text("1.2.3\n")
    (lab.cfg.shared_dir / "visible-elsewhere").write_text("x")
    host = make_host(kind, no_shared=True, bind_ro={str(tmp_path / "tool"): "/opt/openclaw"})
    assert not host.exists("/srv/shared/visible-elsewhere")
    assert host.run(["mountpoint", "-q", "/srv/shared"], check=False).returncode != 0
    assert host.read_file("/opt/openclaw/VERSION") == b"1.2.3\n"
    denied = host.run("echo no > /opt/openclaw/VERSION", check=False)
    assert denied.returncode != 0 and "Read-only file system" in denied.stderr


def test_sshfs_share_is_a_real_network_filesystem(sshfs_share: SshfsShare) -> None:
    one, two = sshfs_share.clients
    mnt = sshfs_share.mountpoint
    for c in (one, two):
        assert c.run(["findmnt", "-n", "-o", "FSTYPE", mnt]).stdout.strip() == "fuse.sshfs", c.name
    token = uuid.uuid4().hex
    one.write_file(f"{mnt}/{token}", token)
    assert two.read_file(f"{mnt}/{token}") == token.encode()
    assert sshfs_share.server.read_file(f"{sshfs_share.remote}/{token}") == token.encode()
    two.write_file(f"{mnt}/{token}.back", "back")
    assert one.read_file(f"{mnt}/{token}.back") == b"back"


# ---- systemd ---------------------------------------------------------------------------------------------

UNIT = """\
[Unit]
Description=lab smoke probe

[Service]
ExecStart=/bin/sleep infinity

[Install]
WantedBy=multi-user.target
"""


def test_systemd_unit_starts_restarts_and_is_enabled(systemd_hosts: list[LabHost]) -> None:
    host = systemd_hosts[0]
    assert host.run(["ps", "-o", "comm=", "-p", "1"]).stdout.strip() == "systemd"
    host.write_file("/etc/systemd/system/ocp-probe.service", UNIT)
    host.run(["systemctl", "daemon-reload"])
    host.run(["systemctl", "enable", "--now", "ocp-probe.service"])

    def show(prop: str) -> str:
        return host.run(["systemctl", "show", "-P", prop, "ocp-probe.service"]).stdout.strip()

    assert show("ActiveState") == "active"
    first = show("InvocationID")
    assert first
    host.run(["systemctl", "restart", "ocp-probe.service"])
    assert show("ActiveState") == "active"
    assert show("InvocationID") not in ("", first)
    assert host.run(["systemctl", "is-enabled", "ocp-probe.service"]).stdout.strip() == "enabled"
    assert "lab smoke probe" in host.run(["journalctl", "-u", "ocp-probe.service", "--no-pager"]).stdout


# ---- destructive: fresh hosts ----------------------------------------------------------------------------

@pytest.mark.destructive
def test_network_cut_and_restore(lab: Lab, fresh_ssh_host: LabHost) -> None:
    host = fresh_ssh_host
    lab.connect_socket(host.address, 22, 5).close()
    with host.network_cut():
        assert not host.network_up
        with pytest.raises(OSError):
            lab.connect_socket(host.address, 22, 1.5).close()
        assert host.run("hostname").stdout.strip() == host.name  # nsenter does not need the network
    assert host.network_up
    lab.connect_socket(host.address, 22, 5).close()


@pytest.mark.destructive
def test_fresh_systemd_host_is_its_own(lab: Lab, fresh_systemd_host: LabHost,
                                       systemd_hosts: list[LabHost]) -> None:
    host = fresh_systemd_host
    assert host.name not in {h.name for h in systemd_hosts}
    assert host.run(["systemctl", "is-enabled", "ocp-probe.service"], check=False).returncode != 0
    client = _ssh(lab, host, host.known_hosts_path)
    try:
        assert _exec(client, "cat /etc/machine-id").strip() != systemd_hosts[0].read_file(
            "/etc/machine-id").decode().strip()
    finally:
        client.close()


# ---- cleanup: a second, independent lab (own prefix and state dir) driven like a user would -------------

_N = os.environ.get("PYTEST_XDIST_WORKER", "").removeprefix("gw")  # one second lab per xdist worker
SECOND = {"OCP_LAB_PREFIX": f"ocpt{_N}-", "OCP_LAB_SUBNET": f"10.79.{_N or 0}", "OCP_LAB_DIR": f"/run/ocpt{_N}-lab"}


@pytest.fixture()
def second_lab() -> Iterator[LabConfig]:
    env = {**os.environ, **SECOND}
    old = {k: os.environ.get(k) for k in SECOND}
    os.environ.update(SECOND)
    try:
        cfg = LabConfig.from_env()
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    yield cfg
    # whatever a test left behind: never let it leak into the rest of the run
    subprocess.run([sys.executable, "-m", "tests.lab", "down"], cwd=REPO, env=env, capture_output=True,
                   timeout=120)


def _cli(cfg: LabConfig, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "tests.lab", *args], cwd=REPO, env={**os.environ, **cfg.env()},
                          capture_output=True, text=True, timeout=300)


def _assert_up(cfg: LabConfig, records: list[procs.ProcRecord], hosts: int) -> None:
    assert len(records) == 2 * hosts and all(r.alive() for r in records)
    assert cfg.ctl_ns in cleanup.leftovers(cfg).namespaces
    assert cleanup.mounts_under(cfg.state_dir), "host mounts should exist in the hosts' namespaces"


def _assert_clean(cfg: LabConfig, records: list[procs.ProcRecord], timeout: float = 5) -> None:
    left = cleanup.wait_clean(cfg, records, timeout)
    assert not left, left
    deadline = time.monotonic() + timeout
    while lock_holder(cfg) is not None and time.monotonic() < deadline:  # a reaper may still be exiting
        time.sleep(0.05)
    assert lock_holder(cfg) is None


def test_cli_up_status_down_leaves_nothing(second_lab: LabConfig) -> None:
    cfg = second_lab
    up = _cli(cfg, "up", "--ssh", "2", "--systemd", "1", "--nas")
    assert up.returncode == 0, up.stderr
    records = cleanup.recorded(cfg)
    _assert_up(cfg, records, 4)
    status = _cli(cfg, "status")
    assert status.stdout.count(" up\n") == 4, status.stdout
    down = _cli(cfg, "down")
    assert down.returncode == 0, down.stderr
    _assert_clean(cfg, records)


def test_next_run_cleans_up_a_killed_runs_leftovers(second_lab: LabConfig) -> None:
    cfg = second_lab
    # `up` exits leaving its hosts running: exactly the state a killed run leaves behind
    assert _cli(cfg, "up", "--ssh", "1", "--systemd", "1").returncode == 0
    stale = cleanup.recorded(cfg)
    _assert_up(cfg, stale, 2)
    again = _cli(cfg, "up", "--ssh", "1", "--systemd", "0")
    assert again.returncode == 0, again.stderr
    assert not [r for r in stale if r.alive()]
    assert _cli(cfg, "down").returncode == 0
    _assert_clean(cfg, stale + cleanup.recorded(cfg))


SESSION = """
import sys, time
from tests.lab.harness import Lab, lock_holder
lab = Lab().open(reaper=True)
lab.add_hosts("ssh", 1)
lab.add_hosts("systemd", 1)
print("READY", flush=True)
time.sleep(600)
"""

PYTEST_SESSION = """
import time
pytest_plugins = ["tests.lab.fixtures"]

def test_sleeps(make_host):
    make_host("ssh")
    make_host("systemd")
    print("READY", flush=True)
    time.sleep(600)
"""


def _wait_ready(proc: subprocess.Popen[str]) -> None:
    assert proc.stdout is not None
    for line in proc.stdout:
        if "READY" in line:
            return
    raise AssertionError(f"inner run exited {proc.wait()} before its lab was up")


def test_killed_run_is_cleaned_up_by_its_watchdog(second_lab: LabConfig) -> None:
    cfg = second_lab
    with subprocess.Popen([sys.executable, "-c", SESSION], cwd=REPO, env={**os.environ, **cfg.env()},
                          stdout=subprocess.PIPE, text=True) as proc:
        try:
            _wait_ready(proc)
            records = cleanup.recorded(cfg)
            _assert_up(cfg, records, 2)
        finally:
            proc.kill()  # SIGKILL: no finalizer runs; the reaper sees its pipe close
    _assert_clean(cfg, records, timeout=20)


def _sigint_as_on_a_terminal() -> None:
    # A suite started in the background (`scripts/test &`, nohup, a job runner) has SIGINT ignored, and an
    # ignored signal stays ignored across exec: Python would then never raise KeyboardInterrupt and the inner
    # run would sleep on. Ctrl-C on a terminal reaches a process whose SIGINT is at its default.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_interrupted_pytest_run_cleans_up(second_lab: LabConfig, tmp_path: Path) -> None:
    cfg = second_lab
    (tmp_path / "test_inner.py").write_text(PYTEST_SESSION)
    proc = subprocess.Popen([sys.executable, "-m", "pytest", "-q", "-s", "-p", "no:cacheprovider",
                             f"--rootdir={tmp_path}", "-c", "/dev/null", str(tmp_path / "test_inner.py")],
                            cwd=REPO, env={**os.environ, **cfg.env(), "PYTHONPATH": str(REPO)},
                            stdout=subprocess.PIPE, text=True, preexec_fn=_sigint_as_on_a_terminal)
    try:
        _wait_ready(proc)
        records = cleanup.recorded(cfg)
        _assert_up(cfg, records, 2)
        proc.send_signal(signal.SIGINT)  # like Ctrl-C: pytest tears its fixtures down
        proc.wait(60)
    finally:
        proc.kill()
        proc.wait()
    _assert_clean(cfg, records, timeout=20)


# ---- inventories -----------------------------------------------------------------------------------------

def test_inventory_writer_points_at_lab_hosts(ssh_hosts: list[LabHost],
                                              inventory_writer: Callable[..., Path]) -> None:
    from provisioner.validate import validate_file

    a, b = ssh_hosts[0], ssh_hosts[1]
    path = inventory_writer({
        "version": 1,
        "openclaw": {"version": "2026.9.6"},
        "defaults": {"ssh": {"become": True}},
        "hosts": {"gw-a": {"instances": {"main": {"port": 18789}}},
                  "gw-b": {"address": "192.0.2.99", "instances": {"main": {"port": 18789}}}},
    }, {"gw-a": a, "gw-b": b}, user=a.alt_user)
    data = yaml.safe_load(path.read_text())
    assert data["hosts"]["gw-a"]["address"] == a.address
    assert data["hosts"]["gw-b"]["address"] == "192.0.2.99"  # the given inventory wins
    assert data["defaults"]["ssh"] == {"become": True, **a.ssh_settings(a.alt_user)}
    validated = validate_file(str(path), check_configs=False)
    assert validated.ok, [str(d) for d in validated.diagnostics]


def test_a_host_namespace_gets_the_prefix_length_of_a_network_larger_than_a_24() -> None:
    # Hosts past the 139th of a /22 lab sit in another /24 than the control namespace: with eth0 set to a /24
    # they had no route back to it and never answered (a lab of 500 hosts could not come up).
    from tests.lab import netns

    tag = uuid.uuid4().hex[:6]
    bridge, host, veth = f"ocq{tag}b", f"ocq{tag}h", f"vq{tag}"
    try:
        netns.ensure_bridge(bridge)
        netns.add_host(bridge, host, veth, "10.250.1.2", 22)
        assert "inet 10.250.1.2/22 " in netns.ip("-n", host, "-o", "addr", "show", "eth0").stdout
        assert "10.250.0.0/22 dev eth0" in netns.ip("-n", host, "route").stdout
    finally:
        netns.delete(bridge, host, veth)
        netns.delete(bridge, bridge)
