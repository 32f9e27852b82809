"""The plan: typed Changes per host (action, reason, the fingerprints it was planned against), HostPlan, Plan."""

from __future__ import annotations

import enum
from dataclasses import dataclass


class ChangeKind(enum.StrEnum):
    """What a Change is about."""

    FILE = "file"
    DIR = "dir"
    SERVICE = "service"
    USER = "user"
    RELEASE = "release"  # a release directory under the install prefix
    RELEASE_LINK = "release-link"  # <prefix>/current
    PLUGIN = "plugin"  # a pinned plugin's directory under the plugin prefix


class Action(enum.Enum):
    CREATE = "create"
    UPDATE = "update"
    DELETE = "delete"
    RESTART = "restart"
    START = "start"
    STOP = "stop"
    CREATE_USER = "create-user"
    NOOP = "no-op"
    # what is on the host must not be touched (a link, a FIFO or a directory where a managed file or directory
    # belongs; a directory of the service user's tree owned by someone else, which that user cannot take over):
    # the plan shows it, and apply refuses the whole host. A *file* of someone else's in that tree is simply
    # replaced: the rename is the user's own, in its own directory
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
    kind: ChangeKind = ChangeKind.FILE
    # a file whose content differs: "inventory" (the inventory changed it), "drift" (edited on the host since the
    # last apply), "both", or "unknown" (no record of the last apply to compare with); "" for anything else
    cause: str = ""


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
