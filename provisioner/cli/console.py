"""The CLI's console: exit codes, the one JSON document on stdout, colours, and log lines on stderr.

A leaf of the CLI: every command module uses it, and it imports no other module of the CLI.

With `--json` a command never prints its document itself: it hands its body to `emit_json`, and `main` writes
exactly one document when the command is over (`finish_json`), on success and on failure alike, with the
envelope described in docs/json.md (format, format_version, command, ok, exit_code, errors, diagnostics).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from provisioner.output.style import Style, stderr_style

if TYPE_CHECKING:  # `provision --help` imports this module: it stays as cheap as the standard library
    from provisioner.core.diagnostics import Diagnostic

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_CHANGES = 2
EXIT_INTERRUPTED = 130  # the shell's code for SIGINT; apply prints where every host stands first

FORMAT_PREFIX = "openclaw-provisioner"
FORMAT_VERSION = "1.0"  # docs/json.md: a new key is a minor step, a key changed or removed a major one


@dataclass
class Run:
    """What one command line has said so far: the JSON body its command handed over, its errors and diagnostics."""

    command: str
    json: bool = False
    events: bool = False  # JSON lines (apply --json-events): the document is the last line, type "result"
    body: dict[str, Any] | None = None
    errors: list[str] = field(default_factory=list)
    diagnostics: list[dict[str, Any]] = field(default_factory=list)


_run: Run | None = None


def begin(command: str, *, json_mode: bool, events: bool = False) -> Run | None:
    """Start the record of one command line; returns the one it replaces (a command run by `demo`)."""
    global _run
    previous, _run = _run, Run(command, json_mode or events, events)
    return previous


def end(previous: Run | None) -> None:
    global _run
    _run = previous


def emit_json(doc: dict[str, Any]) -> None:
    """The command's JSON body; main writes it, inside the envelope, once the command is over."""
    if _run is not None:
        _run.body = doc
    else:  # outside main (a library caller): write it now
        json.dump(doc, sys.stdout, indent=2, default=str)
        sys.stdout.write("\n")


def json_document(run: Run, rc: int) -> dict[str, Any]:
    body = dict(run.body or {})
    doc: dict[str, Any] = {
        "format": body.pop("format", f"{FORMAT_PREFIX}-{run.command.replace(' ', '-')}/1"),
        "format_version": FORMAT_VERSION,
        "command": run.command,
        "ok": rc in (EXIT_OK, EXIT_CHANGES),
        "exit_code": rc,
        "errors": [*run.errors],
        "diagnostics": body.pop("diagnostics", None) or [*run.diagnostics],
    }
    doc.update(body)
    return doc


def finish_json(rc: int) -> None:
    """Write the run's one JSON document (a JSON line with type "result" for --json-events)."""
    if _run is None or not _run.json:
        return
    doc = json_document(_run, rc)
    if _run.events:
        write_event({"type": "result", **doc})
    else:
        json.dump(doc, sys.stdout, indent=2, default=str)
        sys.stdout.write("\n")


def write_event(event: dict[str, Any]) -> None:
    """One JSON line on stdout, flushed at once (apply --json-events)."""
    event.setdefault("timestamp", time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
    sys.stdout.write(json.dumps(event, default=str, separators=(",", ":")) + "\n")
    sys.stdout.flush()


def json_mode() -> bool:
    return _run is not None and _run.json


def no_color(args: argparse.Namespace) -> bool:
    return bool(args.no_color or os.environ.get("NO_COLOR"))


def out_style(args: argparse.Namespace) -> Style:
    """Styling for stdout (plans, reports, tables)."""
    return Style.for_stream(sys.stdout, no_color(args))


def err_style(args: argparse.Namespace) -> Style:
    """Styling for stderr (diagnostics, logs)."""
    return stderr_style(no_color(args))


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def note(host: str, msg: str) -> None:
    """A host's passing news while commands run (a connect retry)."""
    log(f"{host}: {msg}")


def error(msg: str) -> None:
    """An error with no place in the inventory: `error: msg` on stderr, and in the JSON document's errors."""
    if _run is not None:
        _run.errors.append(msg)
    log(f"error: {msg}")


def log_diagnostics(diags: Iterable[Diagnostic], args: argparse.Namespace) -> None:
    from provisioner.output.diagnostics import diagnostic_json, format_diagnostic

    style = err_style(args)
    for d in diags:
        if _run is not None:
            _run.diagnostics.append(diagnostic_json(d))
        log(format_diagnostic(d, style))
