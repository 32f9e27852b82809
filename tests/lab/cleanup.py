"""Tearing the lab down from its recorded state, and proving nothing of it is left (namespaces, processes, mounts)."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from . import netns, procs
from .config import LabConfig

INOTIFY = Path("/proc/sys/fs/inotify/max_user_instances")
NEIGH = Path("/proc/sys/net/ipv4/neigh/default")  # gc_thresh2 (soft) and gc_thresh3 (hard): machine-wide


@dataclass
class Leftovers:
    """Whatever of a lab still exists; empty means clean."""

    namespaces: list[str] = field(default_factory=list)
    processes: list[procs.ProcRecord] = field(default_factory=list)
    cgroup_pids: list[int] = field(default_factory=list)
    mounts: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.namespaces or self.processes or self.cgroup_pids or self.mounts)


def recorded(cfg: LabConfig) -> list[procs.ProcRecord]:
    if not cfg.hosts_dir.is_dir():
        return []
    return [r for d in sorted(cfg.hosts_dir.iterdir()) for r in procs.load(d / "pids.json")]


def stop_host(cfg: LabConfig, name: str, records: Iterable[procs.ProcRecord],
              popen: subprocess.Popen[bytes] | None = None) -> None:
    """Kill one host's recorded processes and everything left in its cgroups, then drop its namespace.

    SIGKILL of the host's PID 1 kills its whole PID namespace at once and frees its mount namespace
    (overlay root, binds, sshfs): there is nothing on the host worth a clean shutdown."""
    records = list(records)
    # init first: killing only nspawn would leave the container's systemd running, orphaned
    for role in ("init", "launcher"):
        procs.signal_alive([r for r in records if r.role == role], 9)
    if popen is not None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            popen.wait(5)
    procs.wait_gone(records, 5)
    for cg in procs.host_cgroups(cfg.cgroup_name, name):
        procs.kill_cgroup(cg)
    netns.delete(cfg.ctl_ns, name, cfg.veth_name(name))


def cleanup(cfg: LabConfig, popens: dict[str, subprocess.Popen[bytes]] | None = None,
            keep_files: bool = False) -> None:
    """Remove every trace of the lab: recorded processes, lab cgroups, namespaces, mounts, sysctl, files.

    Works from the recorded state only (pids.json, cgroup membership, the namespace prefix), so it also
    cleans up after a run that was killed or crashed."""
    popens = popens or {}
    if cfg.hosts_dir.is_dir():
        for d in sorted(cfg.hosts_dir.iterdir()):
            stop_host(cfg, d.name, procs.load(d / "pids.json"), popens.get(d.name))
    # processes of hosts whose records were lost (state dir deleted, a crash mid-start)
    for root in procs.cgroup_roots(cfg.cgroup_name):
        if root.is_dir():
            for cg in root.iterdir():
                if cg.is_dir():
                    procs.kill_cgroup(cg)
            procs.remove_cgroup_tree(root)
    for ns in netns.lab_namespaces(cfg.prefix):
        if ns != cfg.ctl_ns:
            netns.delete(cfg.ctl_ns, ns)
    netns.delete(cfg.ctl_ns, cfg.ctl_ns)
    for m in sorted(mounts_under(cfg.state_dir, all_namespaces=False), key=len, reverse=True):
        subprocess.run(["umount", "-l", m], check=False)
    restore_inotify(cfg)
    restore_neigh(cfg)
    if not keep_files and cfg.state_dir.is_dir():
        _remove_state_files(cfg)


def _remove_state_files(cfg: LabConfig) -> None:
    if mounts_under(cfg.state_dir, all_namespaces=False):
        return  # never rm -rf through a mount point
    for p in cfg.state_dir.iterdir():
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p, ignore_errors=True)
        else:
            p.unlink(missing_ok=True)


def raise_inotify(cfg: LabConfig, systemd_hosts: int) -> None:
    """Each booted systemd holds ~8 inotify instances charged to uid 0; the default 128 stops the ~17th
    container ("Too many open files"). Raise the global limit; remember how to restore it."""
    need = systemd_hosts * 12 + 128
    cur = int(INOTIFY.read_text())
    if cur >= need:
        return
    saved = cfg.state_dir / "inotify.orig"
    orig = saved.read_text().split()[0] if saved.exists() else str(cur)
    INOTIFY.write_text(str(need))
    saved.write_text(f"{orig} {need}\n")


def raise_neigh(cfg: LabConfig, hosts: int) -> None:
    """The ARP table is one for the whole machine, every namespace's entries counted together: each host holds
    one (the control address), the control namespace one per host, the machine's other labs theirs. Past the
    hard limit (1024 by default) new connections fail ("neighbour table overflow"), so a lab of hundreds of
    hosts raises it; remember how to restore it, as for inotify."""
    need = {"gc_thresh2": 2 * hosts + 1024, "gc_thresh3": 4 * hosts + 2048}
    cur = {k: int((NEIGH / k).read_text()) for k in need}
    if all(cur[k] >= need[k] for k in need):
        return
    saved = cfg.state_dir / "neigh.orig"
    orig = saved.read_text().split()[:2] if saved.exists() else [str(cur[k]) for k in need]
    for k in ("gc_thresh3", "gc_thresh2"):  # the hard limit first: the soft one stays below it
        (NEIGH / k).write_text(str(max(cur[k], need[k])))
    saved.write_text(" ".join([*orig, *(str(max(cur[k], need[k])) for k in need)]) + "\n")


def restore_neigh(cfg: LabConfig) -> None:
    saved = cfg.state_dir / "neigh.orig"
    if not saved.exists():
        return
    orig2, orig3, ours2, ours3 = saved.read_text().split()
    for k, orig, ours in (("gc_thresh2", orig2, ours2), ("gc_thresh3", orig3, ours3)):
        if (NEIGH / k).read_text().strip() == ours:  # someone else raised it further since: leave theirs
            (NEIGH / k).write_text(orig)
    saved.unlink()


def restore_inotify(cfg: LabConfig) -> None:
    saved = cfg.state_dir / "inotify.orig"
    if not saved.exists():
        return
    orig, ours = saved.read_text().split()
    if INOTIFY.read_text().strip() == ours:  # someone else raised it further since: leave theirs
        INOTIFY.write_text(orig)
    saved.unlink()


def mounts_under(path: Path, all_namespaces: bool = True) -> list[str]:
    """Mount points at or below `path`, in our mount namespace or (all_namespaces) in any process's."""
    prefix = str(path).rstrip("/")
    sources = [Path("/proc/self/mountinfo")]
    if all_namespaces:
        seen: set[str] = set()
        for entry in os.scandir("/proc"):
            if entry.name.isdigit():
                try:
                    ns = os.readlink(f"/proc/{entry.name}/ns/mnt")
                except OSError:
                    continue
                if ns not in seen:
                    seen.add(ns)
                    sources.append(Path(f"/proc/{entry.name}/mountinfo"))
    found: set[str] = set()
    for src in sources:
        try:
            text = src.read_text()
        except OSError:
            continue
        for line in text.splitlines():
            mp = line.split()[4].replace("\\040", " ")
            if mp == prefix or mp.startswith(prefix + "/"):
                found.add(mp)
    return sorted(found)


def leftovers(cfg: LabConfig, records: Iterable[procs.ProcRecord] = ()) -> Leftovers:
    """What of the lab still exists. `records`: processes recorded before the teardown (it deletes them)."""
    return Leftovers(
        namespaces=netns.lab_namespaces(cfg.prefix),
        processes=[r for r in [*records, *recorded(cfg)] if r.alive()],
        cgroup_pids=[p for root in procs.cgroup_roots(cfg.cgroup_name) for p in procs.cgroup_pids(root)],
        mounts=mounts_under(cfg.state_dir),
    )


def wait_clean(cfg: LabConfig, records: Iterable[procs.ProcRecord], timeout: float = 5) -> Leftovers:
    """Leftovers after up to `timeout` s: a dying namespace's mounts go away asynchronously."""
    deadline = time.monotonic() + timeout
    while True:
        left = leftovers(cfg, records)
        if not left or time.monotonic() >= deadline:
            return left
        time.sleep(0.05)
