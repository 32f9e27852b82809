"""The resolved inventory: hosts and instances after defaults -> groups -> host -> instance layering."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from provisioner.core.diagnostics import SourceSpan
from provisioner.core.policies import HostKeyPolicy, Manager
from provisioner.inventory.yamlsource import DocPath, SpanTable

DEFAULT_OPENCLAW_VERSION = "2026.9.6"
TOKEN_FILE_NAME = "gateway.auth.env"  # in the state dir: the gateway token made on the host (Instance.token_file)
TOKEN_VAR = "OPENCLAW_GATEWAY_TOKEN"
DEFAULT_STOP_TIMEOUT = 330  # OpenClaw's own unit (`gateway install`) sets TimeoutStopSec=330


@dataclass(frozen=True)
class SecretRef:
    """Where a secret's value comes from on the controller: an environment variable or a file."""

    env: str | None = None
    file: str | None = None

    def describe(self) -> str:
        return f"env {self.env}" if self.env else f"file {self.file}"


@dataclass(frozen=True)
class SSHSettings:
    user: str = "root"
    port: int = 22
    identity_file: str | None = "~/.ssh/id_ed25519"
    known_hosts: str | None = "~/.ssh/known_hosts"
    host_key_policy: HostKeyPolicy = HostKeyPolicy.STRICT
    become: bool = False
    connect_timeout: float = 10.0
    command_timeout: float = 300.0
    proxy_jump: tuple[str, ...] = ()  # bastions, first hop first: inventory host names or [user@]host[:port]
    proxy_command: str | None = None  # only from an ssh_config file (ProxyCommand), never from the inventory
    config_file: str | None = None  # an OpenSSH client config to fill in what the inventory does not set
    connect_retries: int = 2
    keepalive: float = 3.0
    explicit: frozenset[str] = field(default=frozenset(), compare=False)  # the keys the inventory itself set


@dataclass(frozen=True)
class ServiceSettings:
    manager: Manager = Manager.SYSTEMD
    user: str = "openclaw"
    group: str = "openclaw"
    home: str = "/home/openclaw"


@dataclass(frozen=True)
class InstallSettings:
    source: str = "push"
    node_version: str = "24.21.0"
    prefix: str = "/opt/openclaw"
    keep: int = 3
    allow_downgrade: bool = False
    registry: str | None = None  # source: registry: the npm registry the hosts fetch from (else their npm's own)


@dataclass(frozen=True)
class OpenClawSettings:
    version: str = DEFAULT_OPENCLAW_VERSION
    command: tuple[str, ...] = ("openclaw",)
    install: InstallSettings | None = None
    version_explicit: bool = False

    @property
    def run_command(self) -> tuple[str, ...]:
        """How units run OpenClaw: the pinned release's own path when the tool installs it, so that a unit
        always runs the version it was rendered for."""
        if self.install is not None:
            return (f"{self.install.prefix}/{self.version}/bin/openclaw",)
        return self.command


@dataclass(frozen=True)
class DedupeMount:
    type: str
    source: str
    options: tuple[str, ...] = ()
    identity_file: str | None = None


@dataclass(frozen=True)
class DedupeSettings:
    dir: str
    configure_gateway: bool = True
    mount: DedupeMount | None = None


@dataclass(frozen=True)
class DocumentEntry:
    """One `documents:` entry of an instance: a controller-side source landing at `target` in the workspace."""

    target: str  # as written: a path relative to the workspace ("." is the workspace itself)
    source: str  # absolute path on the controller
    mode: str = "enforce"  # enforce | seed
    file_mode: int = 0o644


@dataclass(frozen=True)
class PluginSpec:
    """One `plugins:` entry of an instance: an npm package pinned to a version, loaded by path from the
    root-owned plugin prefix (render/plugins.py)."""

    package: str  # the npm name, e.g. @openclaw/slack
    version: str
    id: str  # the plugin id in OpenClaw's config (plugins.entries.<id>); checked against the package's manifest
    config: dict[str, Any] | None = None  # plugins.entries.<id>.config


@dataclass(frozen=True)
class Instance:
    host: str
    name: str
    profile: str
    port: int | None
    bind: str
    state_dir: str  # normalised absolute paths from here on
    config_path: str
    workspace: str
    env_file: str
    unit: str
    enabled: bool
    config: dict[str, Any]
    env: dict[str, str]
    secrets: dict[str, SecretRef]
    health_path: str
    health_timeout: float
    dedupe: bool
    service: ServiceSettings
    doc_path: DocPath  # ("hosts", host, "instances", name)
    health_channels: str = "probe"  # probe | readyz | ignore: what a healthy gateway requires of its channels
    health_settle: float | None = None  # seconds to watch /readyz after it is first ready; None: the playbook's
    stop_timeout: int = DEFAULT_STOP_TIMEOUT  # the unit's TimeoutStopSec
    documents: tuple[DocumentEntry, ...] = ()  # workspace files (render/documents.py expands them)
    plugins: tuple[PluginSpec, ...] = ()
    provenance: dict[tuple[str, ...], DocPath] = field(default_factory=dict, compare=False, repr=False)

    @property
    def address(self) -> str:
        return f"{self.host}/{self.name}"

    @property
    def auth_mode(self) -> object:
        """`gateway.auth.mode` as rendered: the inventory's own, or "token" (auth by default)."""
        gw = self.config.get("gateway")
        auth = gw.get("auth") if isinstance(gw, dict) else None
        return auth.get("mode", "token") if isinstance(auth, dict) else "token"

    @property
    def token_file(self) -> str | None:
        """Where the host keeps the gateway token the tool makes for this instance (on the host, at its first
        apply; never sent to the controller), or None when the inventory gives the token or uses no token."""
        if self.auth_mode != "token" or any(TOKEN_VAR in m for m in (self.secrets, self.env)):
            return None
        gw = self.config.get("gateway")
        auth = gw.get("auth") if isinstance(gw, dict) else None
        if isinstance(auth, dict) and auth.get("token") is not None:
            return None
        return self.state_dir.rstrip("/") + "/" + TOKEN_FILE_NAME

    def source_of(self, *field_path: str) -> DocPath:
        """The document path that supplied a (possibly nested) field, for locating diagnostics."""
        p = tuple(field_path)
        while p:
            if p in self.provenance:
                return self.provenance[p]
            p = p[:-1]
        return self.doc_path


@dataclass(frozen=True)
class Host:
    name: str
    address: str | None
    connection: str  # ssh | local
    root: str | None  # local connection: the directory standing for the host's /
    ssh: SSHSettings
    service: ServiceSettings
    instances: tuple[Instance, ...]
    groups: tuple[str, ...]
    doc_path: DocPath


@dataclass(frozen=True)
class Inventory:
    path: str
    sha256: str
    openclaw: OpenClawSettings
    dedupe: DedupeSettings | None
    hosts: tuple[Host, ...]
    groups: dict[str, tuple[str, ...]]
    spans: SpanTable = field(compare=False, repr=False)
    raw: dict[str, Any] = field(compare=False, repr=False, default_factory=dict)
    forks: int | None = None  # hosts worked on at once (the inventory's `forks`; `--forks` wins)

    def host(self, name: str) -> Host:
        for h in self.hosts:
            if h.name == name:
                return h
        raise KeyError(name)

    def span(self, path: DocPath, *, key: bool = False) -> SourceSpan | None:
        return self.spans.key(path) if key else self.spans.value(path)
