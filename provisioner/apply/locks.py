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
from collections.abc import Callable
from dataclasses import dataclass

from provisioner.remote.connect import run_script
from provisioner.remote.scripts.locks import (
    BUSY,
    HELD,
    LOCKED,
    clear_lock_script,
    lock_then,
    parse_lock_answer,
)
from provisioner.remote.transport import Result, Transport


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


@dataclass(frozen=True)
class Acquired:
    """The outcome of `acquire`: the lock is ours (and `rest` is what the script run under it printed), or not,
    and why in words."""

    ok: bool
    rest: str = ""
    refusal: str = ""
    took_over: str = ""  # set when a killed run's lock was taken over on the way
    result: Result | None = None  # of the script that took the lock (and ran `then`)


def acquire(t: Transport, holder: str, then: str, root: str, *, become: bool, say: Callable[[str], None],
            force: bool = False, take_over: bool = True) -> Acquired:
    """Take the host lock and, in the same round trip, run `then` under it. A lock whose run is provably dead
    (same controller, its process gone) is taken over, after waiting for any script it left on the host: the
    host's files are each whole, old or new, and its pending restarts are marked, so going on is safe."""
    res = run_script(t, lock_then(holder, then, root, force=force), become=become)
    answer = parse_lock_answer(res.text())
    took_over = ""
    if take_over and res.ok and answer.word == HELD and liveness(parse_holder(answer.holder)) is Liveness.DEAD:
        say("taking over the stale lock of a killed run")
        cleared = parse_lock_answer(run_script(t, clear_lock_script(answer.holder, root), become=become,
                                               timeout=90).text())
        if cleared.word == BUSY:
            return Acquired(False, refusal="a killed run's script is still running on the host after 60 s; try "
                            "again when it has finished")
        took_over = f"took over the stale lock of a killed run ({parse_holder(answer.holder).describe()})"
        res = run_script(t, lock_then(holder, then, root), become=become)
        answer = parse_lock_answer(res.text())
    if answer.word == LOCKED:
        return Acquired(True, res.text().partition("\n")[2], took_over=took_over, result=res)
    if answer.word == HELD:
        return Acquired(False, refusal=refusal(answer.holder))
    return Acquired(False, refusal=f"could not take the host lock: {res.err_text()[:300]}")
