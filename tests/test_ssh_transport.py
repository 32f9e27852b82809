"""SSHTransport against real OpenSSH servers: host keys, streams, timeouts, reuse, tunnelled HTTP."""

from __future__ import annotations

import os
import socket
import stat
import subprocess
import threading
import time
import traceback
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

from provisioner.remote.command import Command
from provisioner.remote.http1 import parse_response
from provisioner.remote.known_hosts import fingerprint, known_hosts_name
from provisioner.remote.ssh import SockFactory, SSHTransport
from provisioner.remote.transport import ChannelError, CommandTimeout, ConnectError, HostKeyError, Transport
from tests.lab.harness import Lab
from tests.lab.hosts import LabHost

# the lab plugin, until tests/conftest.py loads it for every module (harmless twice)
pytest_plugins = ["tests.lab.fixtures"]
pytestmark = [pytest.mark.lab, pytest.mark.timeout(120)]


@dataclass(frozen=True)
class SshTarget:
    """One real sshd the tests may log into."""

    name: str
    address: str
    port: int
    user: str
    identity_file: str
    host_key: str  # "<type> <base64>" of the server's host key
    sock_factory: SockFactory | None

    @property
    def known_hosts_line(self) -> str:
        return f"{known_hosts_name(self.address, self.port)} {self.host_key}\n"

    def connect(self, known_hosts: str | Path, **kw: object) -> SSHTransport:
        args: dict = dict(port=self.port, user=self.user, identity_file=self.identity_file,
                          known_hosts=str(known_hosts), sock_factory=self.sock_factory, connect_timeout=10.0)
        args.update(kw)
        return SSHTransport.connect(self.name, self.address, **args)


# ---- lab hosts ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def targets(lab: Lab, ssh_hosts: list[LabHost]) -> list[SshTarget]:
    """Two real sshds with different host keys, reachable only through the lab's control namespace."""
    return [SshTarget(h.name, h.address, h.port, h.user, str(h.key_path), h.host_public_key, lab.connect_socket)
            for h in ssh_hosts[:2]]


@pytest.fixture()
def known_hosts(tmp_path: Path, targets: list[SshTarget]) -> Path:
    kh = tmp_path / "known_hosts"
    kh.write_text("".join(t.known_hosts_line for t in targets))
    return kh


@pytest.fixture()
def h1(targets: list[SshTarget], known_hosts: Path) -> Iterator[SSHTransport]:
    with targets[0].connect(known_hosts) as tr:
        yield tr


def _redirect(to: SshTarget) -> SockFactory:
    """A socket factory that reaches `to` whatever address is asked for: another server answering
    under this host's name, as after a reinstall or in a man-in-the-middle."""
    def factory(address: str, port: int, timeout: float) -> socket.socket:
        if to.sock_factory is not None:
            return to.sock_factory(to.address, to.port, timeout)
        return socket.create_connection((to.address, to.port), timeout=timeout)
    return factory


def _offered_fp(t: SshTarget) -> str:
    import base64
    return fingerprint(base64.b64decode(t.host_key.split()[1]))


# ---- host keys -------------------------------------------------------------------------------------------


def test_strict_login_with_known_key_runs_commands(h1: SSHTransport) -> None:
    assert isinstance(h1, Transport)
    r = h1.run(Command("sh", "-c", "echo out; echo err >&2; exit 3"))
    assert (r.rc, r.stdout, r.stderr) == (3, b"out\n", b"err\n")
    assert h1.run(Command("printf", "%s", "it's a $HOME `x`")).stdout == b"it's a $HOME `x`"


def test_fingerprint_matches_ssh_keygen(targets: list[SshTarget], tmp_path: Path) -> None:
    pub = tmp_path / "k.pub"
    pub.write_text(targets[0].host_key + "\n")
    out = subprocess.run(["ssh-keygen", "-l", "-E", "sha256", "-f", str(pub)], capture_output=True, text=True,
                         check=True).stdout
    assert _offered_fp(targets[0]) == out.split()[1]


def test_unknown_host_is_refused_and_known_hosts_untouched(targets: list[SshTarget], tmp_path: Path) -> None:
    kh = tmp_path / "known_hosts"
    kh.write_text(targets[1].known_hosts_line)  # knows only the other host
    with pytest.raises(HostKeyError) as ei:
        targets[0].connect(kh)
    msg = str(ei.value)
    assert "not in known_hosts" in msg and str(kh) in msg
    assert "ssh-keyscan" in msg and "accept-new" in msg
    assert _offered_fp(targets[0]) in msg
    assert kh.read_text() == targets[1].known_hosts_line


def test_missing_known_hosts_file_is_an_unknown_host(targets: list[SshTarget], tmp_path: Path) -> None:
    with pytest.raises(HostKeyError, match="not in known_hosts"):
        targets[0].connect(tmp_path / "nope")
    assert not (tmp_path / "nope").exists()


def test_changed_key_is_refused_showing_both_fingerprints(targets: list[SshTarget], tmp_path: Path) -> None:
    h1, h2 = targets
    kh = tmp_path / "known_hosts"
    kh.write_text("# fleet keys\n" + h1.known_hosts_line)
    with pytest.raises(HostKeyError) as ei:
        h1.connect(kh, sock_factory=_redirect(h2))  # h2's server answers under h1's name
    msg = str(ei.value)
    assert "CHANGED" in msg
    assert _offered_fp(h1) in msg and _offered_fp(h2) in msg  # expected and offered
    assert f"{kh} line 2" in msg


def test_hashed_known_hosts_entry_is_honoured(targets: list[SshTarget], tmp_path: Path) -> None:
    kh = tmp_path / "known_hosts"
    kh.write_text(targets[0].known_hosts_line)
    subprocess.run(["ssh-keygen", "-q", "-H", "-f", str(kh)], check=True, capture_output=True)
    assert kh.read_text().startswith("|1|")
    with targets[0].connect(kh) as tr:
        assert tr.run(Command("true")).ok


def test_known_hosts_edited_between_connects_is_read_again(targets: list[SshTarget], tmp_path: Path) -> None:
    # the parsed file is reused across connects (a fleet reads one file per host), never after an edit
    h1, h2 = targets
    kh = tmp_path / "known_hosts"
    kh.write_text(h1.known_hosts_line)
    with h1.connect(kh) as tr:
        assert tr.run(Command("true")).ok
    kh.write_text(f"{known_hosts_name(h1.address, h1.port)} {h2.host_key}\n")  # same name, another key
    with pytest.raises(HostKeyError, match="CHANGED"):
        h1.connect(kh)
    kh.write_text(h1.known_hosts_line)
    with h1.connect(kh) as tr:
        assert tr.run(Command("true")).ok


def test_handshake_offers_only_strong_algorithms_and_prefers_aead(h1: SSHTransport) -> None:
    t = h1._t
    opts = t.get_security_options()
    assert not [c for c in opts.ciphers if c.endswith("-cbc")]
    assert not [m for m in opts.digests if "sha1" in m or "md5" in m]
    assert "curve25519-sha256@libssh.org" in opts.kex[:2]  # after the post-quantum hybrid where paramiko has it
    assert not [k for k in opts.kex if k.endswith("sha1")]
    # OpenSSH 9.2 (the lab) has no mlkem768x25519 but curve25519, AES-GCM and ed25519 host keys
    assert (t.local_cipher, t.remote_cipher, t.host_key_type) == (
        "aes128-gcm@openssh.com", "aes128-gcm@openssh.com", "ssh-ed25519")


def test_non_22_port_is_looked_up_as_bracketed_address_port(h1: SSHTransport, targets: list[SshTarget],
                                                            tmp_path: Path) -> None:
    t = targets[0]
    # a second listener of the same host on another port, for this test only
    pid = h1.run(Command("sh", "-c", "/usr/sbin/sshd -D -p 2222 -o PidFile=none </dev/null >/dev/null 2>&1 "
                         "& echo $!")).text().strip()
    kh = tmp_path / "known_hosts"
    try:
        kh.write_text(f"[{t.address}]:2222 {t.host_key}\n")
        deadline = time.monotonic() + 10
        while True:
            try:
                tr = t.connect(kh, port=2222)
                break
            except ConnectError as e:
                if "refused" not in str(e) or time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        with tr:
            assert tr.run(Command("true")).ok
        subprocess.run(["ssh-keygen", "-q", "-H", "-f", str(kh)], check=True, capture_output=True)
        with t.connect(kh, port=2222) as tr:
            assert tr.run(Command("true")).ok
        kh.write_text(t.known_hosts_line)  # the port-22 entry does not vouch for port 2222, as in OpenSSH
        with pytest.raises(HostKeyError, match=rf"\[{t.address}\]:2222 is not in known_hosts"):
            t.connect(kh, port=2222)
    finally:
        h1.run(Command("kill", pid))


def test_accept_new_records_key_then_refuses_a_different_one(targets: list[SshTarget],
                                                            tmp_path: Path) -> None:
    h1, h2 = targets
    kh = tmp_path / "new" / "known_hosts"
    with h1.connect(kh, host_key_policy="accept-new") as tr:
        assert tr.run(Command("true")).ok
    assert stat.S_IMODE(kh.stat().st_mode) == 0o600
    assert kh.read_text() == h1.known_hosts_line
    with h1.connect(kh) as tr:  # the recorded key now satisfies strict checking
        assert tr.run(Command("true")).ok
    with h1.connect(kh, host_key_policy="accept-new"):
        pass
    assert kh.read_text() == h1.known_hosts_line  # known host: nothing appended
    with pytest.raises(HostKeyError) as ei:
        h1.connect(kh, host_key_policy="accept-new", sock_factory=_redirect(h2))
    assert "CHANGED" in str(ei.value) and _offered_fp(h2) in str(ei.value)
    assert kh.read_text() == h1.known_hosts_line


def test_accept_new_from_parallel_connections_records_one_line(targets: list[SshTarget],
                                                              tmp_path: Path) -> None:
    kh = tmp_path / "known_hosts"
    kh.write_text("# no newline at the end")

    def one(_: int) -> None:
        targets[0].connect(kh, host_key_policy="accept-new").close()

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(one, range(8)))
    assert kh.read_text() == "# no newline at the end\n" + targets[0].known_hosts_line


# ---- connect errors --------------------------------------------------------------------------------------


def test_refused_port_is_a_connect_error_naming_host_and_port(targets: list[SshTarget],
                                                              known_hosts: Path) -> None:
    t = targets[0]
    with pytest.raises(ConnectError) as ei:
        t.connect(known_hosts, port=2)
    assert "refused" in str(ei.value) and f"{t.address}:2" in str(ei.value)


def test_unanswered_connect_times_out_as_a_connect_error(lab: Lab, fresh_ssh_host: LabHost,
                                                          tmp_path: Path) -> None:
    h = fresh_ssh_host
    kh = tmp_path / "known_hosts"
    kh.write_text(h.known_hosts_line)
    with h.network_cut():  # cutting the network is set-up: the clock starts at the connect
        t0 = time.monotonic()
        with pytest.raises(ConnectError, match=f"timed out after 1 s connecting to {h.address}:22"):
            SSHTransport.connect(h.name, h.address, identity_file=str(h.key_path), known_hosts=str(kh),
                                 connect_timeout=1.0, sock_factory=lab.connect_socket)
        elapsed = time.monotonic() - t0
    assert 1.0 <= elapsed < 4, elapsed  # the timeout itself, not the OS's minutes-long SYN retries


def test_wrong_client_key_is_an_authentication_error(targets: list[SshTarget], known_hosts: Path,
                                                      tmp_path: Path) -> None:
    other = tmp_path / "other_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(other)], check=True)
    with pytest.raises(ConnectError) as ei:
        targets[0].connect(known_hosts, identity_file=str(other))
    assert not isinstance(ei.value, HostKeyError)
    assert "authentication failed" in str(ei.value) and f":{targets[0].port}" in str(ei.value)


# ---- commands --------------------------------------------------------------------------------------------

FIVE_MB = 5 * 1024 * 1024


def test_5mb_stdout_and_5mb_stderr_interleaved_do_not_deadlock(h1: SSHTransport) -> None:
    # 80 alternating 64 KiB writes: each stream alone overflows every pipe and window on the way
    script = ("i=0; while [ $i -lt 80 ]; do head -c 65536 /dev/zero | tr '\\0' o; "
              "head -c 65536 /dev/zero | tr '\\0' e >&2; i=$((i+1)); done")
    r = h1.run(Command("sh", "-c", script), timeout=60)
    assert r.rc == 0
    assert r.stdout == b"o" * FIVE_MB and r.stderr == b"e" * FIVE_MB


def test_5mb_stdin_is_echoed_back_on_both_streams(h1: SSHTransport) -> None:
    data = os.urandom(FIVE_MB)
    r = h1.run(Command("sh", "-c", "tee /dev/stderr"), stdin=data, timeout=60)
    assert r.rc == 0 and r.stdout == data and r.stderr == data


def test_stdin_left_unread_does_not_hang(h1: SSHTransport) -> None:
    r = h1.run(Command("sh", "-c", "exit 7"), stdin=os.urandom(FIVE_MB), timeout=30)
    assert r.rc == 7


def test_command_timeout_closes_channel_and_connection_stays_usable(h1: SSHTransport) -> None:
    t0 = time.monotonic()
    with pytest.raises(CommandTimeout, match="within 0.5 s"):
        h1.run(Command("sleep", "60"), timeout=0.5)
    elapsed = time.monotonic() - t0
    assert 0.5 <= elapsed < 10, elapsed  # far below the command's own 60 s: the timeout ended it
    assert h1.run(Command("echo", "still here")).stdout == b"still here\n"


def test_secret_on_stdin_appears_in_no_exception(targets: list[SshTarget], known_hosts: Path) -> None:
    secret = f"s3cr3t-{os.urandom(8).hex()}"
    texts: list[str] = []
    with targets[0].connect(known_hosts) as tr:
        with pytest.raises(CommandTimeout) as ei:
            tr.run(Command("sh", "-c", "read x; echo \"$x\" >&2; sleep 3"), stdin=secret.encode(),
                   timeout=0.5)
        texts.append("".join(traceback.format_exception(ei.value)))
        assert tr.run(Command("sh", "-c", "cat >&2; exit 1"), stdin=secret.encode()).rc == 1
    with targets[0].connect(known_hosts) as tr:
        # the session's sshd process dies mid-command: the connection breaks under a running command
        with pytest.raises(ChannelError) as ei2:
            tr.run(Command("sh", "-c", "read x; echo \"$x\"; kill -9 $PPID; sleep 3"), stdin=secret.encode(),
                   timeout=10)
        texts.append("".join(traceback.format_exception(ei2.value)))
        with pytest.raises(ChannelError):
            tr.run(Command("true"), stdin=secret.encode())
    for t in texts:
        assert secret not in t


def test_two_threads_share_one_transport(h1: SSHTransport) -> None:
    def worker(tag: str) -> list[bytes]:
        return [h1.run(Command("echo", f"{tag}{i}")).stdout for i in range(20)]

    with ThreadPoolExecutor(2) as pool:
        a, b = pool.map(worker, ["a", "b"])
    assert a == [f"a{i}\n".encode() for i in range(20)] and b == [f"b{i}\n".encode() for i in range(20)]


def test_eof_held_until_the_host_closed_the_channel_does_not_break_the_connection(h1: SSHTransport) -> None:
    """paramiko #1115: an EOF that reaches sshd after our CLOSE makes it drop the whole connection. Every EOF is
    held here until the host's CLOSE for its channel has been handled (2 s at most): with paramiko's own
    shutdown_write the EOF then follows our CLOSE; ours keeps the CLOSE waiting behind it."""
    t = h1._t
    send = t._send_user_message
    held: list[bool] = []

    def eof_late(m: object) -> None:
        data = m.asbytes()  # type: ignore[attr-defined]
        if data[:1] == bytes([96]):  # SSH_MSG_CHANNEL_EOF
            rid = int.from_bytes(data[1:5], "big")
            chan = next((c for c in list(t._channels.values()) if c.remote_chanid == rid), None)
            if chan is not None:  # None: the transport thread's own EOF, sent with its CLOSE
                deadline = time.monotonic() + 2
                while not chan.closed and time.monotonic() < deadline:
                    chan.status_event.wait(0.02)
                held.append(chan.closed)
        send(m)

    t._send_user_message = eof_late  # type: ignore[method-assign]
    assert h1.run(Command("sleep", "0.3")).rc == 0  # exits on its own, long after our EOF was built
    t._send_user_message = send  # type: ignore[method-assign]
    assert h1.run(Command("echo", "still connected")).stdout == b"still connected\n"
    assert held == [False]  # the host's CLOSE waited for our EOF


def _per_command_ms(tr: SSHTransport, n: int) -> tuple[float, set[bytes]]:
    seen: set[bytes] = set()
    t0 = time.perf_counter()
    for _ in range(n):
        seen.add(tr.run(Command("printenv", "SSH_CLIENT")).stdout)
    return (time.perf_counter() - t0) * 1000 / n, seen


def test_50_commands_reuse_one_connection(targets: list[SshTarget], known_hosts: Path) -> None:
    """Benchmark, not a timed test: prints per-command ms with and without TCP_NODELAY."""
    t0 = time.perf_counter()
    tr = targets[0].connect(known_hosts)
    connect_ms = (time.perf_counter() - t0) * 1000
    with tr:
        sock = tr._sock  # reaching in on purpose: only the benchmark turns Nagle back on
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
        fast, seen_fast = _per_command_ms(tr, 50)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 0)
        slow, seen_slow = _per_command_ms(tr, 50)
        # sshd reports the client's address and source port: one value over 100 commands is one connection
        seen = seen_fast | seen_slow
        assert len(seen) == 1
        assert seen.pop().split()[1] == str(tr.local_address[1]).encode()
    print(f"\nconnect {connect_ms:.1f} ms; per command over one connection: {fast:.2f} ms with TCP_NODELAY, "
          f"{slow:.2f} ms without")


# ---- http through the connection -------------------------------------------------------------------------


def test_http_get_reaches_a_server_listening_on_the_hosts_loopback(h1: SSHTransport) -> None:
    d = h1.run(Command("mktemp", "-d")).text().strip()
    h1.run(Command("sh", "-c", 'printf "ready %s" "$1" > "$2/readyz"', "sh", "ok", d))
    port = _remote_free_port(h1)
    pid = h1.run(Command("sh", "-c", 'cd "$1" && exec python3 -m http.server "$2" --bind 127.0.0.1 '
                         '>/dev/null 2>&1 </dev/null & echo $!', "sh", d, str(port))).text().strip()
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                resp = h1.http_get(port, "/readyz", timeout=5)
                break
            except ChannelError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        assert resp.status == 200 and resp.body == b"ready ok"
        assert h1.http_get(port, "/missing").status == 404
    finally:
        h1.run(Command("kill", pid))
        h1.run(Command("rm", "-rf", "--", d))


def test_http_get_on_a_closed_port_is_a_quick_channel_error(h1: SSHTransport) -> None:
    port = _remote_free_port(h1)
    t0 = time.monotonic()
    with pytest.raises(ChannelError, match="refused"):
        h1.http_get(port, "/readyz", timeout=30)
    assert time.monotonic() - t0 < 10  # refused at once, not after waiting out the 30 s timeout
    assert h1.run(Command("true")).ok  # a refused tunnel leaves the connection alone


def test_http_responses_are_parsed_whole_chunked_or_refused_when_truncated() -> None:
    ok = parse_response(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokEXTRA")
    assert (ok.status, ok.body) == (200, b"ok")
    chunked = parse_response(b"HTTP/1.1 503 x\r\nTransfer-Encoding: chunked\r\n\r\n"
                             b"3\r\nabc\r\n2;x=y\r\nde\r\n0\r\n\r\n")
    assert (chunked.status, chunked.body) == (503, b"abcde")
    assert parse_response(b"HTTP/1.0 204 No Content\r\n\r\n").body == b""
    for bad in (b"", b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nshort", b"SSH-2.0-OpenSSH\r\n\r\n",
                b"HTTP/1.1 200 OK\r\nContent-"):
        with pytest.raises(ValueError):
            parse_response(bad)


def _remote_free_port(tr: SSHTransport) -> int:
    script = "import socket; s=socket.socket(); s.bind(('127.0.0.1', 0)); print(s.getsockname()[1])"
    return int(tr.run(Command("python3", "-c", script)).text())


# ---- sftp and lifetime -----------------------------------------------------------------------------------


def test_open_sftp_shares_the_connection(h1: SSHTransport) -> None:
    d = h1.run(Command("mktemp", "-d")).text().strip()
    data = os.urandom(300_000)
    sftp = h1.open_sftp()
    try:
        with sftp.open(f"{d}/blob", "wb") as f:
            f.write(data)
    finally:
        sftp.close()
    assert h1.run(Command("cat", f"{d}/blob")).stdout == data
    h1.run(Command("rm", "-rf", "--", d))


def test_close_is_idempotent_and_later_use_is_a_channel_error(targets: list[SshTarget],
                                                              known_hosts: Path) -> None:
    tr = targets[0].connect(known_hosts)
    tr.close()
    tr.close()
    with pytest.raises(ChannelError, match="closed"):
        tr.run(Command("true"))


def test_close_while_another_thread_runs_is_a_channel_error(h1: SSHTransport, ssh_hosts: list[LabHost]) -> None:
    errors: list[BaseException] = []
    marker = f"/tmp/running-{os.urandom(6).hex()}"

    def long_command() -> None:
        try:
            h1.run(Command("sh", "-c", 'touch "$1" && exec sleep 60', "sh", marker))
        except BaseException as e:  # noqa: BLE001 - collected for the assertion below
            errors.append(e)

    th = threading.Thread(target=long_command)
    th.start()
    deadline = time.monotonic() + 60
    while not ssh_hosts[0].exists(marker):  # the command really runs on the host (h1 is ssh_hosts[0])
        assert th.is_alive() and time.monotonic() < deadline, errors
        time.sleep(0.02)
    h1.close()
    th.join(30)
    ssh_hosts[0].run(["rm", "-f", marker])
    assert not th.is_alive()
    assert len(errors) == 1 and isinstance(errors[0], ChannelError)
