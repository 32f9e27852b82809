"""CLI: python -m tests.lab up --ssh N --systemd M | down | status | mkbase (run from the repo root, as root)."""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import sys
import time

from . import base, cleanup, procs
from .config import LabConfig
from .harness import Lab, LabError, lock_holder


def cmd_up(args: argparse.Namespace, cfg: LabConfig) -> int:
    t0 = time.monotonic()
    lab = Lab(cfg).open()
    t1 = time.monotonic()
    if args.ssh:
        lab.add_hosts("ssh", args.ssh)
    if args.systemd:
        lab.add_hosts("systemd", args.systemd)
    if args.nas:
        lab.nas()
    t2 = time.monotonic()
    # left running on purpose; the lock is released when this process exits
    for h in sorted(lab.hosts.values(), key=lambda h: h.name):
        print(f"{h.name:10} {h.kind:8} {h.address:12} pid1={h.init_pid}")
    print(f"lab up: prepare {t1 - t0:.1f} s, {len(lab.hosts)} hosts ready in {t2 - t1:.1f} s "
          f"(total {t2 - t0:.1f} s)", file=sys.stderr)
    print(f"try: {' '.join(lab.client_argv(['ssh', '-F', str(cfg.ssh_config), 'HOST', 'hostname']))}",
          file=sys.stderr)
    return 0


def cmd_down(args: argparse.Namespace, cfg: LabConfig) -> int:
    records = cleanup.recorded(cfg)
    t0 = time.monotonic()
    Lab.teardown(cfg)
    left = cleanup.wait_clean(cfg, records)
    print(f"lab down in {time.monotonic() - t0:.1f} s; leftovers: {left if left else 'none'}", file=sys.stderr)
    return 1 if left else 0


def cmd_status(args: argparse.Namespace, cfg: LabConfig) -> int:
    inv = cfg.state_dir / "inventory.json"
    hosts = json.loads(inv.read_text())["hosts"] if inv.exists() else []
    for h in hosts:
        recs = procs.load(cfg.hosts_dir / h["name"] / "pids.json")
        state = "up" if recs and all(r.alive() for r in recs) else "DOWN"
        print(f"{h['name']:10} {h['kind']:8} {h['address']:12} {state}")
    left = cleanup.leftovers(cfg)
    print(f"state dir {cfg.state_dir}; base {'ready' if base.is_ready(cfg.base_dir) else 'missing'} "
          f"({cfg.base_dir}); clients: ip netns exec {cfg.ctl_ns} ...")
    print(f"namespaces: {left.namespaces}; processes in lab cgroups: {len(left.cgroup_pids)}; "
          f"mounts under state dir (any namespace): {len(left.mounts)}")
    print(f"lock: {lock_holder(cfg) or 'free'}")
    return 0


def cmd_mkbase(args: argparse.Namespace, cfg: LabConfig) -> int:
    try:
        path = base.ensure_base(cfg, force=args.force)
    except base.BaseError as exc:
        raise LabError(str(exc)) from exc
    print(f"base ready: {path}", file=sys.stderr)
    return 0


def cmd_reap(args: argparse.Namespace, cfg: LabConfig) -> int:
    """Watchdog of a test run: stdin is a pipe from it; EOF means the run ended, cleanly or not."""
    while os.read(0, 4096):
        pass
    owner = cfg.state_dir / "owner.json"

    def owned() -> bool:
        try:
            return bool(json.loads(owner.read_text()).get("run_id") == args.run_id)
        except (OSError, ValueError):
            return False

    if not owned():  # a clean close removes owner.json before closing the pipe
        return 0
    fd = os.open(cfg.lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    fcntl.flock(fd, fcntl.LOCK_EX)  # the dead run's lock went with it
    if owned():
        print(f"lab: run {args.run_id} ended without closing its lab; tearing it down", file=sys.stderr)
        cleanup.cleanup(cfg)
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tests.lab", description=__doc__)
    sub = p.add_subparsers(dest="cmd", required=True)
    up = sub.add_parser("up", help="start hosts and leave them running (replaces any earlier lab)")
    up.add_argument("--ssh", type=int, default=3, help="plain sshd hosts (default 3)")
    up.add_argument("--systemd", type=int, default=2, help="systemd-nspawn hosts (default 2)")
    up.add_argument("--nas", action="store_true", help="also start the sshfs exporter host")
    sub.add_parser("down", help="stop everything the lab recorded; remove its namespaces and state")
    sub.add_parser("status", help="hosts, namespaces, processes and mounts of the lab")
    mk = sub.add_parser("mkbase", help="build the base rootfs if missing")
    mk.add_argument("--force", action="store_true", help="rebuild even if present")
    reap = sub.add_parser("reap", help=argparse.SUPPRESS)
    reap.add_argument("--run-id", required=True)
    args = p.parse_args(argv)
    cfg = LabConfig.from_env()
    handlers = {"up": cmd_up, "down": cmd_down, "status": cmd_status, "mkbase": cmd_mkbase, "reap": cmd_reap}
    try:
        return handlers[args.cmd](args, cfg)
    except LabError as exc:
        print(f"lab: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
