"""Open a command's session (provisioner/session.py) and print what opening it said."""

from __future__ import annotations

import argparse

from provisioner.cli.console import error, log_diagnostics
from provisioner.session import Session, open_session


def prepare(args: argparse.Namespace, path: str, *, placeholder: bool = False, offline: bool = False,
            stand_ins: bool = True) -> Session | None:
    """The session of the inventory at `path` with --limit applied; None (and why, on stderr) when there is none.
    The inventory's warnings are printed either way."""
    opened = open_session(path, args.limit, placeholder=placeholder, offline=offline, stand_ins=stand_ins,
                          strict=getattr(args, "strict", False))
    log_diagnostics(opened.diagnostics, args)
    if opened.problem:
        error(opened.problem)
    return opened.session
