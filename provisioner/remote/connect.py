"""Open the right transport for a host and run the tool's sh scripts over it (sudo only where asked)."""

from __future__ import annotations

import os
import socket
from collections.abc import Callable

from provisioner.inventory.model import Host
from provisioner.remote.command import Command, with_sudo
from provisioner.remote.local import LocalTransport
from provisioner.remote.transport import Result, Sink, Transport, TransportError

SockFactory = Callable[[str, int, float], socket.socket]


def open_transport(host: Host, *, offline_dir: str | None = None, sock_factory: SockFactory | None = None) -> Transport:
    if offline_dir is not None:
        return LocalTransport(host.name, os.path.join(offline_dir, host.name))
    if host.connection == "local":
        assert host.root is not None
        return LocalTransport(host.name, host.root)
    from provisioner.remote.ssh import SSHTransport

    assert host.address is not None
    return SSHTransport.connect(
        host.name,
        host.address,
        port=host.ssh.port,
        user=host.ssh.user,
        identity_file=host.ssh.identity_file,
        known_hosts=host.ssh.known_hosts,
        host_key_policy=host.ssh.host_key_policy,
        connect_timeout=host.ssh.connect_timeout,
        command_timeout=host.ssh.command_timeout,
        sock_factory=sock_factory,
    )


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
    res = t.run(Command(*argv), stdin=whole(script).encode("utf-8"), timeout=timeout, sink=sink)
    if become and res.rc == 1 and not res.stdout and _SUDO_PASSWORD in res.stderr:
        raise BecomeError(t.host, f"sudo on {t.host} asks for a password and none can be given (the tool runs "
                          "sudo -n); allow the SSH user passwordless sudo (NOPASSWD) or connect as root")
    return res


def whole(script: str) -> str:
    """The script as one brace group: sh parses a compound command to its end before running any of it, so a
    script cut short (the controller killed or the connection lost while sending it) runs nothing at all,
    instead of running its first half, or a last line cut in the middle of a word."""
    return "{\n" + script.rstrip("\n") + "\n}\n"


_SUDO_PASSWORD = b"a password is required"


class BecomeError(TransportError):
    """sudo would need a password: an unattended run cannot give one."""
