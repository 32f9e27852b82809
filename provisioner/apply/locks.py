"""Who holds a host's lock, and whether that run is still alive: the line a lock file carries, read back.

A run writes `<controller> pid=<pid> run=<id> at=<epoch> ctl=<id>` into the host's lock. Another run on the
same controller can tell a live holder from a killed one (the pid is gone, or now belongs to a process that
started after the lock was taken); a lock taken from another controller can only be described, not judged.
`ctl` names the kernel boot and pid namespace the pid belongs to: containers often share a hostname, and a pid
means nothing outside its own namespace.
"""

from __future__ import annotations

import contextlib
import enum
import functools
import hashlib
import os
import socket
import time
import uuid
from dataclasses import dataclass


class Liveness(enum.Enum):
    LIVE = "live"
    DEAD = "dead"
    UNKNOWN = "unknown"  # taken from another controller, or a line this tool did not write


@dataclass(frozen=True)
class LockHolder:
    raw: str
    controller: str | None = None
    pid: int | None = None
    run: str | None = None
    since: int | None = None
    ctl: str | None = None

    def describe(self, now: float | None = None) -> str:
        if self.controller is None or self.pid is None:
            return self.raw or "an unreadable lock"
        ago = ""
        if self.since is not None:
            ago = f", taken {_ago((now or time.time()) - self.since)} ago"
        return f"run {self.run or '?'} of pid {self.pid} on {self.controller}{ago}"


def new_holder() -> str:
    return (f"{socket.gethostname()} pid={os.getpid()} run={uuid.uuid4().hex[:12]} at={int(time.time())} "
            f"ctl={controller_id()}")


@functools.cache
def controller_id() -> str:
    boot = pidns = "?"
    with contextlib.suppress(OSError), open("/proc/sys/kernel/random/boot_id", encoding="ascii") as f:
        boot = f.read().strip()
    with contextlib.suppress(OSError):
        pidns = os.readlink("/proc/self/ns/pid")
    return hashlib.sha256(f"{boot}|{pidns}".encode()).hexdigest()[:12]


def parse_holder(raw: str) -> LockHolder:
    words = raw.strip().split()
    if not words:
        return LockHolder(raw.strip())
    fields = dict(w.split("=", 1) for w in words[1:] if "=" in w)
    pid = fields.get("pid", "")
    at = fields.get("at", "")
    return LockHolder(raw.strip(), words[0], int(pid) if pid.isdigit() else None, fields.get("run"),
                      int(at) if at.isdigit() else None, fields.get("ctl"))


def liveness(h: LockHolder) -> Liveness:
    if h.controller is None or h.pid is None or h.controller != socket.gethostname() or h.ctl != controller_id():
        return Liveness.UNKNOWN
    started = _process_start(h.pid)
    if started is None:
        return Liveness.DEAD
    # a pid reused by a process born after the lock was taken is not the holder (2 s of clock-tick slack)
    if h.since is not None and started > h.since + 2:
        return Liveness.DEAD
    return Liveness.LIVE


def _process_start(pid: int) -> float | None:
    """Epoch seconds at which `pid` started, or None when there is no such process."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read().decode("ascii", "replace")
    except (FileNotFoundError, ProcessLookupError):
        return None
    except OSError:
        return 0.0  # exists but unreadable: call it alive, never clear a lock on a guess
    try:
        ticks = int(stat.rsplit(")", 1)[1].split()[19])
        with open("/proc/stat", encoding="ascii") as f:
            btime = next(int(line.split()[1]) for line in f if line.startswith("btime "))
        return btime + ticks / os.sysconf("SC_CLK_TCK")
    except (IndexError, ValueError, StopIteration, OSError):
        return 0.0


def _ago(seconds: float) -> str:
    s = max(int(seconds), 0)
    if s < 120:
        return f"{s} s"
    if s < 7200:
        return f"{s // 60} min"
    return f"{s // 3600} h"


def refusal(raw: str) -> str:
    """What to tell the operator when a host's lock is held."""
    h = parse_holder(raw)
    state = liveness(h)
    if state is Liveness.LIVE:
        return f"host is locked by another run that is still going ({h.describe()}); wait for it to finish"
    if state is Liveness.DEAD:
        return (f"host is locked by a run that is no longer alive ({h.describe()}): it was killed; clear the "
                "stale lock with `provision unlock INVENTORY --limit HOST`")  # apply takes such a lock over itself
    return (f"host is locked by another run ({h.describe()}), from a controller this one cannot check; if that run "
            "is dead, clear the lock with `provision unlock INVENTORY --limit HOST --force`")
