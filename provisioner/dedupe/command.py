"""`provision dedupe verify INVENTORY`: run the shared-store proof and report it (human or JSON)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from provisioner.cli import EXIT_ERROR, EXIT_OK, emit_json, no_color
from provisioner.dedupe.verify import Verification, dedupe_hosts, verify
from provisioner.output.dedupe_view import render_verification, verification_json
from provisioner.output.style import Style


def run_verification(prep: Any, fleet: Any) -> Verification | None:
    """None when the inventory has no dedupe directory in use."""
    hosts = dedupe_hosts(prep.inv, prep.hosts)
    if not hosts:
        return None
    return verify(prep.inv, hosts, fleet.transport, fleet.each)


def cmd_dedupe_verify(args: argparse.Namespace) -> int:
    from provisioner.apply.fleet import Fleet
    from provisioner.commands import _log, _prepare

    args.placeholder_secrets = True
    prep = _prepare(args, args.inventory)
    if prep is None:
        return EXIT_ERROR
    with Fleet(prep.inv) as fleet:
        v = run_verification(prep, fleet)
    if v is None:
        _log("error: no instance uses a dedupe directory (the inventory has no `dedupe:` section, or every "
             "instance sets dedupe: false)")
        return EXIT_ERROR
    if args.json:
        emit_json(verification_json(v))
    else:
        sys.stdout.write(render_verification(v, Style.for_stream(sys.stdout, no_color(args))))
    return EXIT_OK if v.ok else EXIT_ERROR
