"""`provision status INVENTORY`: each instance's unit, /healthz, /readyz and `openclaw gateway status`."""

from __future__ import annotations

import argparse
import sys

from provisioner.apply.fleet import Fleet
from provisioner.apply.health import InstanceHealth, host_health
from provisioner.cli.console import EXIT_ERROR, EXIT_OK, emit_json, out_style
from provisioner.cli.prepare import prepare
from provisioner.output.status_view import render_status, status_json


def cmd_status(args: argparse.Namespace) -> int:
    session = prepare(args, args.inventory, placeholder=True)  # status never needs secret values
    if session is None:
        return EXIT_ERROR
    inv = session.inv
    with Fleet(inv) as fleet:
        raw = fleet.each(session.hosts, lambda h: host_health(
            fleet.transport(h), session.desired[h.name], become=h.ssh.become and h.ssh.user != "root", host=h,
            command=inv.openclaw.run_command if args.openclaw_status and h.connection == "ssh" else ()))
    rows: list[InstanceHealth] = []
    errors: dict[str, str] = {}
    for h in session.hosts:
        r = raw[h.name]
        if isinstance(r, BaseException):
            errors[h.name] = str(r)
        else:
            rows += r
    if args.json:
        emit_json(status_json(rows, errors))
    else:
        sys.stdout.write(render_status(rows, errors, out_style(args)))
    return EXIT_OK if not errors and all(r.healthy for r in rows) else EXIT_ERROR
