"""`provision unlock INVENTORY [--force]`: clear host locks left by a killed run, saying who held each one."""

from __future__ import annotations

import argparse

from provisioner.apply.fleet import Fleet
from provisioner.apply.unlock import unlock_host
from provisioner.cli.console import EXIT_ERROR, EXIT_OK, log, note
from provisioner.cli.prepare import prepare


def cmd_unlock(args: argparse.Namespace) -> int:
    """A lock whose run is alive (or cannot be checked from this controller) stays unless --force."""
    session = prepare(args, args.inventory, placeholder=True)
    if session is None:
        return EXIT_ERROR
    with Fleet(session.inv, forks=args.forks, connect_timeout=args.connect_timeout, on_note=note) as fleet:
        raw = fleet.each(session.hosts, lambda h: unlock_host(
            fleet.transport(h), become=h.ssh.become and h.ssh.user != "root", force=args.force))
    ok = True
    for name, r in raw.items():
        if isinstance(r, BaseException):
            ok = False
            log(f"{name}: {getattr(r, 'detail', None) or r}")
        else:
            ok = ok and r[0]
            log(f"{name}: {r[1]}")
    return EXIT_OK if ok else EXIT_ERROR
