"""`provision restore ARCHIVE HOST/INSTANCE`: put an instance's `provision backup` archive onto a host of the
inventory (provisioner/apply/restore.py), e.g. to move it off a failing host."""

from __future__ import annotations

import argparse
import os
import sys

from provisioner.apply.backups import backup_command
from provisioner.apply.fleet import Fleet
from provisioner.apply.restore import RestoreError, restore_instance
from provisioner.cli.console import EXIT_ERROR, EXIT_OK, emit_json, error
from provisioner.cli.prepare import prepare
from provisioner.output.progress import ApplyProgress
from provisioner.remote.transport import TransportError


def cmd_restore(args: argparse.Namespace) -> int:
    session = prepare(args, args.inventory, placeholder=True)  # nothing of the inventory's secrets is written
    if session is None:
        return EXIT_ERROR
    inst = next((i for h in session.hosts for i in h.instances if i.address == args.target), None)
    if inst is None or not inst.port:
        error(f"{args.target}: no such HOST/INSTANCE with a gateway in the inventory (with --limit applied)")
        return EXIT_ERROR
    if not os.path.isfile(args.archive):
        error(f"{args.archive}: no such archive")
        return EXIT_ERROR
    host = session.inv.host(inst.host)
    say = ApplyProgress(live=False)
    with Fleet(session.inv) as fleet:
        try:
            done = restore_instance(fleet.transport(host), session.desired[host.name], inst, args.archive,
                                    backup_command(session.inv), say,
                                    become=host.ssh.become and host.ssh.user != "root")
        except (RestoreError, TransportError) as exc:
            error(str(exc))
            return EXIT_ERROR
    if args.json:
        emit_json(done.as_json())
    else:
        sys.stdout.write(f"{done.target}: restored from {done.archive} in {done.seconds:.0f} s; "
                         f"{'ready' if done.ready else 'NOT READY'}; its previous state dir is {done.aside}\n")
    return EXIT_OK if done.ready else EXIT_ERROR
