"""Bastions: one SSH connection per bastion for the whole run, shared by every host behind it.

A host behind a bastion is reached over a direct-tcpip channel of the bastion's transport (as OpenSSH's
ProxyJump does), and a chain is built hop by hop: the second bastion over a channel of the first. Forty hosts
behind one bastion cost one login to it, not forty. The first host to need a bastion connects it while the others
wait on that bastion's lock; if that attempt fails, those that waited get its error instead of each trying again
(a dead bastion must not cost forty connect timeouts in a row); a later retry tries afresh.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from provisioner.inventory.hops import Hop
from provisioner.remote.sockets import SockFactory
from provisioner.remote.transport import ConnectError, TransportError


@dataclass
class _Entry:
    lock: threading.Lock = field(default_factory=threading.Lock)
    transport: Any = None  # SSHTransport
    error: TransportError | None = None
    attempts: int = 0


class Jumps:
    """The bastion transports of one run (Fleet owns one and closes it after the hosts' transports)."""

    def __init__(self, sock_factory: SockFactory | None = None) -> None:
        self.sock_factory = sock_factory
        self._lock = threading.Lock()
        self._entries: dict[tuple[Any, ...], _Entry] = {}

    def channel(self, bastions: Sequence[Hop], address: str, port: int, timeout: float, *, for_host: str) -> Any:
        """A channel from the last of `bastions` to address:port, connecting the chain as needed."""
        return self.transport(bastions, for_host=for_host).open_forward(address, port, timeout, for_host=for_host)

    def transport(self, chain: Sequence[Hop], *, for_host: str) -> Any:
        key = tuple(h.key for h in chain)
        with self._lock:
            entry = self._entries.setdefault(key, _Entry())
        seen = entry.attempts
        with entry.lock:
            if entry.transport is not None and entry.transport.is_active():
                return entry.transport
            if entry.attempts != seen and entry.error is not None:
                raise _for(entry.error, for_host)  # it failed while we waited for it
            try:
                entry.transport = self._connect(chain, for_host)
                entry.error = None
            except TransportError as e:
                entry.error = e
                raise _for(e, for_host) from None
            finally:
                entry.attempts += 1  # counted when it ends: who arrived during it saw the count before
            return entry.transport

    def _connect(self, chain: Sequence[Hop], for_host: str) -> Any:
        from provisioner.remote.ssh import SSHTransport

        hop = chain[-1]
        sock = None
        if len(chain) > 1:
            sock = self.channel(chain[:-1], hop.address, hop.port, hop.connect_timeout, for_host=hop.label)
        elif hop.proxy_command:
            sock = proxy_socket(hop)
        return SSHTransport.connect(
            hop.label, hop.address, port=hop.port, user=hop.user, identity_file=hop.identity_file,
            identity_explicit=hop.identity_explicit, known_hosts=hop.known_hosts,
            host_key_policy=hop.host_key_policy, connect_timeout=hop.connect_timeout, sock=sock,
            sock_factory=self.sock_factory, keepalive=hop.keepalive)

    def close(self) -> None:
        with self._lock:
            entries = list(self._entries.values())
            self._entries.clear()
        for e in reversed(entries):  # the inner hops of a chain first: they run over the outer ones
            if e.transport is not None:
                with contextlib.suppress(Exception):
                    e.transport.close()


def _for(e: TransportError, host: str) -> TransportError:
    """The bastion's error as the error of the host that needed it, naming the bastion."""
    if e.host == host:
        return e
    err = type(e)(host, f"via {e.host}: {e.detail}")
    if isinstance(e, ConnectError) and isinstance(err, ConnectError):
        err.retryable = e.retryable
    return err


def proxy_socket(hop: Hop, for_host: str | None = None) -> Any:
    """An ssh_config ProxyCommand's pipes as the socket to speak SSH over (paramiko runs the command)."""
    from provisioner.remote.ssh import paramiko

    assert hop.proxy_command is not None
    try:
        return paramiko.ProxyCommand(hop.proxy_command)
    except (paramiko.SSHException, OSError) as e:
        raise ConnectError(for_host or hop.label, f"ProxyCommand {hop.proxy_command!r} failed to start: {e}") \
            from None
