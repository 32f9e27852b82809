"""`provision backup`: OpenClaw's own verified archive of every selected instance, pulled to the controller.

Per host (hosts in parallel, one connection each): `openclaw backup create --verify` for all its instances at
once, each as its service user with the gateway's environment (remote/scripts/backups.py); then each archive is
read back as that user and streamed into a file on the controller, checked against the size and sha256 the host
side reported, and the host's copy is removed (nothing is left on the hosts). On the controller:
`OUT/<host>/<instance>/<archive>.tar.gz` (0600, directories 0700: the archive holds the instance's secrets) and
`<archive>.tar.gz.json` beside it (host, instance, size, sha256, when). `keep` newest archives per instance stay.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO

from provisioner.apply.results import Progress
from provisioner.inventory.model import Host, Instance, Inventory
from provisioner.remote.connect import run_script, transport_root
from provisioner.remote.scripts.backups import (
    NO_STATE,
    create_script,
    parse_created_all,
    read_archive_script,
    remove_dirs_script,
    run_dir,
)
from provisioner.remote.transport import Transport, TransportError

SIDE = ".json"  # the sidecar beside each archive on the controller


@dataclass
class Backup:
    """One instance's backup in this run."""

    host: str
    instance: str
    ok: bool = False
    path: str = ""  # on the controller
    size: int = 0
    sha256: str = ""
    seconds: float = 0.0
    error: str = ""
    pruned: list[str] = field(default_factory=list)  # older archives of this instance removed by --keep

    def as_json(self) -> dict[str, Any]:
        return {"host": self.host, "instance": self.instance, "ok": self.ok, "path": self.path or None,
                "size": self.size, "sha256": self.sha256 or None, "seconds": round(self.seconds, 1),
                "error": self.error or None, "pruned": self.pruned}


def backup_command(inv: Inventory) -> tuple[str, ...]:
    """The OpenClaw that runs the backup: the release the host runs now (`<prefix>/current`) when the tool installs
    releases, since the inventory's version may not be on the host yet; else the inventory's command."""
    if inv.openclaw.install is not None:
        return (f"{inv.openclaw.install.prefix}/current/bin/openclaw",)
    return inv.openclaw.command


def backup_host(t: Transport, host: Host, command: Sequence[str], out: Path, keep: int | None, say: Progress,
                *, become: bool = False) -> list[Backup]:
    """Back up every instance of `host` (as selected) and pull the archives into `out`."""
    insts = [i for i in host.instances if i.port]
    if not insts:
        return []
    root = transport_root(t)
    run_id = f"{datetime.now(UTC).strftime('%Y%m%dT%H%M%SZ')}-{uuid.uuid4().hex[:6]}"
    jobs = [(i, run_dir(i, run_id)) for i in insts]
    say(host.name, f"openclaw backup create --verify: {', '.join(i.name for i in insts)}")
    t0 = time.monotonic()
    results = [Backup(host.name, i.name) for i in insts]
    try:
        res = run_script(t, create_script(jobs, command, root), become=become, timeout=BACKUP_WAIT)
        created = parse_created_all(res.text(), len(insts))
        took = time.monotonic() - t0
        for b, (inst, d), c in zip(results, jobs, created, strict=True):
            b.seconds = took
            if c.error:
                b.error = "no state dir on the host yet (never started?)" if c.error == NO_STATE else \
                    f"backup create: {c.error}"
                continue
            say(host.name, f"{inst.name}: pulling {c.name} ({c.size / 1e3:.0f} kB)")
            _pull(t, inst, f"{d}/{c.name}", c.size, c.sha256, out, b, root, become)
    finally:
        with contextlib.suppress(TransportError):  # a lost connection must not hide what was pulled
            run_script(t, remove_dirs_script([(i.service.user, i.service.group, d) for i, d in jobs], root),
                       become=become)
    if keep:
        for b in results:
            if b.ok:
                b.pruned = prune(out / host.name / b.instance, keep)
    return results


BACKUP_WAIT = 1900.0  # seconds the create script may take in all: its user-side steps are bounded by 1800


def _pull(t: Transport, inst: Instance, remote: str, size: int, sha: str, out: Path, b: Backup, root: str,
          become: bool) -> None:
    d = private_dir(out / inst.host / inst.name)
    name = remote.rsplit("/", 1)[1]
    final = d / name
    part = d / f".{name}.part"
    with contextlib.suppress(FileNotFoundError):
        part.unlink()
    fd = os.open(part, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "wb") as raw:
        sink = _Hashing(raw)
        try:
            res = run_script(t, read_archive_script(inst.service.user, inst.service.group, remote, root),
                             become=become, timeout=BACKUP_WAIT, sink=sink)
        except TransportError as exc:
            part.unlink(missing_ok=True)
            b.error = f"pulling {name}: {exc.detail}"
            return
    got = sink.digest.hexdigest()
    if not res.ok or sink.size != size or got != sha:
        part.unlink(missing_ok=True)
        why = res.err_text()[-300:] if not res.ok else f"received {sink.size} bytes, sha256 {got[:12]}; the " \
            f"host said {size} bytes, sha256 {sha[:12]}"
        b.error = f"pulling {name}: {why}"
        return
    os.replace(part, final)
    b.ok, b.path, b.size, b.sha256 = True, str(final), size, sha
    side = {"host": inst.host, "instance": inst.name, "profile": inst.profile, "state_dir": inst.state_dir,
            "archive": name, "size": size, "sha256": sha,
            "pulled_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")}
    _write_private(d / (name + SIDE), json.dumps(side, indent=2) + "\n")


def private_dir(d: Path) -> Path:
    """`d` and the directories above it that this makes, 0700; an existing `d` is made 0700 too."""
    d.mkdir(mode=0o700, parents=True, exist_ok=True)
    for p in (d, d.parent, d.parent.parent):
        with contextlib.suppress(OSError):
            if p.owner() == _me():
                p.chmod(0o700)
    return d


def _me() -> str:
    import pwd

    return pwd.getpwuid(os.getuid()).pw_name


def _write_private(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def prune(d: Path, keep: int) -> list[str]:
    """Keep the `keep` newest archives in an instance's directory (by the time they were pulled); remove the rest
    with their sidecars. Returns what was removed."""
    archives = sorted((p for p in d.glob("*.tar.gz") if p.is_file() and not p.is_symlink()),
                      key=lambda p: (p.stat().st_mtime, p.name), reverse=True)
    gone = []
    for p in archives[keep:]:
        p.unlink(missing_ok=True)
        p.with_name(p.name + SIDE).unlink(missing_ok=True)
        gone.append(str(p))
    return gone


class _Hashing:
    """A sink that writes through and keeps the sha256 and size of what passed."""

    def __init__(self, raw: BinaryIO) -> None:
        self.raw = raw
        self.digest = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> int:
        self.digest.update(data)
        self.size += len(data)
        return self.raw.write(data)
