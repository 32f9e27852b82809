"""The data that flows between the pipeline stages: frozen values only, no I/O, no third-party imports."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field


@dataclass(frozen=True)
class SourceSpan:
    """Where a node of the inventory came from (1-based line and column)."""

    path: str
    line: int
    col: int

    def __str__(self) -> str:
        return f"{self.path}:{self.line}:{self.col}"


class Severity(enum.Enum):
    ERROR = "error"
    WARNING = "warning"


@dataclass(frozen=True)
class Diagnostic:
    """One finding about the inventory, located in its source."""

    severity: Severity
    message: str
    span: SourceSpan | None
    code: str = ""  # stable identifier of the rule, e.g. "port-overlap"
    related: tuple[SourceSpan, ...] = ()

    @property
    def is_error(self) -> bool:
        return self.severity is Severity.ERROR

    def format(self) -> str:
        where = str(self.span) if self.span else "<inventory>"
        return f"{where}: {self.severity.value}: {self.message}"


class ProvisionError(Exception):
    """An error the user can act on; carries diagnostics when it comes from the inventory."""

    def __init__(self, message: str, diagnostics: tuple[Diagnostic, ...] = ()) -> None:
        super().__init__(message)
        self.diagnostics = diagnostics


class FileKind(enum.Enum):
    CONFIG = "config"
    ENV = "env"
    UNIT = "unit"
    OTHER = "other"


@dataclass(frozen=True)
class DesiredFile:
    """A file the tool wants on a host, with its exact bytes, owner and mode."""

    host: str
    instance: str | None
    path: str  # absolute path on the host
    content: bytes
    mode: int
    owner: str
    group: str
    kind: FileKind
    secret_values: tuple[str, ...] = ()  # the values to mask wherever they could appear
    reveal_keys: tuple[str, ...] = ()  # env files: the only keys whose values a diff may show
    # inside the service user's tree: written, backed up and probed as that user (owner:group), never by root
    as_user: bool = False


@dataclass(frozen=True)
class DesiredDir:
    host: str
    instance: str | None
    path: str
    mode: int
    owner: str
    group: str
    ensure_only: bool = False  # created if missing, but owner and mode of an existing dir are left alone
    as_user: bool = False  # inside the service user's tree: created and changed as that user (see DesiredFile)


@dataclass(frozen=True)
class DesiredService:
    """A systemd unit the tool manages, and the files whose change means it must restart."""

    host: str
    instance: str
    unit: str
    manager: str  # systemd | systemd-user | none
    user: str
    port: int
    files: tuple[str, ...]
    health_path: str = "/readyz"
    health_timeout: float = 120.0
    enabled: bool = True  # false: the unit is written but not started (and stopped if it runs)


@dataclass(frozen=True)
class DesiredRelease:
    """The pinned OpenClaw release a host should have under `prefix`, and how it gets there."""

    prefix: str
    version: str
    node_version: str
    source: str  # push | registry
    keep: int = 3
    allow_downgrade: bool = False

    @property
    def dir(self) -> str:
        return f"{self.prefix}/{self.version}"

    @property
    def stamp_prefix(self) -> str:
        return f"openclaw={self.version} node={self.node_version}"


@dataclass(frozen=True)
class DesiredHost:
    """Everything one host should have: the output of render for that host."""

    name: str
    service_user: str
    service_home: str
    files: tuple[DesiredFile, ...]
    dirs: tuple[DesiredDir, ...]
    services: tuple[DesiredService, ...]
    release: DesiredRelease | None = None


@dataclass(frozen=True)
class ObservedFile:
    path: str
    exists: bool
    sha256: str | None = None
    mode: int | None = None
    owner: str | None = None
    group: str | None = None
    content: bytes | None = None  # fetched for diffs; None when too large or absent
    found: str = ""  # what stat called it: "regular file", "directory", "symbolic link", "fifo", ...


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


class Action(enum.Enum):
    CREATE = "create"
    UPDATE = "update"
    DELETE = "delete"
    RESTART = "restart"
    START = "start"
    STOP = "stop"
    CREATE_USER = "create-user"
    NOOP = "no-op"
    # what is on the host must not be touched (a link, a FIFO, a directory where a file belongs, an unexpected
    # owner inside the service user's tree): the plan shows it, and apply refuses the whole host
    REFUSE = "refuse"


@dataclass(frozen=True)
class Change:
    """One planned change on a host, with the fingerprints it was planned against."""

    host: str
    instance: str | None
    target: str  # a path, or a unit name for service changes, or a user name
    action: Action
    reason: str
    before: str | None = None  # fingerprint (sha256 + mode + owner) of what was observed
    after: str | None = None  # fingerprint of what will be there
    diff: str = ""  # unified diff, secrets already masked
    kind: str = "file"  # file | dir | service | user


@dataclass(frozen=True)
class HostPlan:
    host: str
    changes: tuple[Change, ...]
    error: str | None = None  # the host could not be probed
    locked_by: str | None = None  # the lock line of a run holding the host when it was probed

    @property
    def has_changes(self) -> bool:
        return any(c.action is not Action.NOOP for c in self.changes)

    @property
    def refusals(self) -> tuple[Change, ...]:
        return tuple(c for c in self.changes if c.action is Action.REFUSE)


@dataclass(frozen=True)
class Plan:
    """The whole plan: per-host changes plus the inventory it came from."""

    inventory_path: str
    inventory_sha256: str
    hosts: tuple[HostPlan, ...]
    created_at: str = ""

    @property
    def has_changes(self) -> bool:
        return any(h.has_changes for h in self.hosts)

    @property
    def has_errors(self) -> bool:
        return any(h.error for h in self.hosts)

    @property
    def has_refusals(self) -> bool:
        return any(h.refusals for h in self.hosts)
