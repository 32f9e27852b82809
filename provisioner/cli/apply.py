"""`provision apply INVENTORY|PLANFILE`: show the plan, ask, prove the shared dedupe directory, roll out, report."""

from __future__ import annotations

import argparse
import os
import sys

from provisioner.apply.driver import Rollout, RolloutProgress
from provisioner.apply.fleet import Fleet
from provisioner.apply.planning import saved_plan_problem
from provisioner.apply.results import HostResult, HostStatus
from provisioner.apply.rollout import Playbook, RolloutResult
from provisioner.cli.console import (
    EXIT_ERROR,
    EXIT_INTERRUPTED,
    EXIT_OK,
    emit_json,
    error,
    log,
    log_diagnostics,
    note,
    out_style,
    write_event,
)
from provisioner.cli.dedupe import prove_shared, shared_dir_in_use
from provisioner.cli.plan import make_plan
from provisioner.cli.prepare import prepare
from provisioner.core.changes import Plan
from provisioner.core.diagnostics import ProvisionError
from provisioner.output.plan_view import render_plan
from provisioner.output.progress import ApplyProgress, JsonEventsProgress
from provisioner.output.results import render_results, results_json
from provisioner.planfile import PlanFileError, loads, looks_like_plan, plan_json
from provisioner.playbook import default_playbook, load_playbook
from provisioner.session import Session


def cmd_apply(args: argparse.Namespace) -> int:
    saved: Plan | None = None
    inventory_path = args.target
    try:
        with open(args.target, encoding="utf-8") as f:
            head = f.read()
    except OSError as exc:
        error(f"{exc}")
        return EXIT_ERROR
    if looks_like_plan(head):
        try:
            saved = loads(head)
        except PlanFileError as exc:
            error(f"{args.target}: {exc}")
            return EXIT_ERROR
        inventory_path = saved.inventory_path
    session = prepare(args, inventory_path)
    if session is None:
        return EXIT_ERROR
    if saved is not None:
        problem = saved_plan_problem(saved, session)
        if problem:
            error(f"refusing to apply {args.target}: {problem}")
            return EXIT_ERROR
    playbook = _playbook(args)
    if playbook is None:
        return EXIT_ERROR
    revision = f"inventory {session.inv.sha256[:12]}"
    with Fleet(session.inv, forks=args.forks, connect_timeout=args.connect_timeout, on_note=note) as fleet:
        plan = saved or make_plan(args, session, fleet)
        if not args.json:
            sys.stdout.write(render_plan(plan, out_style(args)))
        if plan.has_errors and saved is None:
            error("some hosts could not be planned; nothing was applied")
            if args.json:
                emit_json({"plan": plan_json(plan), "results": []})
            return EXIT_ERROR
        if not plan.has_changes:
            if args.json:
                nothing = RolloutResult({h.host: HostResult(h.host, HostStatus.UNCHANGED, "no changes")
                                         for h in plan.hosts})
                emit_json({"plan": plan_json(plan), **results_json(nothing, revision)})
            else:
                log("No changes. The hosts match the inventory.")
            return EXIT_OK
        if not args.yes and saved is None and not _confirmed():
            return EXIT_ERROR
        # the shared dedupe directory is proven before it is relied on across hosts (see dedupe/verify.py)
        shared = shared_dir_in_use(session)
        dd = session.inv.dedupe
        if shared and dd is not None and dd.mount is None \
                and not prove_shared(args, session, fleet, "before anything is touched"):
            return EXIT_ERROR
        results = _roll_out(args, session, plan, fleet, playbook, saved=saved is not None)
        proof_ok = True
        if shared and dd is not None and dd.mount is not None and results.ok:
            proof_ok = prove_shared(args, session, fleet, "now that the mounts are in place")
    if args.json:
        emit_json({"plan": plan_json(plan), **results_json(results, revision)})
    else:
        sys.stdout.write(render_results(results, out_style(args), revision))
    if results.interrupted:
        log("interrupted: the report above says where every host stands")
        return EXIT_INTERRUPTED
    return EXIT_OK if results.ok and proof_ok else EXIT_ERROR


def _confirmed() -> bool:
    """Ask on the terminal; only 'yes' goes on."""
    if not sys.stdin.isatty():
        error("refusing to apply without confirmation: no terminal to ask on; pass --yes")
        return False
    answer = input("Apply these changes? Only 'yes' is accepted: ").strip()
    if answer != "yes":
        log("Apply cancelled.")
        return False
    return True


def _playbook(args: argparse.Namespace) -> Playbook | None:
    try:
        return load_playbook(args.playbook) if args.playbook else default_playbook()
    except ProvisionError as exc:
        log_diagnostics(exc.diagnostics, args)
        error(f"{exc}")
        return None


def _roll_out(args: argparse.Namespace, session: Session, plan: Plan, fleet: Fleet, playbook: Playbook, *,
              saved: bool) -> RolloutResult:
    progress: RolloutProgress
    if args.json_events:
        progress = JsonEventsProgress(write_event)
    else:
        progress = ApplyProgress(live=not args.json, quiet=args.json and not args.verbose)
    return Rollout(session, plan, fleet, playbook, progress, stop_now=_stop_now, saved=saved).run()


def _stop_now() -> None:
    """The second Ctrl-C of an apply: leave at once (from the signal handler: a raw write, no buffered I/O)."""
    os.write(2, b"\nsecond interrupt: stopping now. Hosts in flight keep each file whole (old or new) and "
                b"their lock; the next apply takes the stale lock over and restarts what was left pending\n")
    os._exit(EXIT_INTERRUPTED)
