"""What applying a host came to: its status, what was written and restarted, how its gateways answered.

The output layer reads these; they carry no I/O, so it needs nothing else of `apply/`.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from provisioner.core.changes import Change


class HostStatus(enum.Enum):
    UNCHANGED = "unchanged"
    CHANGED = "changed"
    FAILED = "failed"  # tried and failed; the host was put back on its previous files
    UNREACHABLE = "unreachable"
    NOT_REACHED = "not-reached"  # the rollout stopped before this host
    REFUSED = "refused"  # drifted since the plan, or locked by another run
    ROLLED_BACK = "rolled-back"  # took the new revision, then was put back because its batch failed


@dataclass
class HostResult:
    host: str
    status: HostStatus
    message: str = ""
    applied: list[Change] = field(default_factory=list)
    restarted: list[str] = field(default_factory=list)
    rolled_back: bool = False
    health: dict[str, str] = field(default_factory=dict)  # instance -> "ready after 9.1 s" / "not ready: ..."
    failing: dict[str, list[str]] = field(default_factory=dict)  # instance -> what OpenClaw named as failing
    restarts: dict[str, str] = field(default_factory=dict)  # unit -> how its stop went, when it was worth saying
    written: list[str] = field(default_factory=list)  # paths replaced on the host (their old versions are kept)
    reloaded: bool = False
    transferred: int = 0  # bytes of release tarballs pushed to the host
    settled: list[str] = field(default_factory=list)  # units now running the files on disk: clear their marks
    unlocked: bool = False  # the last script released the host lock itself

    @property
    def ok(self) -> bool:
        return self.status in (HostStatus.UNCHANGED, HostStatus.CHANGED)


Progress = Callable[[str, str], None]  # (host, what is happening): how apply reports as it goes


class ProgressEvent(str):
    """A progress message that also carries its facts for a machine-readable event stream: `kind` ("stopping",
    "stopped", "gate", ...) and `fields` (JSON-able values: unit, elapsed and budget in seconds, instance,
    failing names ...). It is a str (the text for people), so every `Progress` takes it as it is."""

    kind: str
    fields: dict[str, Any]

    def __new__(cls, text: str, kind: str, **fields: Any) -> ProgressEvent:
        self = super().__new__(cls, text)
        self.kind = kind
        self.fields = fields
        return self
