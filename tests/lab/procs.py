"""Recorded lab processes: PID + start time records, signalling only what was recorded, per-host cgroups."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path


@dataclass(frozen=True)
class ProcRecord:
    """A process the lab started. The start time guards against signalling a recycled PID."""

    pid: int
    start: int  # /proc/<pid>/stat field 22, clock ticks since boot
    role: str  # "launcher" (unshare / systemd-nspawn) or "init" (the host's PID 1)

    def alive(self) -> bool:
        return start_time(self.pid) == self.start


def start_time(pid: int) -> int | None:
    """Start time of a live (not zombie) process, None if there is none with that PID."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # comm (field 2) may contain spaces and parentheses: split after the last ')'
    fields = stat[stat.rindex(")") + 2:].split()
    if fields[0] in ("Z", "X"):  # exited, only waiting to be reaped: nothing left to signal
        return None
    return int(fields[19])


def record(pid: int, role: str) -> ProcRecord:
    st = start_time(pid)
    if st is None:
        raise ProcessLookupError(pid)
    return ProcRecord(pid, st, role)


def save(path: Path, records: Iterable[ProcRecord]) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps([asdict(r) for r in records]))
    tmp.rename(path)


def load(path: Path) -> list[ProcRecord]:
    try:
        return [ProcRecord(**r) for r in json.loads(path.read_text())]
    except (OSError, ValueError, TypeError):
        return []


def signal_alive(records: Iterable[ProcRecord], sig: int) -> list[ProcRecord]:
    """Send `sig` to the records still alive (same PID *and* start time); return those."""
    hit = []
    for r in records:
        if r.alive():
            try:
                os.kill(r.pid, sig)
                hit.append(r)
            except ProcessLookupError:
                pass
    return hit


def wait_gone(records: Iterable[ProcRecord], timeout: float) -> list[ProcRecord]:
    """Wait until none of `records` is alive; return the ones still alive at the deadline."""
    pending = list(records)
    deadline = time.monotonic() + timeout
    while True:
        pending = [r for r in pending if r.alive()]
        if not pending or time.monotonic() >= deadline:
            return pending
        time.sleep(0.02)


def find_ns_init(parent: int, timeout: float) -> int:
    """PID (in our namespace) of the first descendant of `parent` that is PID 1 of its own PID namespace."""
    deadline = time.monotonic() + timeout
    while True:
        for pid in _descendants(parent):
            try:
                status = Path(f"/proc/{pid}/status").read_text()
            except OSError:
                continue
            nspid = next((ln.split()[1:] for ln in status.splitlines() if ln.startswith("NSpid:")), [])
            if len(nspid) >= 2 and nspid[-1] == "1":
                return pid
        if start_time(parent) is None:
            raise RuntimeError(f"launcher {parent} exited before its host's PID 1 appeared")
        if time.monotonic() >= deadline:
            raise TimeoutError(f"no PID-namespace init below {parent} after {timeout} s")
        time.sleep(0.01)


def _descendants(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry.name}/stat").read_text()
        except OSError:
            continue
        ppid = int(stat[stat.rindex(")") + 2:].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    out, todo = [], [root]
    while todo:
        for c in children.get(todo.pop(), []):
            out.append(c)
            todo.append(c)
    return out


# ---- cgroups ---------------------------------------------------------------------------------------------
# Each host's launcher runs in its own cgroup <hierarchy>/ocp-lab/<host>. systemd-nspawn --keep-unit needs
# that (it creates supervisor/ and payload/ inside the caller's cgroup; started from a shared cgroup every
# container would share one payload/), and cleanup can find every process of a host through it even if
# the PID records are lost.

def cgroup_roots(name: str) -> list[Path]:
    """The lab's cgroup directory `name` in each hierarchy that matters (v1 hybrid: name=systemd + unified)."""
    fs = Path("/sys/fs/cgroup")
    if (fs / "cgroup.controllers").exists():  # pure cgroup v2
        return [fs / name]
    return [fs / h / name for h in ("systemd", "unified") if (fs / h).is_dir()]


def host_cgroups(name: str, host: str) -> list[Path]:
    return [root / host for root in cgroup_roots(name)]


def cgroup_pids(cg: Path) -> list[int]:
    pids: list[int] = []
    if not cg.is_dir():
        return pids
    for dirpath, _dirs, _files in os.walk(cg):
        with contextlib.suppress(OSError):
            pids += [int(p) for p in Path(dirpath, "cgroup.procs").read_text().split()]
    return pids


def kill_cgroup(cg: Path) -> None:
    """SIGKILL every process still in `cg` (they were all started by the lab) and remove the cgroup tree."""
    for _ in range(50):
        pids = cgroup_pids(cg)
        if not pids:
            break
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.02)
    remove_cgroup_tree(cg)


def remove_cgroup_tree(cg: Path) -> None:
    if not cg.is_dir():
        return
    # depth first: a cgroup directory can only be removed once it has no children
    for dirpath, _dirs, _files in sorted(os.walk(cg), key=lambda t: -t[0].count("/")):
        with contextlib.suppress(OSError):
            os.rmdir(dirpath)
