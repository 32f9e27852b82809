"""Open the right transport for a host (through its bastions, with retries) and run the tool's sh scripts over it
(sudo only where asked)."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from provisioner.inventory.hops import Hop, route, route_of_one
from provisioner.inventory.model import Host, Inventory
from provisioner.remote.command import Command, with_sudo
from provisioner.remote.jump import Jumps, proxy_socket
from provisioner.remote.local import LocalTransport
from provisioner.remote.scripts.locks import FENCED, FENCED_RC, fence_script
from provisioner.remote.sockets import SockFactory
from provisioner.remote.sshconfig import lookup
from provisioner.remote.transport import ConnectError, HttpResponse, Result, Sink, Transport, TransportError

if TYPE_CHECKING:
    from provisioner.remote.ssh import SSHTransport

__all__ = ["Held", "LockLost", "SockFactory", "held", "open_transport", "run_script", "transport_root"]


Note = Callable[[str, str], None]  # (host, message): how a retry is reported while the run goes on
BACKOFF_CAP = 8.0


def open_transport(host: Host, *, inv: Inventory | None = None, offline_dir: str | None = None,
                   sock_factory: SockFactory | None = None, jumps: Jumps | None = None,
                   on_note: Note | None = None) -> Transport:
    """The host's transport: through its bastions (inv: where bastions named by host are found), retrying a
    host that does not answer yet (refused, timed out, unreachable) with backoff, up to ssh.connect_retries times."""
    if offline_dir is not None:
        return LocalTransport(host.name, os.path.join(offline_dir, host.name))
    if host.connection == "local":
        assert host.root is not None
        return LocalTransport(host.name, host.root)
    hops = route(inv, host, lookup) if inv is not None else [route_of_one(host)]
    own = jumps is None and len(hops) > 1
    pool = jumps if jumps is not None else Jumps(sock_factory)
    attempts = 1 + host.ssh.connect_retries
    for attempt in range(1, attempts + 1):
        try:
            t = _connect(host, hops, pool, sock_factory)
            if own:
                t.also_close(pool)
            return t
        except ConnectError as e:
            if not e.retryable or attempt == attempts:
                if own:
                    pool.close()
                raise
            delay = min(2.0 ** (attempt - 1), BACKOFF_CAP)
            if on_note is not None:
                on_note(host.name, f"connect attempt {attempt} of {attempts} failed ({e.detail}); "
                                   f"retrying in {delay:g} s")
            time.sleep(delay)  # backoff: the host is rebooting or its sshd not up yet
    raise AssertionError("unreachable")


def _connect(host: Host, hops: list[Hop], jumps: Jumps, sock_factory: SockFactory | None) -> SSHTransport:
    from provisioner.remote.ssh import SSHTransport

    target = hops[-1]
    sock = None
    if len(hops) > 1:
        sock = jumps.channel(hops[:-1], target.address, target.port, target.connect_timeout, for_host=host.name)
    elif target.proxy_command:
        sock = proxy_socket(target, host.name)
    return SSHTransport.connect(
        host.name, target.address, port=target.port, user=target.user, identity_file=target.identity_file,
        identity_explicit=target.identity_explicit, known_hosts=target.known_hosts,
        host_key_policy=target.host_key_policy, connect_timeout=target.connect_timeout,
        command_timeout=host.ssh.command_timeout, sock_factory=sock_factory, sock=sock, keepalive=target.keepalive)


def transport_root(t: Transport) -> str:
    """The directory standing for / on a stand-in host; empty for a real host."""
    return getattr(t, "root", "") or ""


def run_script(t: Transport, script: str, *, become: bool = False, timeout: float | None = None,
               sink: Sink | None = None) -> Result:
    """Send a generated sh script on stdin: its text (and any file contents in it) never reaches an argv. With a
    `sink`, the script's stdout goes there as it arrives (see Transport.run)."""
    argv: tuple[str, ...] = ("/bin/sh", "-s")
    if become:
        argv = with_sudo(argv)
    fence = t.fence if isinstance(t, Held) else ""
    res = t.run(Command(*argv), stdin=whole(fence + script).encode("utf-8"), timeout=timeout, sink=sink)
    if become and res.rc == 1 and not res.stdout and _SUDO_PASSWORD in res.stderr:
        raise BecomeError(t.host, f"sudo on {t.host} asks for a password and none can be given (the tool runs "
                          "sudo -n); allow the SSH user passwordless sudo (NOPASSWD) or connect as root")
    if fence and res.rc == FENCED_RC and (sink is not None or res.stdout.startswith(FENCED.encode())):
        raise LockLost(t.host, "this run no longer holds the host lock (another run took it over, or it was "
                               "cleared with `provision unlock --force`): it stopped before changing anything more")
    return res


class Held:
    """A host's transport while this run holds its lock: every script sent through it starts with the fence
    (remote/scripts/locks.py `fence_script`), so it runs only while the lock is still this run's."""

    def __init__(self, t: Transport, holder: str) -> None:
        self.inner = t
        self.host = t.host
        self.root = transport_root(t)
        self.fence = fence_script(holder, self.root)

    def run(self, cmd: Command, *, stdin: bytes | None = None, timeout: float | None = None,
            sink: Sink | None = None) -> Result:
        return self.inner.run(cmd, stdin=stdin, timeout=timeout, sink=sink)

    def http_get(self, port: int, path: str, *, timeout: float = 5.0) -> HttpResponse:
        return self.inner.http_get(port, path, timeout=timeout)

    def put_file(self, local_path: str, remote_path: str, *, mode: int = 0o600) -> int:
        return self.inner.put_file(local_path, remote_path, mode=mode)

    def close(self) -> None:
        pass  # a view of the run's connection: whoever opened it closes it


def held(t: Transport, holder: str) -> Transport:
    """`t` for the scripts of a run that has just taken the host lock as `holder`."""
    return Held(t.inner if isinstance(t, Held) else t, holder)


class LockLost(TransportError):
    """A script sent under the host lock found the lock no longer this run's: it did nothing."""


def whole(script: str) -> str:
    """The script as one brace group: sh parses a compound command to its end before running any of it, so a
    script cut short (the controller killed or the connection lost while sending it) runs nothing at all,
    instead of running its first half, or a last line cut in the middle of a word."""
    return "{\n" + script.rstrip("\n") + "\n}\n"


_SUDO_PASSWORD = b"a password is required"


class BecomeError(TransportError):
    """sudo would need a password: an unattended run cannot give one."""
