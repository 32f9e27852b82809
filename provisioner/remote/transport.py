"""The single seam between the engine and a host: run a command, reach a port on the host; SSH and local implement it.

Exceptions (all subclasses of TransportError):

    TransportError
     +-- ConnectError          could not connect or authenticate (host unreachable, refused, bad key)
     |    +-- HostKeyError     the host's key is unknown or changed (strict checking)
     +-- CommandTimeout        a command did not finish within its timeout
     +-- ChannelError          the connection broke while a command ran
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from provisioner.remote.command import Command


class TransportError(Exception):
    def __init__(self, host: str, message: str) -> None:
        super().__init__(f"{host}: {message}")
        self.host = host
        self.detail = message


class ConnectError(TransportError):
    """retryable: the host may answer a moment later (refused, timed out, unreachable, cut off in the
    handshake: a host that is rebooting); never for keys, authentication or configuration."""

    def __init__(self, host: str, message: str, *, retryable: bool = False) -> None:
        super().__init__(host, message)
        self.retryable = retryable


class HostKeyError(ConnectError):
    pass


class CommandTimeout(TransportError):
    pass


class ChannelError(TransportError):
    pass


@dataclass(frozen=True)
class Result:
    rc: int
    stdout: bytes
    stderr: bytes

    @property
    def ok(self) -> bool:
        return self.rc == 0

    def text(self) -> str:
        return self.stdout.decode("utf-8", "replace")

    def err_text(self) -> str:
        return self.stderr.decode("utf-8", "replace").strip()


@dataclass(frozen=True)
class HttpResponse:
    status: int
    body: bytes


class Sink(Protocol):
    """Where a command's stdout can go as it arrives (a file being written, with a running checksum)."""

    def write(self, data: bytes, /) -> object: ...


@runtime_checkable
class Transport(Protocol):
    """One open connection to one host, reused for the whole run."""

    host: str

    def run(self, cmd: Command, *, stdin: bytes | None = None, timeout: float | None = None,
            sink: Sink | None = None) -> Result:
        """Run argv on the host (quoted by Command), feeding stdin; stdout and stderr read concurrently. With a
        `sink`, stdout is written to it as it arrives (a pulled archive of any size) and Result.stdout is empty."""
        ...

    def http_get(self, port: int, path: str, *, timeout: float = 5.0) -> HttpResponse:
        """GET http://127.0.0.1:<port><path> as seen from the host itself."""
        ...

    def put_file(self, local_path: str, remote_path: str, *, mode: int = 0o600) -> int:
        """Copy a (large) local file to the host; returns the bytes sent."""
        ...

    def close(self) -> None: ...
