"""SSH transport: one paramiko connection per host for the run, a channel per command, strict host keys.

The host key is judged by provisioner.remote.known_hosts before logging in; http_get speaks provisioner.remote.http1.
"""

from __future__ import annotations

import io
import logging
import os
import select
import socket
import sys
import threading
import time
from types import TracebackType
from typing import Any, Literal

# paramiko.config imports `invoke` (~0.12 s, it pulls in unittest.mock) only to run `Match exec` lines of
# an OpenSSH config; ssh_config files (remote/sshconfig.py) are read without that, so make the import fail fast.
if "invoke" not in sys.modules:
    sys.modules["invoke"] = None  # type: ignore[assignment]
    import paramiko

    del sys.modules["invoke"]
else:
    import paramiko

from provisioner.remote import http1
from provisioner.remote.auth import authenticate, keys_to_offer
from provisioner.remote.channel_eof import send_eof
from provisioner.remote.command import Command
from provisioner.remote.known_hosts import HostKeyPolicy, key_types_to_prefer, known_keys, verify_host_key
from provisioner.remote.liveness import ReplyWatch, lost_reason
from provisioner.remote.offers import CIPHERS, MACS
from provisioner.remote.sockets import (
    SockFactory,  # noqa: E402  (re-exported: tests and the lab use it from here)
    open_socket,
    shut_down,
    watch_idle_link,
)
from provisioner.remote.transport import ChannelError, CommandTimeout, ConnectError, HttpResponse, Result, Sink

_READ_CHUNK = 1 << 20
# paramiko cuts every send to the peer's max packet size (32 KiB for OpenSSH) anyway
_SEND_CHUNK = 1 << 15
# window adjusts from the peer do not wake the channel's pipe, so while stdin waits for window we poll
_SEND_POLL = 0.005
# paramiko's channel pipe joins stdout and stderr in an OrPipe whose set/clear are not atomic across its two
# halves: the transport thread feeding stderr while we drain stdout can leave data buffered and the pipe
# clear (seen in CI: a 5 MB `tee /dev/stderr` stalled until its 60 s timeout). Never sleep on the pipe longer
# than this, so a lost wakeup costs at most one poll interval.
_WAKE_POLL = 0.05
_CMD_IN_MESSAGE = 160


# paramiko logs an ERROR for every refused direct-tcpip channel, which health checks cause on purpose; with
# no logging configured Python's last-resort handler would print those on stderr. paramiko logs under our
# name instead and the NullHandler keeps it quiet unless the application configures logging.
_PARAMIKO_LOG = "provisioner.remote.ssh.paramiko"
logging.getLogger("provisioner.remote.ssh").addHandler(logging.NullHandler())


class SSHTransport:
    """One authenticated SSH connection to one host; every run/http_get opens its own channel on it."""

    def __init__(self, host: str, address: str, port: int, user: str, client: paramiko.Transport,
                 sock: socket.socket, command_timeout: float, watch: ReplyWatch | None = None) -> None:
        # use SSHTransport.connect(); this only wraps an already authenticated connection
        self.host = host
        self.address = address
        self.port = port
        self.user = user
        self.command_timeout = command_timeout
        self._t = client
        self._sock = sock
        self._close_lock = threading.Lock()
        self._closed = False
        self._watch = watch
        self._also: list[Any] = [watch] if watch is not None else []  # closed with the connection

    # ---- connecting -------------------------------------------------------------------------------

    @classmethod
    def connect(cls, host: str, address: str, *, port: int = 22, user: str = "root",
                identity_file: str | None, known_hosts: str | None,
                host_key_policy: HostKeyPolicy | Literal["strict", "accept-new"] = HostKeyPolicy.STRICT,
                connect_timeout: float = 10.0, command_timeout: float = 300.0,
                sock_factory: SockFactory | None = None, sock: Any = None, identity_explicit: bool = True,
                keepalive: float = 0.0) -> SSHTransport:
        """Open one connection, verify the host key (before authenticating) and log in with the key.

        known_hosts None means ~/.ssh/known_hosts, as for ssh(1). sock: an open socket-like object to speak SSH
        over instead of a new TCP connection (a bastion's direct-tcpip channel, a ProxyCommand's pipes).
        keepalive: seconds between SSH keepalives, and what TCP_USER_TIMEOUT is set from (0: neither).
        """
        try:
            policy = HostKeyPolicy(host_key_policy)  # a plain string, as from the inventory, works too
        except ValueError:
            raise ValueError(f"host_key_policy must be 'strict' or 'accept-new', not {host_key_policy!r}") from None
        kh_path = os.path.expanduser(known_hosts or "~/.ssh/known_hosts")
        known = known_keys(host, kh_path, address, port)
        keys, agent = keys_to_offer(host, identity_file, identity_explicit)
        try:
            if sock is None:
                sock = open_socket(host, address, port, connect_timeout, sock_factory, keepalive)
            return cls._handshake(host, address, port, user, sock, keys, known, kh_path, policy,
                                  connect_timeout, command_timeout, keepalive, identity_file)
        finally:
            if agent is not None:  # agent keys have signed what they had to by now
                agent.close()

    @classmethod
    def _handshake(cls, host: str, address: str, port: int, user: str, sock: Any, keys: list[paramiko.PKey],
                   known: list[Any], kh_path: str, policy: HostKeyPolicy, connect_timeout: float,
                   command_timeout: float, keepalive: float, identity_file: str | None) -> SSHTransport:
        t: paramiko.Transport | None = None
        try:
            t = paramiko.Transport(sock)
            t.set_log_channel(_PARAMIKO_LOG)
            t.banner_timeout = t.handshake_timeout = t.auth_timeout = connect_timeout
            opts = t.get_security_options()
            opts.key_types = key_types_to_prefer([k for k in known if k.marker is None], opts.key_types)
            opts.ciphers = [c for c in CIPHERS if c in opts.ciphers]
            opts.digests = [m for m in MACS if m in opts.digests]
            try:
                t.start_client(timeout=connect_timeout)
            except (paramiko.SSHException, EOFError, OSError) as e:
                raise ConnectError(host, f"SSH handshake with {address}:{port} failed: "
                                         f"{e or type(e).__name__}", retryable=True) from None
            if t.host_key is None:  # start_client returns without a word when its timeout passes mid-handshake
                raise ConnectError(host, f"SSH handshake with {address}:{port} did not finish within "
                                         f"{connect_timeout:g} s", retryable=True)
            verify_host_key(host, address, port, kh_path, known, t.get_remote_server_key(), policy)
            authenticate(host, t, address, port, user, keys, identity_file)
            watch = watch_idle_link(t, sock, keepalive)
        except BaseException:
            if t is not None:
                t.close()
            sock.close()
            raise
        return cls(host, address, port, user, t, sock, command_timeout, watch)

    def open_forward(self, address: str, port: int, timeout: float, *, for_host: str) -> paramiko.Channel:
        """A direct-tcpip channel from this host (a bastion) to address:port: a socket to speak SSH over."""
        where = f"{address}:{port}"
        self._check_open()
        try:
            return self._t.open_channel("direct-tcpip", dest_addr=(address, port), src_addr=("127.0.0.1", 0),
                                        timeout=timeout)
        except paramiko.ChannelException as e:
            raise ConnectError(for_host, f"{self.host} could not connect to {where}: {e.text} ({e.code})",
                               retryable=True) from None
        except (paramiko.SSHException, EOFError, OSError) as e:
            raise ConnectError(for_host, f"{self.host} did not connect to {where} within {timeout:g} s: "
                                         f"{e or type(e).__name__}", retryable=True) from None

    # ---- commands ---------------------------------------------------------------------------------

    def run(self, cmd: Command, *, stdin: bytes | None = None, timeout: float | None = None,
            sink: Sink | None = None) -> Result:  # see Transport.run
        limit = self.command_timeout if timeout is None else timeout
        deadline = time.monotonic() + limit
        shown = _show(cmd)
        chan = self._open_session(shown, limit)
        try:
            try:
                chan.exec_command(cmd.shell())
                return self._pump(chan, shown, stdin, deadline, limit, sink)
            except (paramiko.SSHException, EOFError, OSError) as e:
                # the message names the command, never stdin: stdin is where secrets travel
                raise ChannelError(self.host, f"connection broke while running {shown}: "
                                              f"{e or type(e).__name__}") from None
        finally:
            chan.close()

    def _open_session(self, shown: str, timeout: float) -> paramiko.Channel:
        self._check_open()
        try:
            return self._t.open_session(timeout=timeout)
        except (paramiko.SSHException, EOFError, OSError) as e:
            raise ChannelError(self.host, f"cannot open a channel for {shown}: "
                                          f"{e or type(e).__name__}") from None

    def _pump(self, chan: paramiko.Channel, shown: str, stdin: bytes | None, deadline: float,
              limit: float, sink: Sink | None = None) -> Result:
        # one loop moves all three streams: a command filling stderr while we wait on stdout deadlocks (paramiko #1778)
        err, out = bytearray(), io.BytesIO()  # stdout, unless a sink takes it (a pulled archive, never held whole)
        pending = stdin or b""
        pos = 0
        if not pending:
            send_eof(chan)
        wake = chan.fileno()  # readable while output is buffered, and forever after EOF or close
        while True:
            while chan.recv_ready():
                (out if sink is None else sink).write(chan.recv(_READ_CHUNK))
            while chan.recv_stderr_ready():
                err += chan.recv_stderr(_READ_CHUNK)
            if pos < len(pending):
                try:
                    while pos < len(pending) and chan.send_ready() and not chan.closed:
                        pos += chan.send(pending[pos:pos + _SEND_CHUNK])
                except OSError:
                    if not chan.closed:
                        raise
                if chan.closed:
                    pos = len(pending)  # the command exited without reading all of its input
                elif pos >= len(pending):
                    send_eof(chan)
            sending = pos < len(pending)
            if (chan.eof_received or chan.closed) and chan.exit_status_ready() \
                    and not chan.recv_ready() and not chan.recv_stderr_ready():
                break
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                # Closing the channel does not stop the command: sshd only closes its pipes, and OpenSSH
                # refuses "signal" requests on root sessions (no privilege separation after a root login).
                chan.close()
                raise CommandTimeout(self.host, f"{shown} did not finish within {limit:g} s (channel closed; "
                                                "the command may still be running on the host)")
            nap = min(remaining, _SEND_POLL if sending else _WAKE_POLL)
            if chan.eof_received or chan.closed:
                chan.status_event.wait(nap)  # the pipe stays readable after EOF; wait for the exit status
            else:
                select.select([wake], [], [], nap)
            if not self._t.is_active():
                break  # the link died (keepalives unanswered, TCP_USER_TIMEOUT): no exit status will come
        if chan.exit_status == -1 and not self._t.is_active():
            said = lost_reason(self._t, self._watch)
            raise ChannelError(self.host, f"connection lost while running {shown}"
                                          + (f": {said} (the link stopped answering)" if said else ""))
        # -1: the command died from a signal (paramiko ignores exit-signal) or sshd sent no status
        return Result(rc=chan.exit_status, stdout=out.getvalue(), stderr=bytes(err))

    # ---- ports on the host ------------------------------------------------------------------------

    def http_get(self, port: int, path: str, *, timeout: float = 5.0) -> HttpResponse:
        """GET http://127.0.0.1:<port><path> as seen from the host itself, through a direct-tcpip channel."""
        http1.check_path(path)
        target = f"127.0.0.1:{port} on the host"
        deadline = time.monotonic() + timeout
        self._check_open()
        try:
            chan = self._t.open_channel("direct-tcpip", dest_addr=("127.0.0.1", port),
                                        src_addr=("127.0.0.1", 0), timeout=timeout)
        except paramiko.ChannelException as e:
            # sshd answers "Connect failed" (2) at once when nothing listens: health checks poll on this
            if e.code == 2:
                raise ChannelError(self.host, f"{target} refused the connection (nothing listening)") \
                    from None
            if e.code == 1:
                raise ChannelError(self.host, f"sshd refuses to forward to {target} (AllowTcpForwarding "
                                              "or PermitOpen forbid it)") from None
            raise ChannelError(self.host, f"cannot open a channel to {target}: {e.text} ({e.code})") from None
        except (paramiko.SSHException, EOFError, OSError) as e:
            if "Timeout" in str(e):
                raise CommandTimeout(self.host, f"GET {path} on {target}: no channel within {timeout:g} s") \
                    from None
            raise ChannelError(self.host, f"cannot open a channel to {target}: "
                                          f"{e or type(e).__name__}") from None
        try:
            try:
                raw = http1.exchange(chan, port, path, deadline)
            except TimeoutError:
                raise CommandTimeout(self.host, f"GET {path} on {target}: no complete response within "
                                                f"{timeout:g} s") from None
            except (paramiko.SSHException, EOFError, OSError) as e:
                raise ChannelError(self.host, f"GET {path} on {target} broke off: {e or type(e).__name__}") \
                    from None
        finally:
            chan.close()
        try:
            return http1.parse_response(raw)
        except ValueError as e:
            raise ChannelError(self.host, f"GET {path} on {target}: {e}") from None

    # ---- files ------------------------------------------------------------------------------------

    def open_sftp(self) -> paramiko.SFTPClient:
        """An SFTP session on this connection (the caller closes it)."""
        self._check_open()
        try:
            sftp = paramiko.SFTPClient.from_transport(self._t)
        except (paramiko.SSHException, EOFError, OSError) as e:
            raise ChannelError(self.host, f"cannot start SFTP: {e or type(e).__name__}") from None
        if sftp is None:
            raise ChannelError(self.host, "cannot start SFTP")
        return sftp

    def put_file(self, local_path: str, remote_path: str, *, mode: int = 0o600) -> int:
        """Copy a local file to the host over SFTP on this connection; returns the bytes sent."""
        sftp = self.open_sftp()
        try:
            attrs = sftp.put(local_path, remote_path, confirm=True)
            sftp.chmod(remote_path, mode)
            return int(attrs.st_size or 0)
        except (OSError, paramiko.SSHException, EOFError) as e:
            raise ChannelError(self.host, f"copying to {remote_path} failed: {e or type(e).__name__}") from None
        finally:
            sftp.close()

    # ---- lifetime ---------------------------------------------------------------------------------

    @property
    def local_address(self) -> tuple[str, int]:
        """Our end of the TCP connection (tells one connection from another); ("", 0) through a bastion."""
        if not isinstance(self._sock, socket.socket):
            return ("", 0)
        addr = self._sock.getsockname()
        return (addr[0], addr[1])

    def is_active(self) -> bool:
        return not self._closed and self._t.is_active()

    def also_close(self, thing: Any) -> None:
        """Close `thing` (e.g. the bastions this connection runs over) when this transport closes."""
        self._also.append(thing)

    def _check_open(self) -> None:
        if self._closed:
            raise ChannelError(self.host, "transport already closed")
        if not self._t.is_active():
            raise ChannelError(self.host, f"connection to {self.address}:{self.port} was lost")

    def close(self) -> None:
        with self._close_lock:
            if self._closed:
                return
            self._closed = True
        shut_down(self._sock)
        self._t.close()
        self._sock.close()
        for thing in self._also:
            thing.close()

    def __enter__(self) -> SSHTransport:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return f"<SSHTransport {self.host} {self.user}@{self.address}:{self.port} {state}>"


def _show(cmd: Command) -> str:
    text = cmd.shell()
    return f"`{text}`" if len(text) <= _CMD_IN_MESSAGE else f"`{text[:_CMD_IN_MESSAGE]}...`"
