"""`provision`: parse the command line, run the chosen command's module, return its exit code."""

from __future__ import annotations

import argparse
import gc
import os
import sys
from collections.abc import Callable, Sequence
from typing import NoReturn

from provisioner.cli.console import EXIT_ERROR, EXIT_INTERRUPTED

Handler = Callable[[argparse.Namespace], int]


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="one JSON document on stdout; logs go to stderr")
    p.add_argument("--no-color", action="store_true", help="no colours (NO_COLOR is honoured too)")
    p.add_argument("-v", "--verbose", action="count", default=0)
    p.add_argument("--limit", action="append", default=[], metavar="PATTERN",
                   help="host, group or host/instance glob; repeatable")


def _strict(p: argparse.ArgumentParser) -> None:
    p.add_argument("--strict", action="store_true",
                   help="a literal secret in an OpenClaw config field that takes a SecretRef is an error")


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="provision",
                                 description="Declarative provisioner for fleets of OpenClaw gateways.")
    sub = ap.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("validate", help="schema + isolation rules + config checks; no network")
    p.add_argument("inventory")
    _strict(p)
    _common(p)

    p = sub.add_parser("render", help="write every host's files under DIR/<host>/<absolute path>")
    p.add_argument("inventory")
    p.add_argument("--out", required=True, metavar="DIR")
    p.add_argument("--placeholder-secrets", action="store_true",
                   help="write where each secret would come from instead of its value")
    _common(p)

    p = sub.add_parser("plan", help="show what apply would change on every host")
    p.add_argument("inventory")
    p.add_argument("--detailed-exitcode", action="store_true", help="exit 2 when changes are pending")
    p.add_argument("--out", metavar="PLANFILE", help="save the plan for `apply PLANFILE`")
    p.add_argument("--offline", metavar="DIR", help="compare against DIR/<host>/... (render --out layout)")
    _strict(p)
    _common(p)

    p = sub.add_parser("apply", help="make the hosts match the inventory (or a saved plan)")
    p.add_argument("target", metavar="INVENTORY|PLANFILE")
    p.add_argument("--yes", "-y", action="store_true", help="do not ask for confirmation")
    p.add_argument("--playbook", metavar="FILE", help="rollout procedure (batches, max_fail)")
    _strict(p)
    _common(p)

    p = sub.add_parser("dedupe", help="the shared inbound-dedupe claim directory")
    dsub = p.add_subparsers(dest="dedupe_command", required=True, metavar="ACTION")
    p = dsub.add_parser("verify", help="prove the claim directory is one shared store across the hosts")
    p.add_argument("inventory")
    _common(p)

    p = sub.add_parser("status", help="health of every instance")
    p.add_argument("inventory")
    p.add_argument("--no-openclaw-status", dest="openclaw_status", action="store_false",
                   help="skip `openclaw gateway status` (it starts node once per instance)")
    p.add_argument("--show-token", metavar="HOST/INSTANCE",
                   help="print that gateway's token (made on the host or from secrets:) and nothing else; said on "
                        "stderr and in the host's journal")
    p.add_argument("--no-doctor", dest="doctor", action="store_false",
                   help="skip OpenClaw's own checks, `openclaw doctor --lint` (node again, once per instance)")
    _common(p)

    p = sub.add_parser("unlock", help="clear a stale lock left on hosts by a killed run")
    p.add_argument("inventory")
    p.add_argument("--force", action="store_true",
                   help="also clear a lock whose run is alive or cannot be checked from this controller")
    _common(p)

    p = sub.add_parser("demo", help="validate, plan, apply and re-plan an example inventory into a local directory")
    p.add_argument("--dir", default="openclaw-demo", help="where the demo inventory and its hosts go")
    _common(p)
    return ap


def handler(command: str) -> Handler:
    """The command's module, imported only when that command runs (start-up time of the others)."""
    if command == "validate":
        from provisioner.cli.validate import cmd_validate
        return cmd_validate
    if command == "render":
        from provisioner.cli.render import cmd_render
        return cmd_render
    if command == "plan":
        from provisioner.cli.plan import cmd_plan
        return cmd_plan
    if command == "apply":
        from provisioner.cli.apply import cmd_apply
        return cmd_apply
    if command == "dedupe":
        from provisioner.cli.dedupe import cmd_dedupe
        return cmd_dedupe
    if command == "status":
        from provisioner.cli.status import cmd_status
        return cmd_status
    if command == "unlock":
        from provisioner.cli.unlock import cmd_unlock
        return cmd_unlock
    if command == "demo":
        from provisioner.cli.demo import cmd_demo
        return lambda args: cmd_demo(args, provision=main)  # demo runs the other commands through main
    raise ValueError(f"unknown command {command!r}")


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command and return its exit code. Without argv this process is the `provision` program (the
    console script and `python -m provisioner.cli`): then the garbage collector is tuned for one short run and the
    process ends here, once its output is flushed, without the interpreter's teardown."""
    program = argv is None
    args = build_parser().parse_args(argv)
    run = handler(args.command)
    if program:
        _tune_gc()
    try:
        rc: int = run(args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        rc = EXIT_INTERRUPTED
    except BrokenPipeError:
        rc = EXIT_ERROR
    if program:
        _end_program(rc)
    return rc


def _tune_gc() -> None:
    # Nearly all of a run's garbage is freed by reference counting; the cyclic collector's passes over every
    # object, the imported modules' ones included, cost a no-op plan 70-80 ms (docs/benchmarks.md, run 3).
    gc.freeze()  # what exists now (modules, classes, functions) lives until the end: never traverse it again
    gc.set_threshold(50_000, 20, 20)  # still collects, so a long apply's cyclic garbage is reclaimed


def _end_program(rc: int) -> NoReturn:
    """Exit once stdout and stderr are flushed. The interpreter's teardown (a last full collection, module
    teardown, the SSH connections' daemon threads) costs ~0.1 s after the output is complete, and nothing of the
    tool's runs at exit: files are closed where they are written and the connections are closed by then."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe (`provision plan | head`) or stream
            rc = rc or EXIT_ERROR
    os._exit(rc)
