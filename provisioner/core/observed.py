"""What the fact probe found on a host: files and directories (what kind, digest, mode, owner), units, locks."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field


class EntryKind(enum.Enum):
    """What is at a path, as the probe saw it (without following a link)."""

    ABSENT = "absent"
    FILE = "file"  # a regular file
    DIRECTORY = "directory"
    SYMLINK = "symlink"
    OTHER = "other"  # a FIFO, socket, device ...: never opened


@dataclass(frozen=True)
class ObservedFile:
    path: str
    exists: bool
    sha256: str | None = None  # of a regular file's content; None for anything else, or when it could not be read
    mode: int | None = None
    owner: str | None = None
    group: str | None = None
    content: bytes | None = None  # fetched for diffs; None when too large or absent
    found: str = ""  # what stat called it, for messages: "regular file", "directory", "symbolic link", "fifo", ...
    kind: EntryKind = EntryKind.ABSENT

    @staticmethod
    def kind_of(found: str) -> EntryKind:
        """The kind of entry `stat -c %F` names."""
        if found.startswith("regular"):
            return EntryKind.FILE
        return {"directory": EntryKind.DIRECTORY, "symbolic link": EntryKind.SYMLINK}.get(found, EntryKind.OTHER)


@dataclass(frozen=True)
class ObservedService:
    unit: str
    load_state: str = "not-found"  # loaded | not-found | ...
    active_state: str = "inactive"
    enabled: str = "disabled"
    invocation_id: str = ""


@dataclass(frozen=True)
class Listener:
    """A TCP port something listens on, and who: the unit it runs in when systemd started it."""

    port: int
    pid: int | None
    unit: str | None
    command: str


@dataclass(frozen=True)
class ObservedHost:
    """What one batched probe found on a host."""

    name: str
    files: dict[str, ObservedFile] = field(default_factory=dict)
    dirs: dict[str, ObservedFile] = field(default_factory=dict)
    services: dict[str, ObservedService] = field(default_factory=dict)
    managed_units: tuple[str, ...] = ()  # units carrying our marker, found on the host
    users: dict[str, bool] = field(default_factory=dict)
    openclaw_version: str | None = None
    lock_holder: str | None = None
    listeners: tuple[Listener, ...] = ()
    releases: dict[str, str] = field(default_factory=dict)  # version dir under the install prefix -> its stamp
    current_release: str | None = None
    # units an earlier run wrote new files for and then did not get to restart (killed, connection lost)
    pending_restart: tuple[str, ...] = ()
    # what the last apply wrote: path -> (digest key id, keyed digest of the content), to tell a change of the
    # inventory from a hand edit on the host
    applied: dict[str, tuple[str, str]] = field(default_factory=dict)
    plugins: dict[str, str] = field(default_factory=dict)  # plugin directory in place -> its stamp
