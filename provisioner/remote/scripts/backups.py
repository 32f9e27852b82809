"""Host scripts for backups: OpenClaw's own `backup create --verify` as each instance's service user, reading an
archive back as that user, and removing what a run left.

Every step runs as the service user (trust.py): the archive, its directory and everything around it are that
user's, so root never opens, follows or removes anything the user could have swapped (a link to /etc/shadow
where the archive was, a FIFO, a hard link to a root file): the kernel checks the user's own rights. The
archive's bytes come back on the command's stdout, straight from a `cat` run as the user (not through `ocp_as`,
whose output is text); nothing in them is ever parsed as a result word. What the user side says about the
archive (its name, size, checksum) is data: the name must be one plain file name, and the controller checks
size and checksum on what it received.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from provisioner.inventory.model import Instance
from provisioner.remote.command import q
from provisioner.remote.scripts.openclaw_cli import user_cli_lines
from provisioner.remote.scripts.shell import sh_script
from provisioner.remote.scripts.trust import HELPERS, as_user

HOST_DIR = ".openclaw-provisioner"  # in the service user's home: the tool's user-side working area
ARCHIVE_WORD = "OCP-ARCHIVE"  # user-side line after the CLI's output: `OCP-ARCHIVE <size> <sha256> <name>`
NO_STATE = "OCP-NO-STATE"  # user-side word: the instance has no state dir yet (nothing to back up)
BACKUP_TIMEOUT = 1800  # seconds one `backup create --verify` may take (a large workspace is walked twice)
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,200}\.tar\.gz")
_ARCHIVE_LINE = re.compile(rf"{ARCHIVE_WORD} ([0-9]{{1,15}}) ([0-9a-f]{{64}}) (\S+)")


def run_dir(inst: Instance, run_id: str, kind: str = "backups") -> str:
    """Where one run writes one instance's archive on its host: a directory of the service user's own, outside
    every state dir and workspace (OpenClaw refuses an output inside what it archives)."""
    return f"{inst.service.home.rstrip('/')}/{HOST_DIR}/{kind}/{inst.profile}.{run_id}"


def create_lines(inst: Instance, command: Sequence[str], out_dir: str, root: str = "") -> list[str]:
    """User-side lines: make `out_dir` (0700, new), run `backup create --verify --json --output out_dir` with the
    gateway's environment, then say which archive it wrote (size, sha256, name). No state dir: NO_STATE."""
    d = f'"$R"{q(out_dir)}'
    parent = out_dir.rsplit("/", 1)[0]
    return [
        f'[ -d "$R"{q(inst.state_dir)} ] || {{ echo {NO_STATE}; exit 0; }}',
        "umask 077",
        f'mkdir -p -- "$R"{q(parent)}',
        f"mkdir -m 0700 -- {d}",
        f"cd -- {d}",  # OpenClaw's default output is the working directory; never the state dir
        *user_cli_lines(inst, command, ["backup", "create", "--verify", "--json", "--output", out_dir], root, after=[
            f'for a in {d}/*.tar.gz; do [ -f "$a" ] && [ ! -L "$a" ] || continue; '
            f'printf \'{ARCHIVE_WORD} %s %s %s\\n\' "$(stat -c %s -- "$a")" '
            '"$(sha256sum < "$a" | cut -c1-64)" "${a##*/}"; done',
        ]),
    ]


def create_script(jobs: Sequence[tuple[Instance, str]], command: Sequence[str], root: str = "") -> str:
    """`backup create` for every (instance, output dir) at once, each as its own service user; each one's output
    framed by markers only this root script prints (the framing of openclaw_cli.per_instance_script)."""
    lines = [f"R={q(root)}", f"ocp_limit={BACKUP_TIMEOUT}", HELPERS, "d=$(mktemp -d) || exit 1",
             "trap 'rm -rf -- \"$d\"' EXIT"]
    for i, (inst, out_dir) in enumerate(jobs):
        lines += as_user(inst.service.user, inst.service.group, create_lines(inst, command, out_dir, root), root,
                         then=f'>"$d/{i}.out" 2>"$d/{i}.err" &')
    lines.append("wait")
    for i in range(len(jobs)):
        lines.append(f'echo "@@OCP {i} BEGIN"; cat -- "$d/{i}.out"; echo; echo "@@OCP {i} END"')
        lines.append(f'tail -c 2000 -- "$d/{i}.err" | sed "s/^/[{i}] /" >&2')
    return sh_script(lines, errexit=False)


@dataclass(frozen=True)
class Created:
    """What one instance's `backup create` said."""

    name: str = ""  # the archive's file name in its output dir ("" if none was written)
    size: int = 0
    sha256: str = ""
    verified: bool = False  # OpenClaw's own `verified: true`
    report: dict[str, Any] | None = None  # its JSON result (assets, skipped, ...): paths and counts, no contents
    error: str = ""


def parse_created(text: str) -> Created:
    """One instance's framed output (already without the user prefix): OpenClaw's JSON, then our archive line."""
    if text.strip() == NO_STATE:
        return Created(error=NO_STATE)
    report = _json_doc(text)
    found = [m for m in (_ARCHIVE_LINE.fullmatch(ln.strip()) for ln in text.splitlines()) if m]
    verified = bool(report and report.get("verified") is True)
    if len(found) != 1 or not _NAME.fullmatch(found[0].group(3)):
        tail = " ".join(text.strip().splitlines()[-2:])[-300:]
        why = "no archive was written" if not found else "not exactly one plain archive in its output dir"
        return Created(verified=verified, report=report, error=f"{why}: {_printable(tail) or 'no output'}")
    m = found[0]
    if not verified:
        return Created(m.group(3), int(m.group(1)), m.group(2), False, report,
                       "OpenClaw did not report the archive verified")
    return Created(m.group(3), int(m.group(1)), m.group(2), True, report)


def parse_created_all(text: str, count: int) -> list[Created]:
    from provisioner.remote.scripts.openclaw_cli import split_outputs

    return [parse_created(part) for part in split_outputs(text, count)]


def read_archive_script(user: str, group: str, path: str, root: str = "") -> str:
    """Print the archive's bytes, read by the service user: only a regular file (not a link, FIFO or device),
    with the user's own rights; bounded in time. `root`: a stand-in host's directory (no users there)."""
    check = '[ -f "$1" ] && [ ! -L "$1" ] || { echo "not a regular file: $1" >&2; exit 3; }; exec cat -- "$1"'
    return sh_script([
        f"R={q(root)}",
        f'if [ -n "$R" ]; then set -- "$R"{q(path)}; {check.replace("exec ", "")}; exit 0; fi',
        f"exec timeout -k 5 {BACKUP_TIMEOUT} setpriv --reuid={q(user)} --regid={q(group)} --init-groups "
        f"--no-new-privs --reset-env -- /bin/sh -c {q(check)} sh {q(path)} 8>&-",  # no busy-lock fd for the user
    ])


def remove_dirs_script(jobs: Sequence[tuple[str, str, str]], root: str = "") -> str:
    """Remove each (user, group, dir) a run made, as its user."""
    lines = [f"R={q(root)}", HELPERS]
    for user, group, d in jobs:
        lines += as_user(user, group, [f'rm -rf -- "$R"{q(d)}'], root, then="|| true")
    return sh_script(lines, errexit=False)


def prune_script(insts: Sequence[Instance], keep: int, root: str = "") -> str:
    """As each user: keep the newest `keep` upgrade snapshots of each instance (their names start with a UTC
    stamp, so name order is time order)."""
    lines = [f"R={q(root)}", HELPERS]
    for i in insts:
        d = f'"$R"{q(i.service.home.rstrip("/") + "/" + HOST_DIR + "/upgrades")}'
        lines += as_user(i.service.user, i.service.group, [
            f"[ -d {d} ] || exit 0",
            f"ls -1 -- {d} | grep -E {q('^' + i.profile.replace('.', '[.]') + '[.][0-9]{8}T[0-9]{6}Z$')} "
            f"| LC_ALL=C sort -r | tail -n +{keep + 1} | while IFS= read -r n; do rm -rf -- {d}/\"$n\"; done",
        ], root, then="|| true")
    return sh_script(lines, errexit=False)


def _json_doc(text: str) -> dict[str, Any] | None:
    decoder = json.JSONDecoder()
    for i, c in enumerate(text):
        if c == "{" and (i == 0 or text[i - 1] == "\n"):
            try:
                doc, _ = decoder.raw_decode(text, i)
            except ValueError:
                continue
            if isinstance(doc, dict):
                return doc
    return None


def _printable(s: str) -> str:
    return "".join(c if c.isprintable() else " " for c in s)

