"""Scripts that change a host: atomic batched writes with backups, restore, lock, users, systemd actions.

All of them are sh scripts sent on stdin (file contents travel as base64 here-documents, so secrets never
appear in any process's argv on the host) and built only from quoted words.
"""

from __future__ import annotations

import base64
import posixpath
from collections.abc import Sequence
from dataclasses import dataclass

from provisioner.model import DesiredDir, DesiredFile
from provisioner.remote.command import q, sh_script
from provisioner.remote.probe import LOCK_PATH, LOCK_TEXT, PENDING_DIR, PREV_DIR, STATE_DIR

TMP_SUFFIX = ".ocp-tmp"
BUSY_PATH = f"{STATE_DIR}/busy"


def busy_lines(*, wait: float | None = None) -> list[str]:
    """Hold an flock on the busy file for as long as this script runs. A script keeps running on the host
    after its controller is killed; a run taking over a dead run's lock first waits for it to end.

    SIGPIPE is ignored: once the controller is gone sshd has closed the script's stdout, and the first echo
    would otherwise kill the shell outright, between two steps and without running its EXIT trap (seen: temp
    files left behind by a run killed between its writes and its renames)."""
    d, b = f'"$R"{q(STATE_DIR)}', f'"$R"{q(BUSY_PATH)}'
    grab = "flock 8" if wait is None else f"flock -w {wait:g} 8 || {{ echo BUSY; exit 0; }}"
    return ["trap '' PIPE", f"mkdir -p {d}", f"exec 8>>{b}", f"if command -v flock >/dev/null; then {grab}; fi"]


@dataclass(frozen=True)
class WriteBatch:
    files: Sequence[DesiredFile]
    dirs: Sequence[DesiredDir]
    create_user: str | None = None
    user_home: str | None = None
    run_id: str = "run"
    # units to restart once these files are in place: marked pending before the first rename, so that a run
    # cut off between the writes and the restart leaves a mark the next plan turns into a restart
    pending_units: Sequence[str] = ()


def _mark_pending(units: Sequence[str]) -> list[str]:
    if not units:
        return []
    d = f'"$R"{q(PENDING_DIR)}'
    return [f"install -d -m 0700 {d}", "; ".join(f": > {d}/{q(u)}" for u in units)]


def settle_lines(units: Sequence[str]) -> list[str]:
    """Remove the pending marks of units that now run the files on disk."""
    if not units:
        return []
    return ["rm -f --" + "".join(f' "$R"{q(PENDING_DIR + "/" + u)}' for u in units)]


def _heredoc(data: bytes) -> str:
    # '_' is not in the base64 alphabet, so the delimiter cannot occur inside the payload
    b64 = base64.encodebytes(data).decode("ascii")
    return f"<<'__OCP_EOF__'\n{b64}__OCP_EOF__"


def write_script(batch: WriteBatch, root: str = "", *, chown: bool = True) -> str:
    """Phase 1 writes every file to a temp file beside its target and fsyncs it; phase 2 backs up the old
    files and renames all temps into place. A failure in phase 1 leaves every target untouched."""
    temps = [f'"$R"{q(f.path + TMP_SUFFIX + "." + batch.run_id)}' for f in batch.files]
    lines = [
        f"R={q(root)}",
        *busy_lines(),
        # directories (and their missing parents) get 0755 unless chmod says otherwise; only file contents are
        # written under umask 077 (a parent made under 077 was root-only, and the gateway could not reach
        # its state dir beneath it)
        "umask 022",
        # temps are removed on every exit: after phase 2 they are already renamed away
        "cleanup() { rm -f -- " + " ".join(temps) + "; }" if temps else "cleanup() { :; }",
        "trap 'cleanup' EXIT",
        "trap 'exit 130' INT TERM HUP",
    ]
    if batch.create_user and not root:
        u = q(batch.create_user)
        home = q(batch.user_home or f"/home/{batch.create_user}")
        lines.append(f"getent passwd {u} >/dev/null || useradd --system --create-home --home-dir {home} "
                     f"--shell /usr/sbin/nologin --user-group {u}")
    for d in batch.dirs:
        p = f'"$R"{q(d.path)}'
        if d.ensure_only:
            lines.append(f"[ -d {p} ] || install -d -m 0755 {p}")
            continue
        lines.append(f"[ -d {p} ] || mkdir -p {p}")
        lines.append(f"chmod {d.mode:04o} {p}")
        if chown:
            lines.append(f"chown {q(d.owner)}:{q(d.group)} {p}")
    for i, f in enumerate(batch.files):
        p = f'"$R"{q(f.path)}'
        lines.append(f"[ -d \"$(dirname {p})\" ] || install -d -m 0755 \"$(dirname {p})\"")
        lines.append(f"t{i}={temps[i]}")
        lines.append("umask 077")
        lines.append(f"base64 -d > \"$t{i}\" {_heredoc(f.content)}")
        lines.append("umask 022")
        lines.append(f"chmod {f.mode:04o} \"$t{i}\"")
        if chown:
            lines.append(f"chown {q(f.owner)}:{q(f.group)} \"$t{i}\"")
        lines.append(f"sync -- \"$t{i}\" 2>/dev/null || sync")
    # phase 2: back up, then rename; renames within one directory are atomic
    lines += _mark_pending(batch.pending_units)
    for f in batch.files:
        p = f'"$R"{q(f.path)}'
        b = f'"$R"{q(PREV_DIR + f.path)}'
        lines.append(f"install -d -m 0700 \"$(dirname {b})\"")
        lines.append(f"if [ -f {p} ] && [ ! -L {p} ]; then cp -p -- {p} {b}.new && mv -f -- {b}.new {b} "
                     f"&& rm -f -- {b}.absent; else rm -f -- {b}; : > {b}.absent; fi")
    # only from here on may a failure leave some files new: the executor restores from the backups (made just
    # above, by this run) only after this line; before it the backups may be an earlier run's
    lines.append("echo RENAMING || :")  # with its controller gone the script still finishes the renames
    for i, f in enumerate(batch.files):
        lines.append(f'mv -f -- "$t{i}" "$R"{q(f.path)}')
    parents = sorted({posixpath.dirname(f.path) for f in batch.files})
    for parent in parents:
        lines.append(f"sync -- \"$R\"{q(parent)} 2>/dev/null || true")
    lines.append("echo WROTE")
    return sh_script(lines)


def restore_script(paths: Sequence[str], root: str = "", *, pending: Sequence[str] = ()) -> str:
    """Put back the previous version of each path (or remove it when it did not exist before)."""
    lines = [f"R={q(root)}", *busy_lines(), *_mark_pending(pending)]
    for path in paths:
        p = f'"$R"{q(path)}'
        b = f'"$R"{q(PREV_DIR + path)}'
        lines.append(f"if [ -f {b} ]; then cp -p -- {b} {p}{TMP_SUFFIX}.restore && "
                     f"mv -f -- {p}{TMP_SUFFIX}.restore {p}; elif [ -e {b}.absent ]; then rm -f -- {p}; fi")
    lines.append("echo RESTORED")
    return sh_script(lines)


def lock_script(holder: str, root: str = "", *, force: bool = False) -> str:
    """Take the host lock atomically (O_EXCL via noclobber); prints LOCKED or HELD <holder>."""
    lk = f'"$R"{q(LOCK_PATH)}'
    lines = [
        f"R={q(root)}",
        f"mkdir -p \"$R\"{q(STATE_DIR)}",
    ]
    if force:
        lines.append(f"rm -f -- {lk}")
    lines.append(f"if ( set -C; printf '%s\\n' {q(holder)} > {lk} ) 2>/dev/null; then echo LOCKED; "
                 f"else echo \"HELD {LOCK_TEXT}\"; exit 0; fi")
    return sh_script(lines)


def lock_then(holder: str, then: str, root: str = "", *, force: bool = False) -> str:
    """Take the lock and, only if it was taken, go on with another script in the same round trip."""
    return lock_script(holder, root, force=force) + then


def unlock_script(holder: str, root: str = "", *, settled: Sequence[str] = ()) -> str:
    lk = f'"$R"{q(LOCK_PATH)}'
    # only remove the lock we hold: a lock cleared and retaken by someone else stays theirs
    return sh_script([f"R={q(root)}", *settle_lines(settled),
                      f"if [ \"$(head -n1 {lk} 2>/dev/null)\" = {q(holder)} ]; then rm -f -- {lk}; fi",
                      "echo UNLOCKED"])


def read_lock_script(root: str = "") -> str:
    """Prints `HELD <holder>` or `FREE`."""
    lk = f'"$R"{q(LOCK_PATH)}'
    return sh_script([f"R={q(root)}", f"if [ -f {lk} ]; then echo \"HELD {LOCK_TEXT}\"; "
                      "else echo FREE; fi"])


def clear_lock_script(holder: str, root: str = "", *, wait: float = 60) -> str:
    """Remove the lock only if it still holds exactly `holder` (as read before): a lock retaken meanwhile by a
    new run is that run's. First waits for scripts the dead run left running on the host. Prints CLEARED, FREE,
    BUSY or `HELD <the new holder>`."""
    lk = f'"$R"{q(LOCK_PATH)}'
    return sh_script([f"R={q(root)}", *busy_lines(wait=wait), f"if [ ! -f {lk} ]; then echo FREE; "
                      f"elif [ \"{LOCK_TEXT}\" = {q(holder)} ]; then rm -f -- {lk}; "
                      f"echo CLEARED; else echo \"HELD {LOCK_TEXT}\"; fi"])


def systemctl_script(reload: bool, restart: Sequence[str], start: Sequence[str], stop: Sequence[str],
                     remove_units: Sequence[str] = ()) -> str:
    lines = ["R=''", *busy_lines()]
    for u in stop:
        lines.append(f"systemctl disable --now -- {q(u)} || systemctl stop -- {q(u)} || true")
    for path in remove_units:
        b = q(PREV_DIR + path)
        lines.append(f"if [ -f {q(path)} ]; then install -d -m 0700 \"$(dirname {b})\"; mv -f -- {q(path)} {b}; fi")
    if reload or remove_units:
        lines.append("systemctl daemon-reload")
    if restart or start:
        units = " ".join(q(u) for u in (*restart, *start))
        lines.append(f"systemctl enable -- {units} >/dev/null 2>&1 || systemctl enable -- {units}")
    for u in restart:
        lines.append(f"systemctl restart -- {q(u)}")
    for u in start:
        lines.append(f"systemctl restart -- {q(u)}")
    lines.append("echo SYSTEMCTL-OK")
    return sh_script(lines)
