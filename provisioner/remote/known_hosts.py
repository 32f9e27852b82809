"""known_hosts as OpenSSH keeps it: reading entries for a host ([addr]:port names, hashed entries, patterns,
@revoked), judging the key a host offers against them, recording a new key under accept-new, and fingerprints.

Used by the SSH transport (provisioner.remote.ssh) before it authenticates; no paramiko at run time.
"""

from __future__ import annotations

import base64
import fcntl
import hashlib
import hmac
import os
import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from provisioner.core.policies import HostKeyPolicy
from provisioner.remote.transport import HostKeyError

if TYPE_CHECKING:
    import paramiko


# flock() excludes other processes and, on local disks, other open()s of this one; on NFS it is emulated
# with fcntl locks, which are per process, so threads of this process also take this lock.
_known_hosts_lock = threading.Lock()


@dataclass(frozen=True)
class KnownKey:
    """One known_hosts line that matches the host we connect to."""

    path: str
    lineno: int
    marker: str | None  # "@revoked", "@cert-authority" or None
    keytype: str
    blob: bytes

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.blob)


def fingerprint(blob: bytes) -> str:
    """The key's fingerprint in OpenSSH's default form: SHA256:<unpadded base64>."""
    return "SHA256:" + base64.b64encode(hashlib.sha256(blob).digest()).decode("ascii").rstrip("=")


def known_hosts_name(address: str, port: int) -> str:
    # OpenSSH records and looks up "[addr]:port" for every port but 22; plain "addr" means port 22
    return address if port == 22 else f"[{address}]:{port}"


def _pattern_matches(name: str, pattern: str) -> bool:
    if pattern.startswith("|1|"):
        # hashed entry: |1|base64(salt)|base64(HMAC-SHA1(salt, name))
        parts = pattern.split("|")
        if len(parts) != 4:
            return False
        try:
            salt = base64.b64decode(parts[2], validate=True)
            digest = base64.b64decode(parts[3], validate=True)
        except ValueError:
            return False
        return hmac.compare_digest(hmac.new(salt, name.encode(), hashlib.sha1).digest(), digest)
    if "*" not in pattern and "?" not in pattern:
        return name.lower() == pattern.lower()  # the common case, and every connect reads every line
    # OpenSSH patterns know only * and ?; fnmatch would read "[addr]:port" as a character class
    rx = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern.lower())
    return re.fullmatch(rx, name.lower()) is not None


def _host_matches(name: str, patterns: str) -> bool:
    matched = False
    for p in patterns.split(","):
        negated = p.startswith("!")
        if _pattern_matches(name, p[1:] if negated else p):
            if negated:
                return False  # a matching negation overrides every positive match on the line
            matched = True
    return matched


@dataclass(frozen=True)
class _KnownLine:
    lineno: int
    marker: str | None
    patterns: str
    plain: frozenset[str] | None  # the lower-cased names, when the line has only plain names (no *, ?, !, |1|)
    keytype: str
    blob: bytes


# path -> (the file's bytes, its parsed lines): every connection of a run reads the same known_hosts, and
# parsing it once per connection made a fleet's connects quadratic in its size. The file is still read on
# every connect and a parse is reused only for identical bytes, so an edit is seen at once.
_known_hosts_cache: dict[str, tuple[bytes, tuple[_KnownLine, ...]]] = {}
_known_hosts_cache_lock = threading.Lock()


def _parse_known_hosts(data: bytes) -> tuple[_KnownLine, ...]:
    text = data.decode("utf-8", errors="replace").replace("\r\n", "\n").replace("\r", "\n")
    parsed = []
    for lineno, raw in enumerate(text.split("\n"), 1):
        fields = raw.split()
        if not fields or fields[0].startswith("#"):
            continue
        marker = fields.pop(0) if fields[0].startswith("@") else None
        if len(fields) < 3:
            continue
        try:
            blob = base64.b64decode(fields[2], validate=True)
        except ValueError:
            continue  # a damaged line is skipped, as OpenSSH does
        pats = fields[0]
        plain = None if any(c in pats for c in "*?!") or "|1|" in pats else frozenset(pats.lower().split(","))
        parsed.append(_KnownLine(lineno, marker, pats, plain, fields[1], blob))
    return tuple(parsed)


def read_known_hosts(path: str, name: str) -> list[KnownKey]:
    """The entries of known_hosts file `path` for `name` (see known_hosts_name); [] if the file is missing."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        return []
    with _known_hosts_cache_lock:
        cached = _known_hosts_cache.get(path)
        if cached is not None and cached[0] == data:
            lines = cached[1]
        else:
            lines = _parse_known_hosts(data)
            _known_hosts_cache[path] = (data, lines)
    lname = name.lower()
    return [KnownKey(path, k.lineno, k.marker, k.keytype, k.blob) for k in lines
            if (lname in k.plain if k.plain is not None else _host_matches(name, k.patterns))]


def known_keys(host: str, path: str, address: str, port: int) -> list[KnownKey]:
    """The entries of known_hosts file `path` for `host` at address:port; HostKeyError if it cannot be read."""
    name = known_hosts_name(address, port)
    try:
        return read_known_hosts(path, name)
    except OSError as e:
        raise HostKeyError(host, f"cannot read known_hosts {path}: {e.strerror or e}") from None


def key_types_to_prefer(known: list[KnownKey], supported: Sequence[str]) -> list[str]:
    # Like OpenSSH, ask first for the key types we already know for this host; otherwise the server may
    # offer another of its keys and we would take that for a changed key.
    wanted: list[str] = []
    for k in known:
        names = ["rsa-sha2-512", "rsa-sha2-256"] if k.keytype == "ssh-rsa" else [k.keytype]
        wanted += [n for n in names if n in supported and n not in wanted]
    return wanted + [t for t in supported if t not in wanted]


def verify_host_key(host: str, address: str, port: int, path: str, known: list[KnownKey],
                    offered: paramiko.PKey, policy: HostKeyPolicy) -> None:
    name = known_hosts_name(address, port)
    if _judge(host, name, known, offered) == "known":
        return
    if policy == HostKeyPolicy.STRICT:
        fp = fingerprint(offered.asbytes())
        raise HostKeyError(host, f"{name} is not in known_hosts {path} (it offers {offered.get_name()} "
                                 f"{fp}); after checking that fingerprint add it with `ssh-keyscan -p {port} "
                                 f"{address} >> {path}`, or set host_key_policy: accept-new")
    _record_new_key(host, name, path, offered)


def _judge(host: str, name: str, known: list[KnownKey],
           offered: paramiko.PKey) -> Literal["known", "unknown"]:
    """'known' or 'unknown'; a changed or revoked key raises HostKeyError under every policy."""
    blob = offered.asbytes()
    for k in known:
        if k.marker == "@revoked" and k.blob == blob:
            raise HostKeyError(host, f"the key {name} offers ({fingerprint(blob)}) is marked @revoked in "
                                     f"{k.path} line {k.lineno}")
    plain = [k for k in known if k.marker is None]
    if any(k.blob == blob for k in plain):
        return "known"
    if plain:
        expected = "; ".join(f"{k.keytype} {k.fingerprint} ({k.path} line {k.lineno})" for k in plain)
        raise HostKeyError(host, f"HOST KEY CHANGED for {name}: known_hosts expects {expected}; the host "
                                 f"offered {offered.get_name()} {fingerprint(blob)}. Refusing to connect: "
                                 f"this may be an attack; if the host was reinstalled, remove the old entry "
                                 f"(ssh-keygen -R '{name}' -f {plain[0].path}) and add the new key")
    return "unknown"


def _record_new_key(host: str, name: str, path: str, key: paramiko.PKey) -> None:
    """accept-new: append the unknown host's key, under a lock so parallel connections neither
    corrupt the file nor record two different keys for one host."""
    try:
        os.makedirs(os.path.dirname(path) or ".", mode=0o700, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o600)
    except OSError as e:
        raise HostKeyError(host, f"cannot record the key of {name} in {path}: {e.strerror}") from None
    try:
        with _known_hosts_lock:
            fcntl.flock(fd, fcntl.LOCK_EX)
            # re-read under the lock: a parallel connection may have recorded this host meanwhile
            if _judge(host, name, read_known_hosts(path, name), key) == "known":
                return
            size = os.fstat(fd).st_size
            lead = b""
            if size and os.pread(fd, 1, size - 1) != b"\n":
                lead = b"\n"  # never glue our entry onto a last line that lacks its newline
            line = f"{name} {key.get_name()} {key.get_base64()}\n".encode("ascii")
            os.write(fd, lead + line)  # one O_APPEND write
            os.fsync(fd)
    except OSError as e:
        raise HostKeyError(host, f"cannot record the key of {name} in {path}: {e.strerror}") from None
    finally:
        os.close(fd)  # also drops the flock
