"""`provision demo [--dir DIR]`: validate, plan, apply and re-plan the embedded demo inventory on local hosts."""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Callable, Sequence
from importlib import resources

from provisioner.cli.console import EXIT_CHANGES, EXIT_ERROR, EXIT_OK, emit_json, no_color


def cmd_demo(args: argparse.Namespace, *, provision: Callable[[Sequence[str]], int]) -> int:
    """Copy the embedded local demo inventory to --dir and run the whole job against local stand-in hosts;
    `provision` runs one command line (the CLI's main, passed in so that this module does not import it)."""
    os.makedirs(args.dir, exist_ok=True)
    inv_path = os.path.join(args.dir, "inventory.yaml")
    if not os.path.exists(inv_path):
        src = resources.files("provisioner") / "examples" / "local-demo.yaml"
        with open(inv_path, "w", encoding="utf-8") as f:
            f.write(src.read_text(encoding="utf-8"))
    os.environ.setdefault("DEMO_RESCUE_TOKEN", "demo-token-not-a-real-secret")
    common = ["--no-color"] if no_color(args) else []
    steps = [
        ("validate", ["validate", inv_path, *common]),
        ("plan (first)", ["plan", inv_path, "--detailed-exitcode", *common]),
        ("apply", ["apply", inv_path, "--yes", *common]),
        ("plan (again: expect no changes)", ["plan", inv_path, "--detailed-exitcode", *common]),
    ]
    codes = []
    # with --json the steps' own output goes to stderr: stdout is the demo's one document
    with contextlib.redirect_stdout(sys.stderr) if args.json else contextlib.nullcontext():
        for title, argv in steps:
            print(f"\n=== provision {' '.join(argv)}    # {title}", flush=True)
            rc = provision(argv)
            print(f"=== exit code {rc}", flush=True)
            codes.append(rc)
    ok = codes == [EXIT_OK, EXIT_CHANGES, EXIT_OK, EXIT_OK]
    if args.json:
        emit_json({"dir": os.path.abspath(args.dir), "steps": [{"argv": argv, "exit_code": rc}
                                                               for (_, argv), rc in zip(steps, codes, strict=True)]})
    print(f"\ndemo {'OK' if ok else 'FAILED'}: files are under {os.path.abspath(args.dir)}/hosts/; "
          f"try `provision plan {inv_path}` after editing the inventory.", file=sys.stderr if args.json else sys.stdout)
    return EXIT_OK if ok else EXIT_ERROR
