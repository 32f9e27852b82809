"""`provision validate INVENTORY`: schema, isolation rules and OpenClaw config checks; no network."""

from __future__ import annotations

import argparse

from provisioner.cli.console import EXIT_ERROR, EXIT_OK, emit_json, log_diagnostics
from provisioner.output.diagnostics import diagnostic_json, summary_line
from provisioner.validate import validate_file


def cmd_validate(args: argparse.Namespace) -> int:
    v = validate_file(args.inventory, strict=args.strict)
    if args.json:
        emit_json({"inventory": args.inventory, "valid": v.ok,
                   "summary": {"errors": len(v.errors), "warnings": len(v.diagnostics) - len(v.errors)},
                   "diagnostics": [diagnostic_json(d) for d in v.diagnostics]})
    else:
        log_diagnostics(v.diagnostics, args)
        if v.ok:
            inv = v.inventory
            assert inv is not None
            n = sum(len(h.instances) for h in inv.hosts)
            print(f"{args.inventory}: valid ({len(inv.hosts)} host(s), {n} instance(s), OpenClaw "
                  f"{inv.openclaw.version}); {summary_line(v.diagnostics)}")
        else:
            print(f"{args.inventory}: invalid; {summary_line(v.diagnostics)}")
    return EXIT_OK if v.ok else EXIT_ERROR
