"""The TCP connection to a host's sshd: connect errors in words, TCP_NODELAY, and the kernel's keepalive with
TCP_USER_TIMEOUT from the inventory's keepalive."""

from __future__ import annotations

import contextlib
import errno
import socket
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from provisioner.remote.transport import ConnectError

if TYPE_CHECKING:
    from provisioner.remote.liveness import ReplyWatch

SockFactory = Callable[[str, int, float], socket.socket]
# How often paramiko's thread wakes up on an idle connection (see watch_idle_link)
IDLE_POLL = 5.0


def open_socket(host: str, address: str, port: int, timeout: float,
                 factory: SockFactory | None, keepalive: float = 0.0) -> socket.socket:
    where = f"{address}:{port}"
    try:
        if factory is not None:
            sock = factory(address, port, timeout)
        else:
            sock = socket.create_connection((address, port), timeout=timeout)
    except ConnectionRefusedError:
        raise ConnectError(host, f"connection refused by {where} (no sshd listening on that port?)",
                           retryable=True) from None
    except TimeoutError:
        raise ConnectError(host, f"timed out after {timeout:g} s connecting to {where}", retryable=True) from None
    except socket.gaierror as e:
        raise ConnectError(host, f"cannot resolve {address}: {e.strerror}", retryable=True) from None
    except OSError as e:
        if e.errno in (errno.EHOSTUNREACH, errno.ENETUNREACH, errno.EHOSTDOWN):
            raise ConnectError(host, f"{where} is unreachable ({e.strerror})", retryable=True) from None
        raise ConnectError(host, f"cannot connect to {where}: {e.strerror or e}", retryable=True) from None
    if sock.family in (socket.AF_INET, socket.AF_INET6):
        # paramiko never sets TCP_NODELAY; with Nagle plus the peer's delayed ACK every request/response
        # on a reused connection waits ~40 ms (47 ms per command instead of 3.4 ms, lab-bench)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if keepalive > 0:
            # The kernel probes a connection silent this long, and fails it once what it sent (a probe at the
            # latest) is unacknowledged for TCP_USER_TIMEOUT: a cut link fails its host in seconds instead of
            # after ~15 minutes of retransmissions. The kernel's probes rather than SSH keepalives: those need
            # paramiko's thread to wake up to send them, and its polling for them cost ~0.46 ms of client CPU
            # per connection and second of idling (measured on 50 lab hosts; 0.016 ms this way).
            every = keepalive_interval(keepalive)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, every)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL, every)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT, user_timeout_ms(keepalive))
    return sock


def kernel_watched(sock: object) -> bool:
    """Whether `sock` is a TCP socket whose link the kernel watches (keepalive probes, see open_socket)."""
    if not isinstance(sock, socket.socket) or sock.family not in (socket.AF_INET, socket.AF_INET6):
        return False
    try:
        return bool(sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE))
    except OSError:
        return False


def user_timeout_ms(keepalive: float) -> int:
    """TCP_USER_TIMEOUT for a keepalive interval: three intervals, and never below 5 s (a slow WAN link)."""
    return int(max(3 * keepalive, 5.0) * 1000)


def keepalive_interval(keepalive: float) -> int:
    """Whole seconds between probes, kernel or SSH (both take integers), at least 1."""
    return max(1, round(keepalive))


def watch_idle_link(t: Any, sock: Any, keepalive: float) -> ReplyWatch | None:
    """After login: where the kernel cannot watch the link, a watcher that wants answers (remote/liveness.py);
    and paramiko's idle poll slowed down.

    paramiko's thread wakes every 0.1 s on an idle connection (for its handshake timeout and its keepalives),
    ~55 us of client CPU each time, and a whole fleet's connections stay open for the run. Data wakes it at once
    whatever the poll is: it only paced SSH keepalives, which are no longer used (and close() wakes it, see
    shut_down)."""
    sock.settimeout(IDLE_POLL)
    # a bastion's channel or a ProxyCommand's pipes: no socket of ours for the kernel to probe
    if keepalive <= 0 or kernel_watched(sock):
        return None
    from provisioner.remote.liveness import ReplyWatch  # imports paramiko: only where a connection is made

    return ReplyWatch(t, keepalive_interval(keepalive), user_timeout_ms(keepalive) / 1000)


def shut_down(sock: Any) -> None:
    """Wake paramiko's thread out of its idle poll and send the FIN now, before closing: a socket closed under
    a poll stays open until that poll returns (up to IDLE_POLL)."""
    if isinstance(sock, socket.socket):
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
