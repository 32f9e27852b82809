"""`provision`: parse the command line, run the chosen command's module, return its exit code."""

from __future__ import annotations

import argparse
import gc
import os
import sys
from collections.abc import Callable, Sequence
from typing import NoReturn

from provisioner.cli.console import EXIT_ERROR, EXIT_INTERRUPTED, begin, end, error, finish_json, json_mode
from provisioner.cli.parser import UsageError, parse

Handler = Callable[[argparse.Namespace], int]


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
    if command == "dedupe verify":
        from provisioner.cli.dedupe import cmd_dedupe
        return cmd_dedupe
    if command == "status":
        from provisioner.cli.status import cmd_status
        return cmd_status
    if command == "backup":
        from provisioner.cli.backup import cmd_backup
        return cmd_backup
    if command == "restore":
        from provisioner.cli.restore import cmd_restore
        return cmd_restore
    if command == "unlock":
        from provisioner.cli.unlock import cmd_unlock
        return cmd_unlock
    if command == "completion":
        from provisioner.cli.completion import cmd_completion
        return cmd_completion
    if command == "demo":
        from provisioner.cli.demo import cmd_demo
        return lambda args: cmd_demo(args, provision=main)  # demo runs the other commands through main
    raise ValueError(f"unknown command {command!r}")


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command and return its exit code. Without argv this process is the `provision` program (the
    console script and `python -m provisioner.cli`): then the garbage collector is tuned for one short run and the
    process ends here, once its output is flushed, without the interpreter's teardown."""
    program = argv is None
    words = list(sys.argv[1:] if argv is None else argv)
    try:
        args = parse(words)
    except UsageError as exc:
        rc = _usage_error(exc, words)
        if program:
            _end_program(rc)
        return rc
    run = handler(args.command)
    if program:
        _tune_gc()
    previous = begin(args.command, json_mode=args.json, events=getattr(args, "json_events", False))
    try:
        rc = _run_command(run, args)
    finally:
        end(previous)
    if program:
        _end_program(rc)
    return rc


def _run_command(run: Handler, args: argparse.Namespace) -> int:
    """The command's exit code; with --json its one document is written at the end, whatever happened."""
    try:
        rc: int = run(args)
    except KeyboardInterrupt:
        error("interrupted")
        rc = EXIT_INTERRUPTED
    except BrokenPipeError:
        return EXIT_ERROR
    except Exception as exc:
        if json_mode():  # stdout still gets its one document; the traceback goes to stderr
            error(f"internal error: {type(exc).__name__}: {exc}")
            finish_json(EXIT_ERROR)
        raise
    try:
        finish_json(rc)
    except BrokenPipeError:
        rc = EXIT_ERROR
    return rc


def _usage_error(exc: UsageError, words: list[str]) -> int:
    """A usage error: the usage of the command it was made in and the message on stderr, exit 1; with --json in
    the words, stdout still gets its one document."""
    sys.stderr.write(exc.usage)
    print(f"{exc.prog}: error: {exc}", file=sys.stderr)
    if "--json" in words or "--json-events" in words:
        begin(exc.prog.removeprefix("provision").strip() or "provision", json_mode=True)
        error(f"usage: {exc}")
        finish_json(EXIT_ERROR)
        end(None)
    return EXIT_ERROR


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
