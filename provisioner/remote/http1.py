"""The minimal HTTP/1.0 client behind SSHTransport.http_get: one GET with "Connection: close" written to an
already open direct-tcpip channel, the response read until it is complete or the peer closes, then parsed.

Only what health checks need (no keep-alive, redirects or TLS). It knows nothing of paramiko: the channel's
own errors (TimeoutError, OSError, ...) reach the transport, which turns them into transport errors.
"""

from __future__ import annotations

import re
import time
from typing import Protocol

from provisioner.remote.transport import HttpResponse

_READ_CHUNK = 1 << 20


class Channel(Protocol):
    """The socket-like part of a paramiko.Channel this client uses."""

    def settimeout(self, timeout: float | None) -> None: ...

    def sendall(self, s: bytes) -> None: ...

    def recv(self, nbytes: int) -> bytes: ...


def check_path(path: str) -> None:
    """Refuse a path that would not make one well-formed request line."""
    if not path.startswith("/") or any(c in path for c in " \r\n\t"):
        raise ValueError(f"bad HTTP path {path!r}")


def exchange(chan: Channel, port: int, path: str, deadline: float) -> bytes:
    """Send GET `path` to 127.0.0.1:`port` on `chan` and read the raw response, all by time.monotonic() `deadline`."""
    request = f"GET {path} HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n"
    raw = bytearray()
    chan.settimeout(max(deadline - time.monotonic(), 0.001))
    chan.sendall(request.encode("ascii"))
    while True:
        chan.settimeout(max(deadline - time.monotonic(), 0.001))
        data = chan.recv(_READ_CHUNK)
        if not data:
            break
        raw += data
        if response_complete(raw):
            break  # a server that ignores "Connection: close" must not cost us the timeout
    return bytes(raw)


def parse_response(raw: bytes) -> HttpResponse:
    if not raw:
        raise ValueError("connection closed without a response")
    head, sep, body = raw.partition(b"\r\n\r\n")
    if not sep:
        raise ValueError(f"truncated response ({len(raw)} bytes, no end of headers)")
    lines = head.split(b"\r\n")
    parts = lines[0].split(None, 2)
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/") or not (parts[1].isdigit() and len(parts[1]) == 3):
        raise ValueError(f"not an HTTP response: {lines[0][:80]!r}")
    headers = {}
    for line in lines[1:]:
        key, _, value = line.partition(b":")
        headers[key.strip().lower()] = value.strip()
    if headers.get(b"transfer-encoding", b"").lower() == b"chunked":
        body = _dechunk(body)  # HTTP/1.0 peers must not chunk, but a sloppy server costs us nothing
    elif b"content-length" in headers:
        want = int(headers[b"content-length"])
        if len(body) < want:
            raise ValueError(f"truncated body ({len(body)} of {want} bytes)")
        body = body[:want]
    return HttpResponse(status=int(parts[1]), body=body)


def response_complete(raw: bytearray) -> bool:
    end = raw.find(b"\r\n\r\n")
    if end < 0:
        return False
    m = re.search(rb"\r\ncontent-length:[ \t]*(\d+)", bytes(raw[:end]), re.IGNORECASE)
    return m is not None and len(raw) - end - 4 >= int(m.group(1))


def _dechunk(data: bytes) -> bytes:
    out = bytearray()
    pos = 0
    while True:
        eol = data.find(b"\r\n", pos)
        if eol < 0:
            raise ValueError("truncated chunked body")
        size = int(data[pos:eol].split(b";")[0], 16)
        if size == 0:
            return bytes(out)
        start = eol + 2
        if len(data) < start + size:
            raise ValueError("truncated chunked body")
        out += data[start:start + size]
        pos = start + size + 2
