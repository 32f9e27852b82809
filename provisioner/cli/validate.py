"""`provision validate INVENTORY`: schema, isolation rules and OpenClaw config checks; no network."""

from __future__ import annotations

import argparse
import json
import sys

from provisioner.cli.console import EXIT_ERROR, EXIT_OK, emit_json, log_diagnostics
from provisioner.output.diagnostics import diagnostic_json, summary_line
from provisioner.validate import Validated, validate_file


def cmd_validate(args: argparse.Namespace) -> int:
    v = validate_file(args.inventory, strict=args.strict)
    if args.format in ("github", "sarif"):
        return _ci_format(args, v)
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


def _ci_format(args: argparse.Namespace, v: Validated) -> int:
    """validate --format github|sarif: the diagnostics for a CI system on stdout; the verdict on stderr."""
    from provisioner.cli.parser import tool_version
    from provisioner.output.ci_formats import github_annotations, sarif

    if args.format == "github":
        sys.stdout.write(github_annotations(v.diagnostics))
    else:
        json.dump(sarif(v.diagnostics, tool_version()), sys.stdout, indent=2)
        sys.stdout.write("\n")
    print(f"{args.inventory}: {'valid' if v.ok else 'invalid'}; {summary_line(v.diagnostics)}", file=sys.stderr)
    return EXIT_OK if v.ok else EXIT_ERROR
