"""`provision plan INVENTORY`: what apply would change on every host, shown, saved (--out) or as JSON."""

from __future__ import annotations

import argparse
import os
import sys

from provisioner.apply.fleet import Fleet
from provisioner.apply.planning import offline_causes, plan_session, with_offline_removals
from provisioner.cli.console import (
    EXIT_CHANGES,
    EXIT_ERROR,
    EXIT_OK,
    emit_json,
    error,
    log,
    log_diagnostics,
    note,
    out_style,
)
from provisioner.cli.prepare import prepare
from provisioner.core.changes import Plan
from provisioner.manifest import MANIFEST, ManagedHost, ManifestError, read_manifest
from provisioner.output.ci_formats import plan_markdown
from provisioner.output.plan_view import render_plan
from provisioner.planfile import dumps, plan_json
from provisioner.session import Session


def cmd_plan(args: argparse.Namespace) -> int:
    managed: dict[str, ManagedHost] | None = None
    if args.offline:
        if args.out:
            error("an offline plan cannot be applied, so it is not saved: --out goes with a plan made against the "
                  "hosts")
            return EXIT_ERROR
        if not os.path.isdir(args.offline):
            error(f"--offline {args.offline}: no such directory")
            return EXIT_ERROR
        try:
            managed = read_manifest(args.offline)
        except ManifestError as exc:
            error(str(exc))
            return EXIT_ERROR
        if managed is None:
            log(f"warning: {args.offline} has no render manifest ({MANIFEST}): what the inventory no longer has "
                "(instances, units, mounts, hosts) cannot be seen; render the deployed revision with this version")
    # offline, secrets are compared by where they come from, never by value: CI needs none of them
    session = prepare(args, args.inventory, offline=bool(args.offline), placeholder=bool(args.offline))
    if session is None:
        return EXIT_ERROR
    with Fleet(session.inv, offline_dir=args.offline, forks=args.forks, connect_timeout=args.connect_timeout,
               on_note=note) as fleet:
        plan = make_plan(args, session, fleet)
    if args.offline:
        plan = offline_causes(plan)
    if managed is not None:
        plan = with_offline_removals(plan, session, managed, limited=bool(args.limit))
    if args.out:
        save(plan, args.out)
    if args.json:
        emit_json(plan_json(plan))
    elif args.format == "markdown":
        title = f"provision plan{' (offline, against the deployed render)' if args.offline else ''}"
        sys.stdout.write(plan_markdown(plan, title))
    else:
        sys.stdout.write(render_plan(plan, out_style(args)))
        if args.out:
            log(f"plan saved to {args.out}; apply it with: provision apply {args.out}")
    if plan.has_errors or plan.has_refusals:
        return EXIT_ERROR
    return EXIT_CHANGES if (args.detailed_exitcode and plan.has_changes) else EXIT_OK


def make_plan(args: argparse.Namespace, session: Session, fleet: Fleet) -> Plan:
    """The session's plan; what the hosts cannot take is printed as located diagnostics (stderr)."""
    plan, diags = plan_session(session, fleet)
    log_diagnostics(diags, args)
    return plan


def save(plan: Plan, path: str) -> None:
    """The plan file, mode 0600, written whole."""
    with open(path + ".tmp", "w", encoding="utf-8") as f:
        f.write(dumps(plan))
    os.chmod(path + ".tmp", 0o600)
    os.replace(path + ".tmp", path)
