"""`provision demo [--dir DIR]`: validate, plan, apply and re-plan the embedded demo inventory on local hosts.

Repeatable: a second run finds the hosts already converged (its first plan is then 0, not 2). The demo's secret
is a token file beside the inventory, so that every command printed afterwards works as printed, with nothing
to export. An inventory the user edited is reused, and the demo says so before it applies those edits.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import secrets
import sys
from collections.abc import Callable, Sequence
from importlib import resources

from provisioner.cli.console import EXIT_CHANGES, EXIT_ERROR, EXIT_OK, emit_json, log, no_color

TOKEN_FILE = "rescue.token"


def demo_inventory(token_path: str) -> str:
    """The embedded example, its rescue token read from `token_path` instead of the environment."""
    text = (resources.files("provisioner") / "examples" / "local-demo.yaml").read_text(encoding="utf-8")
    schema = resources.files("provisioner.schemas") / "inventory.schema.json"  # for editors: the installed schema
    text = text.replace("$schema=../schemas/inventory.schema.json", f"$schema={schema}")
    return text.replace("{env: DEMO_RESCUE_TOKEN}", "{file: " + json.dumps(token_path) + "}")


def cmd_demo(args: argparse.Namespace, *, provision: Callable[[Sequence[str]], int]) -> int:
    """Copy the embedded local demo inventory to --dir and run the whole job against local stand-in hosts;
    `provision` runs one command line (the CLI's main, passed in so that this module does not import it)."""
    os.makedirs(args.dir, exist_ok=True)
    inv_path = os.path.join(args.dir, "inventory.yaml")
    token_path = os.path.abspath(os.path.join(args.dir, TOKEN_FILE))
    if not os.path.exists(token_path):
        fd = os.open(token_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(secrets.token_hex(16) + "\n")
    example = demo_inventory(token_path)
    if not os.path.exists(inv_path):
        with open(inv_path, "w", encoding="utf-8") as f:
            f.write(example)
    else:
        with open(inv_path, encoding="utf-8") as f:
            edited = f.read() != example
        log(f"reusing {inv_path}" + (": it differs from the example (your edits), and the apply below applies "
                                     f"them; remove {args.dir} to start over" if edited else " (the example)"))
    os.environ.setdefault("DEMO_RESCUE_TOKEN", "demo-token-not-a-real-secret")  # demo inventories of old versions
    common = ["--no-color"] if no_color(args) else []
    steps = [
        ("validate", ["validate", inv_path, *common]),
        ("plan (first)", ["plan", inv_path, "--detailed-exitcode", *common]),
        ("apply", ["apply", inv_path, "--yes", *common]),
        ("plan (again: expect no changes)", ["plan", inv_path, "--detailed-exitcode", *common]),
    ]
    codes = []
    out = sys.stderr if args.json else sys.stdout  # with --json stdout is the demo's one document
    with contextlib.redirect_stdout(out):
        for title, argv in steps:
            print(f"\n=== provision {' '.join(argv)}    # {title}", flush=True)
            rc = provision(argv)
            print(f"=== exit code {rc}", flush=True)
            codes.append(rc)
            if rc == EXIT_OK and title == "plan (first)":
                print("(no changes: the demo hosts already match the inventory, from an earlier run)")
    expected = [{EXIT_OK}, {EXIT_OK, EXIT_CHANGES}, {EXIT_OK}, {EXIT_OK}]
    failed = [argv for (_, argv), rc, want in zip(steps, codes, expected, strict=True) if rc not in want]
    ok = not failed
    if args.json:
        emit_json({"dir": os.path.abspath(args.dir), "steps": [{"argv": argv, "exit_code": rc}
                                                               for (_, argv), rc in zip(steps, codes, strict=True)]})
    if ok:
        print(f"\ndemo OK: files are under {os.path.abspath(args.dir)}/hosts/; edit {inv_path}, then see the "
              f"diff with:\n  provision plan {inv_path}", file=out)
    else:
        print(f"\ndemo FAILED at `provision {' '.join(failed[0])}` (its output is above)", file=out)
    return EXIT_OK if ok else EXIT_ERROR
