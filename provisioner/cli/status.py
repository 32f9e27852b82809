"""`provision status INVENTORY`: each instance's unit, /healthz, /readyz, `openclaw gateway status` and OpenClaw's
own checks (`openclaw doctor --lint`)."""

from __future__ import annotations

import argparse
import sys

from provisioner.apply.auth import TokenUnavailable, read_token
from provisioner.apply.doctor import DoctorReport, doctor_reports
from provisioner.apply.fleet import Fleet
from provisioner.apply.health import InstanceHealth, host_health
from provisioner.cli.console import EXIT_ERROR, EXIT_OK, emit_json, log, note, out_style
from provisioner.cli.prepare import prepare
from provisioner.inventory.model import Host
from provisioner.output.status_view import render_status, status_json
from provisioner.remote.transport import TransportError
from provisioner.session import Session


def cmd_status(args: argparse.Namespace) -> int:
    session = prepare(args, args.inventory, placeholder=True)  # status never needs secret values
    if session is None:
        return EXIT_ERROR
    inv = session.inv
    if args.show_token:
        return show_token(args, session)
    with Fleet(inv, forks=args.forks, connect_timeout=args.connect_timeout, on_note=note) as fleet:
        raw = fleet.each(session.hosts, lambda h: host_health(
            fleet.transport(h), session.desired[h.name], become=h.ssh.become and h.ssh.user != "root", host=h,
            command=inv.openclaw.run_command if args.openclaw_status and h.connection == "ssh" else ()))
        lint = fleet.each(session.hosts, lambda h: doctor_reports(
            fleet.transport(h), h, inv.openclaw.run_command, become=h.ssh.become and h.ssh.user != "root")
            if args.doctor and h.connection == "ssh" else {})
    rows: list[InstanceHealth] = []
    errors: dict[str, str] = {}
    for h in session.hosts:
        r = raw[h.name]
        if isinstance(r, BaseException):
            errors[h.name] = str(r)
        else:
            rows += r
    doctor = _doctor(session.hosts, lint)
    if args.json:
        emit_json(status_json(rows, errors, doctor))
    else:
        sys.stdout.write(render_status(rows, errors, out_style(args), doctor))
    return EXIT_OK if not errors and all(r.healthy for r in rows if r.known) else EXIT_ERROR


def show_token(args: argparse.Namespace, session: Session) -> int:
    """Print one gateway's token, read on its host; stderr says that it was printed (the host's journal too)."""
    want = args.show_token
    inst = next((i for h in session.hosts for i in h.instances if i.address == want), None)
    if inst is None:
        log(f"--show-token {want}: no such HOST/INSTANCE in the inventory (with --limit applied)")
        return EXIT_ERROR
    host = session.inv.host(inst.host)
    with Fleet(session.inv, forks=args.forks, connect_timeout=args.connect_timeout, on_note=note) as fleet:
        try:
            token = read_token(fleet.transport(host), inst, become=host.ssh.become and host.ssh.user != "root")
        except (TokenUnavailable, TransportError) as exc:
            log(f"--show-token {want}: {exc}")
            return EXIT_ERROR
    if args.json:
        emit_json({"host": inst.host, "instance": inst.name, "token": token})
    else:
        sys.stdout.write(token + "\n")
    log(f"printed the gateway token of {want} on stdout, as asked (--show-token); the host's journal records it")
    return EXIT_OK


def _doctor(hosts: list[Host], lint: dict[str, dict[str, DoctorReport] | BaseException]
            ) -> dict[tuple[str, str], DoctorReport]:
    out = {}
    for h in hosts:
        got = lint.get(h.name, {})
        for i in h.instances:
            if isinstance(got, BaseException):
                out[(h.name, i.name)] = DoctorReport(error=str(got)[:200])
            elif i.name in got:
                out[(h.name, i.name)] = got[i.name]
    return out
