"""The TCP connection to a host's sshd: connect errors in words, TCP_NODELAY, TCP_USER_TIMEOUT from the keepalive."""

from __future__ import annotations

import errno
import socket
from collections.abc import Callable

from provisioner.remote.transport import ConnectError

SockFactory = Callable[[str, int, float], socket.socket]


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
            # Data (a keepalive at the latest) left unacknowledged this long fails the socket: a cut link
            # fails its host in seconds instead of after the kernel's ~15 minutes of retransmissions.
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT, user_timeout_ms(keepalive))
    return sock


def user_timeout_ms(keepalive: float) -> int:
    """TCP_USER_TIMEOUT for a keepalive interval: three intervals, and never below 5 s (a slow WAN link)."""
    return int(max(3 * keepalive, 5.0) * 1000)


