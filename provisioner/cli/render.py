"""`provision render INVENTORY --out DIR`: every selected host's files under DIR/<host>/<absolute path>."""

from __future__ import annotations

import argparse
import os
from collections.abc import Iterable

from provisioner.cli.console import EXIT_ERROR, EXIT_OK, emit_json, log
from provisioner.cli.prepare import prepare
from provisioner.core.desired import DesiredHost


def cmd_render(args: argparse.Namespace) -> int:
    session = prepare(args, args.inventory, placeholder=args.placeholder_secrets, stand_ins=False)
    if session is None:
        return EXIT_ERROR
    written = write_tree(args.out, session.desired.values())
    if args.json:
        emit_json({"out": args.out, "files": written})
    else:
        log(f"rendered {len(written)} file(s) for {len(session.desired)} host(s) under {args.out}")
    return EXIT_OK


def write_tree(out: str, hosts: Iterable[DesiredHost]) -> list[str]:
    """Write each host's dirs and files under out/<host>/ (each file atomically, with its mode); the paths written."""
    written = []
    for dh in hosts:
        for d in dh.dirs:
            dest = os.path.join(out, dh.name, d.path.lstrip("/"))
            os.makedirs(dest, exist_ok=True)
            if not d.ensure_only:
                os.chmod(dest, d.mode)
        for f in dh.files:
            dest = os.path.join(out, dh.name, f.path.lstrip("/"))
            os.makedirs(os.path.dirname(dest), exist_ok=True)
            tmp = dest + ".tmp"
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "wb") as fh:
                fh.write(f.content)
            os.chmod(tmp, f.mode)
            os.replace(tmp, dest)
            written.append(dest)
    return written
