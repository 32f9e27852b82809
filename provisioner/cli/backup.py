"""`provision backup INVENTORY [--out DIR] [--keep N]`: OpenClaw's own verified archive of every instance, pulled
to the controller (provisioner/apply/backups.py)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from provisioner.apply.backups import Backup, backup_command, backup_host, private_dir
from provisioner.apply.fleet import Fleet
from provisioner.cli.console import EXIT_ERROR, EXIT_OK, emit_json, note, out_style
from provisioner.cli.prepare import prepare
from provisioner.output.backup_view import backup_json, render_backups
from provisioner.output.progress import ApplyProgress


def cmd_backup(args: argparse.Namespace) -> int:
    session = prepare(args, args.inventory, placeholder=True)  # a backup needs no secret values
    if session is None:
        return EXIT_ERROR
    out = private_dir(Path(args.out).expanduser().absolute())
    command = backup_command(session.inv)
    say = ApplyProgress(live=False, quiet=False)
    with Fleet(session.inv, forks=args.forks, connect_timeout=args.connect_timeout, on_note=note) as fleet:
        raw = fleet.each(session.hosts, lambda h: backup_host(
            fleet.transport(h), h, command, out, args.keep, say, become=h.ssh.become and h.ssh.user != "root"))
    rows: list[Backup] = []
    errors: dict[str, str] = {}
    for h in session.hosts:
        r = raw[h.name]
        if isinstance(r, BaseException):
            errors[h.name] = str(getattr(r, "detail", None) or r)
        else:
            rows += r
    if args.json:
        emit_json(backup_json(rows, errors, str(out)))
    else:
        sys.stdout.write(render_backups(rows, errors, out_style(args)))
    return EXIT_OK if not errors and all(b.ok for b in rows) else EXIT_ERROR
