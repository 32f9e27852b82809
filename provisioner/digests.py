"""Keyed digests of file contents: what plans, plan files and `--json` show instead of a file's sha256.

A managed file such as `gateway.env` is a known template plus secret tokens, so its plain sha256 (or one salted
with anything that is shown alongside it) lets whoever reads a plan confirm a guessed token offline. Every content
fingerprint is therefore `hmac-sha256:<hex>`: HMAC-SHA256, keyed with a key that never leaves the controller, over
the file's raw sha256 hex digest (what the hosts' probe reports). The same content gives the same fingerprint
under one key, so drift detection (the plan's fingerprints compared with the host's at apply time) works as
before; without the key the fingerprint says nothing about the content.

The key: 32 random bytes in `$XDG_CACHE_HOME/openclaw-provisioner/keys/digest.key` (`~/.cache/...` without
XDG_CACHE_HOME), made on first use with mode 0600 from its first byte (written under a temporary name, then
hard-linked into place, so that two controllers starting at once end up with the same key), and read once per
process. If that file can be neither read nor made, the process uses a random key of its own and says so on
stderr: its plans are fine to read, but a plan it saves (`plan --out`) can be applied only by that same process,
i.e. never; another controller refuses it, naming the key as the cause.

`OCP_DIGEST_KEY_FILE=/path` uses that file instead, e.g. to share one key among CI runners so that a plan saved
by one can be applied by another. The file holds 32 or more random bytes, or 64 hex digits (`openssl rand -hex 32
> key`); it is made (0600) if missing. A key file that is set but unusable is an error, never a silent fallback.
Whoever can read the key can test guesses against fingerprints again: keep it as private as the secrets.

Plan files carry `key_id()` (8 hex digits of HMAC(key, "key-id"), which reveals nothing of the key) so that a
plan made under another key is refused for what it is, not as "the host changed since the plan was made".
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import hmac
import os
import secrets
import stat
import sys
import threading
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from provisioner.cache import cache_dir

PREFIX = "hmac-sha256:"
KEY_ENV = "OCP_DIGEST_KEY_FILE"
KEY_BYTES = 32
_MAX_KEY_FILE = 4096


class DigestKeyError(Exception):
    """OCP_DIGEST_KEY_FILE names a key file that cannot be used."""


@dataclass(frozen=True)
class DigestKey:
    secret: bytes
    source: str  # the key file, or "" for a key of this process only
    persistent: bool

    def __repr__(self) -> str:  # never the key itself, whatever prints this
        return f"DigestKey(source={self.source!r}, persistent={self.persistent})"


def key_path() -> Path:
    """Where the controller keeps its key unless OCP_DIGEST_KEY_FILE says otherwise."""
    return cache_dir("keys") / "digest.key"


def keyed(raw_sha256_hex: str) -> str:
    """The fingerprint shown for content whose sha256 is `raw_sha256_hex`: `hmac-sha256:<64 hex>`."""
    mac = hmac.new(current_key().secret, raw_sha256_hex.lower().encode("ascii", "replace"), hashlib.sha256)
    return PREFIX + mac.hexdigest()


def key_id() -> str:
    """Names this controller's key in plan files without revealing it."""
    return hmac.new(current_key().secret, b"key-id", hashlib.sha256).hexdigest()[:8]


_lock = threading.Lock()


def current_key() -> DigestKey:
    # the lock: hosts are planned in threads, and two of them must not each make a per-process key of their own
    with _lock:
        return _load()


def forget_key() -> None:
    """Load the key again on next use (tests, after changing XDG_CACHE_HOME or OCP_DIGEST_KEY_FILE)."""
    with _lock:
        _load.cache_clear()


@lru_cache(maxsize=1)
def _load() -> DigestKey:
    named = os.environ.get(KEY_ENV, "")
    if named:
        path = Path(named).expanduser()
        try:
            return DigestKey(_read_or_create(path, follow=True), str(path), True)
        except (OSError, ValueError) as exc:
            raise DigestKeyError(f"{KEY_ENV}={named}: {_why(exc)}") from exc
    path = key_path()
    try:
        return DigestKey(_read_or_create(path, follow=False), str(path), True)
    except (OSError, ValueError) as exc:
        _warn(f"cannot keep the digest key in {path} ({_why(exc)}); using a key of this process only: a plan saved "
              f"now (plan --out) cannot be applied by another run; set {KEY_ENV} to a key file to keep one")
        return DigestKey(secrets.token_bytes(KEY_BYTES), "", False)


def _why(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc)


def _warn(msg: str) -> None:
    print(f"warning: {msg}", file=sys.stderr, flush=True)


def _read_or_create(path: Path, *, follow: bool) -> bytes:
    for _ in range(3):
        try:
            return _read(path, follow=follow)
        except FileNotFoundError:
            pass
        made = _create(path)
        if made is not None:
            return made
        # another process made it first: read theirs
    raise OSError(errno.EAGAIN, "the key file keeps appearing and disappearing")


def _read(path: Path, *, follow: bool) -> bytes:
    flags = os.O_RDONLY | os.O_CLOEXEC | (0 if follow else os.O_NOFOLLOW)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        if exc.errno == errno.ELOOP and not follow:
            raise ValueError("is a symbolic link; the controller's own key file must be a regular file") from exc
        raise
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise ValueError("not a regular file")
        if st.st_mode & 0o077:
            _warn(f"the digest key {path} is accessible to others (mode {stat.S_IMODE(st.st_mode):04o}); whoever "
                  f"reads it can test guesses of secrets against plan fingerprints: chmod 600 {path}")
        data = os.read(fd, _MAX_KEY_FILE + 1)
    finally:
        os.close(fd)
    return _parse(data)


def _parse(data: bytes) -> bytes:
    text = data.strip()
    if len(text) == 2 * KEY_BYTES:
        try:
            return bytes.fromhex(text.decode("ascii"))
        except (UnicodeDecodeError, ValueError):
            pass
    if KEY_BYTES <= len(data) <= _MAX_KEY_FILE:
        return data
    raise ValueError(f"holds {len(data)} bytes; a digest key is {KEY_BYTES} or more random bytes, or "
                     f"{2 * KEY_BYTES} hex digits")


def _create(path: Path) -> bytes | None:
    """Make the key file, 0600 from the start; None if another process made it first (then read that one)."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    key = secrets.token_bytes(KEY_BYTES)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    try:
        try:
            os.fchmod(fd, 0o600)  # exactly 0600: a strict umask must not leave it unreadable to ourselves
            view = memoryview(key)
            while view:
                view = view[os.write(fd, view):]
            os.fsync(fd)
        finally:
            os.close(fd)
        try:
            os.link(tmp, path)  # never replaces: a key another process already uses stays the key
        except FileExistsError:
            return None
        except OSError as exc:
            if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EMLINK):
                raise
            if os.path.lexists(path):  # a file system without hard links: rename, but still never replace
                return None
            os.replace(tmp, path)
        return key
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
