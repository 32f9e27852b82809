"""What render wants on a host: files with their exact bytes, owner and mode, directories, units, a release."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from provisioner.core.policies import Manager


class FileKind(enum.Enum):
    CONFIG = "config"
    ENV = "env"
    UNIT = "unit"
    DOCUMENT = "document"  # a workspace document (render/documents.py)
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
    # config files: the fields holding credentials (rules/secret_fields.py patterns), so that a literal in the
    # version on the host (a token since rotated) is masked too
    mask_fields: frozenset[tuple[str, ...]] = frozenset()
    # inside the service user's tree: written, backed up and probed as that user (owner:group), never by root
    as_user: bool = False
    # written only while absent: once there, whatever it holds is left alone (documents with `mode: seed`)
    seed: bool = False


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
    manager: Manager
    user: str
    port: int
    files: tuple[str, ...]
    health_path: str = "/readyz"
    health_timeout: float = 120.0
    enabled: bool = True  # false: the unit is written but not started (and stopped if it runs)
    stop_timeout: int = 330  # the unit's TimeoutStopSec: how long a stop (or the stop of a restart) may take
    channels: tuple[str, ...] = ()  # the channels enabled in the instance's rendered config
    health_channels: str = "probe"  # probe | readyz | ignore (see the inventory schema's `health.channels`)
    health_settle: float | None = None  # seconds to watch /readyz after the first 200; None: the playbook's
    state_dir: str = ""  # the gateway's state dir (its stability bundles are under logs/stability/)
    group: str = ""  # the service user's group


@dataclass(frozen=True)
class DesiredRelease:
    """The pinned OpenClaw release a host should have under `prefix`, and how it gets there."""

    prefix: str
    version: str
    node_version: str
    source: str  # push | registry
    keep: int = 3
    allow_downgrade: bool = False
    registry: str | None = None

    @property
    def dir(self) -> str:
        return f"{self.prefix}/{self.version}"

    @property
    def stamp_prefix(self) -> str:
        return f"openclaw={self.version} node={self.node_version}"


@dataclass(frozen=True)
class DesiredToken:
    """A gateway token made on the host, never on the controller: at the first apply the service user writes a
    random one into `path` (0600, in its own tree); later applies keep it. Its value and digest are never
    probed, planned or sent back: the plan shows only that the unit loads the file."""

    host: str
    instance: str
    path: str
    owner: str
    group: str


@dataclass(frozen=True)
class DesiredPlugin:
    """A pinned npm plugin a host should have, unpacked root-owned under `dir` (render/plugins.py)."""

    host: str
    package: str
    version: str
    id: str
    dir: str
    instances: tuple[str, ...]  # the instances that load it


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
    tokens: tuple[DesiredToken, ...] = ()
    plugins: tuple[DesiredPlugin, ...] = ()
