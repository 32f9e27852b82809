"""`provision render INVENTORY --out DIR`: every selected host's files under DIR/<host>/<absolute path>.

Secrets are not written unless --with-secrets: an env file holds where each secret comes from
(`<secret from env NAME>`), which is what an offline plan compares (CI holds no production secrets). DIR gets
a manifest of what the tool manages per host (provisioner/manifest.py). A DIR that is not empty must be an
earlier render (it has a manifest): its tree is replaced whole, so nothing of the earlier revision stays
behind; any other non-empty directory is refused.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
from collections.abc import Iterable

from provisioner.cli.console import EXIT_ERROR, EXIT_OK, emit_json, error, log
from provisioner.cli.prepare import prepare
from provisioner.core.desired import DesiredHost
from provisioner.manifest import MANIFEST, manifest_json


def cmd_render(args: argparse.Namespace) -> int:
    out = os.path.normpath(args.out)
    problem = _unfit(out)
    if problem:
        error(problem)
        return EXIT_ERROR
    session = prepare(args, args.inventory, placeholder=not args.with_secrets, stand_ins=False)
    if session is None:
        return EXIT_ERROR
    replaced = os.path.isdir(out) and bool(os.listdir(out))
    tmp = f"{os.path.abspath(out)}.render-{os.getpid()}"  # beside `out`, never inside it (`--out .`)
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    written = write_tree(tmp, session.desired.values())
    with open(os.path.join(tmp, MANIFEST), "w", encoding="utf-8") as f:
        json.dump(manifest_json(session.inv.path, session.inv.sha256, session.desired), f, indent=2)
        f.write("\n")
    _swap_in(tmp, out)
    written = [os.path.join(out, os.path.relpath(p, tmp)) for p in written]
    if args.json:
        emit_json({"out": args.out, "replaced": replaced, "manifest": os.path.join(out, MANIFEST), "files": written})
    else:
        log(f"rendered {len(written)} file(s) for {len(session.desired)} host(s) under {args.out}"
            + (" (the earlier render there was replaced)" if replaced else ""))
    return EXIT_OK


def _unfit(out: str) -> str | None:
    """Why `out` may not receive a render, or None: it must be missing, empty, or an earlier render."""
    if not os.path.lexists(out):
        return None
    if os.path.islink(out) or not os.path.isdir(out):
        return f"--out {out}: exists and is not a directory"
    if os.listdir(out) and not os.path.isfile(os.path.join(out, MANIFEST)):
        return (f"--out {out}: the directory is not empty and is not an earlier render (it has no {MANIFEST}); "
                "refusing to mix a render into it: give an empty or new directory")
    return None


def _swap_in(tmp: str, out: str) -> None:
    """Put the finished render at `out`, the earlier one (if any) removed whole."""
    if os.path.isdir(out):
        old = f"{os.path.abspath(out)}.old-{os.getpid()}"
        try:
            os.rename(out, old)
        except OSError:  # `out` cannot be renamed (the working directory, a mount point): empty it in place
            for name in os.listdir(out):
                p = os.path.join(out, name)
                shutil.rmtree(p) if os.path.isdir(p) and not os.path.islink(p) else os.unlink(p)
            for name in os.listdir(tmp):
                os.rename(os.path.join(tmp, name), os.path.join(out, name))
            os.rmdir(tmp)
            return
        os.rename(tmp, out)
        shutil.rmtree(old)
    else:
        os.rename(tmp, out)


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
