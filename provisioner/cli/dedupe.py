"""`provision dedupe verify INVENTORY`: prove the shared claim directory is one store; also a step of apply."""

from __future__ import annotations

import argparse
import sys

from provisioner.apply.fleet import Fleet
from provisioner.cli.console import EXIT_ERROR, EXIT_OK, emit_json, err_style, error, log, note, out_style
from provisioner.cli.prepare import prepare
from provisioner.dedupe.verify import Verification, dedupe_hosts, verify
from provisioner.output.dedupe_view import render_verification, verification_json
from provisioner.session import Session


def cmd_dedupe(args: argparse.Namespace) -> int:
    """`dedupe verify` (its only action)."""
    session = prepare(args, args.inventory, placeholder=True)
    if session is None:
        return EXIT_ERROR
    with Fleet(session.inv, forks=args.forks, connect_timeout=args.connect_timeout, on_note=note) as fleet:
        v = run_verification(session, fleet)
    if v is None:
        error("no instance uses a dedupe directory (the inventory has no `dedupe:` section, or every "
            "instance sets dedupe: false)")
        return EXIT_ERROR
    if args.json:
        emit_json(verification_json(v))
    else:
        sys.stdout.write(render_verification(v, out_style(args)))
    return EXIT_OK if v.ok else EXIT_ERROR


def run_verification(session: Session, fleet: Fleet) -> Verification | None:
    """None when the inventory has no dedupe directory in use."""
    hosts = dedupe_hosts(session.inv, session.hosts)
    if not hosts:
        return None
    return verify(session.inv, hosts, fleet.transport, fleet.each)


def shared_dir_in_use(session: Session) -> bool:
    """Whether more than one selected host uses the dedupe directory (then apply proves it is shared)."""
    return len(dedupe_hosts(session.inv, session.hosts)) > 1


def prove_shared(args: argparse.Namespace, session: Session, fleet: Fleet, when: str) -> bool:
    """Run `dedupe verify` as part of apply; the report goes to stderr so --json stays one document."""
    dd = session.inv.dedupe
    assert dd is not None
    log(f"verifying that {dd.dir} is one shared store across the HA hosts, {when}")
    if not dd.configure_gateway:
        log("note: dedupe.configure_gateway is false: the directory is provisioned and verified, but the gateways "
            "are not told to use it and will NOT coordinate")
    v = run_verification(session, fleet)
    if v is None:
        return True
    log(render_verification(v, err_style(args)).rstrip())
    if not v.ok:
        error(f"{dd.dir} is not proven to be one shared store" + ("; nothing was applied"
                                                                         if dd.mount is None else ""))
    return v.ok
