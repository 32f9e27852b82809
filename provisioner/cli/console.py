"""The CLI's console: exit codes, the one JSON document on stdout, colours, and log lines on stderr.

A leaf of the CLI: every command module uses it, and it imports no other module of the CLI.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from provisioner.output.style import Style, stderr_style

if TYPE_CHECKING:  # `provision --help` imports this module: it stays as cheap as the standard library
    from provisioner.core.diagnostics import Diagnostic

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_CHANGES = 2
EXIT_INTERRUPTED = 130  # the shell's code for SIGINT; apply prints where every host stands first


def emit_json(doc: Any) -> None:
    json.dump(doc, sys.stdout, indent=2, sort_keys=False, default=str)
    sys.stdout.write("\n")


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


def log_diagnostics(diags: Iterable[Diagnostic], args: argparse.Namespace) -> None:
    from provisioner.output.diagnostics import format_diagnostic

    style = err_style(args)
    for d in diags:
        log(format_diagnostic(d, style))
