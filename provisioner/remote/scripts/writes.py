"""Scripts that change files on a host: atomic batched writes with backups, restore, users, pending-restart marks.

All of them are sh scripts sent on stdin (file contents travel as base64 here-documents, so secrets never
appear in any process's argv on the host) and built only from quoted words.
"""

from __future__ import annotations

import base64
import posixpath
from collections.abc import Sequence
from dataclasses import dataclass

from provisioner.core.desired import DesiredDir, DesiredFile, DesiredToken
from provisioner.remote.command import q
from provisioner.remote.scripts.probe import APPLIED_PATH, PENDING_DIR, PREV_DIR, STATE_DIR
from provisioner.remote.scripts.shell import sh_script
from provisioner.remote.scripts.tokens import ensure_token_lines
from provisioner.remote.scripts.trust import BACKUP_DIR, HELPERS, REFUSED, as_user, safe_lines

TMP_SUFFIX = ".ocp-tmp"
BUSY_PATH = f"{STATE_DIR}/busy"
BUSY = "BUSY"  # what a script prints when a dead run's script still holds the host (busy_lines with a wait)


def busy_lines(*, wait: float | None = None) -> list[str]:
    """Hold an flock on the busy file for as long as this script runs. A script keeps running on the host
    after its controller is killed; a run taking over a dead run's lock first waits for it to end.

    SIGPIPE is ignored: once the controller is gone sshd has closed the script's stdout, and the first echo
    would otherwise kill the shell outright, between two steps and without running its EXIT trap (seen: temp
    files left behind by a run killed between its writes and its renames)."""
    d, b = f'"$R"{q(STATE_DIR)}', f'"$R"{q(BUSY_PATH)}'
    grab = "flock 8" if wait is None else f"flock -w {wait:g} 8 || {{ echo {BUSY}; exit 0; }}"
    # once per shell: a script run after the fence (remote/scripts/locks.py) in the same shell must not reopen
    # fd 8, which would drop the flock for a moment, long enough for a takeover to slip in
    # root's alone (0600): anyone who can open the file can flock it, and would hold every later run at its flock
    return ["trap '' PIPE", 'if [ -z "${ocp_busy-}" ]; then', f"[ -d {d} ] || mkdir -p {d}", f"exec 8>>{b}",
            f"chmod 0600 {b}",
            f"if command -v flock >/dev/null; then {grab}; fi", "ocp_busy=1", "fi"]


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
    # gateway tokens made on the host (remote/scripts/tokens.py): each file gets one after the renames unless it has one
    tokens: Sequence[DesiredToken] = ()
    # the record of what this batch writes, a line per file (`record_line`): merged into APPLIED_PATH after the
    # renames, its previous version kept with the backups (restore_script puts it back with the files)
    record: Sequence[str] = ()


def record_line(key_id: str, digest: str, path: str) -> str:
    """A line of the applied record: fixed-width key id and keyed digest, then the path (parse_probe reads it)."""
    assert len(key_id) == 8 and len(digest) == 76, (key_id, digest)
    return f"{key_id} {digest} {path}"


def _record_lines(record: Sequence[str]) -> list[str]:
    """Merge the batch's record lines into the applied record (a line per path: the new one wins), atomically."""
    if not record:
        return []
    a = f'"$R"{q(APPLIED_PATH)}'
    body = "\n".join(record)
    return [f'[ -f {a} ] || : > {a}',
            # NR==FNR: the new lines (stdin), printed and remembered by path; then the old lines of other paths
            f"awk 'NR == FNR {{ n[substr($0, 87)] = 1; print; next }} !(substr($0, 87) in n)' - {a} > {a}.new "
            f"<<'__OCP_REC__'\n{body}\n__OCP_REC__",
            f"chmod 0600 {a}.new && mv -f -- {a}.new {a}"]


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


def _user_of(batch_files: Sequence[DesiredFile], batch_dirs: Sequence[DesiredDir]) -> tuple[str, str] | None:
    mine = [(f.owner, f.group) for f in batch_files if f.as_user] + [(d.owner, d.group) for d in batch_dirs
                                                                       if d.as_user]
    return mine[0] if mine else None


def _refuse_dir_unless_safe(p: str) -> str:
    """At the moment of use: stop the whole script, before anything else is touched, if a directory's path
    now holds a link or another kind of file (it was checked at plan time; this catches a swap since)."""
    return (f'ocp_p={p}; if [ -L "$ocp_p" ] || {{ [ -e "$ocp_p" ] && [ ! -d "$ocp_p" ]; }}; then '
            f'echo "{REFUSED} ${{ocp_p#"$R"}}: not a directory (a link or another file is there now)" >&2; exit 3; fi')


def _backup_user(p: str) -> str:
    # beside the file, in the user's tree: a hard link where the kernel allows it (no copy), else a copy
    b = f'"${{ocp_f%/*}}/{BACKUP_DIR}/${{ocp_f##*/}}"'
    return (f'ocp_f={p}; mkdir -p -m 0700 -- "${{ocp_f%/*}}/{BACKUP_DIR}"; '
            f'if [ -f "$ocp_f" ] && [ ! -L "$ocp_f" ]; then {{ ln -f -- "$ocp_f" {b}.new 2>/dev/null || '
            f'cp -- "$ocp_f" {b}.new; }} && mv -fT -- {b}.new {b} && rm -f -- {b}.absent; '
            f'else rm -f -- {b}; : > {b}.absent; fi')


def _restore_user(p: str) -> str:
    b = f'"${{ocp_f%/*}}/{BACKUP_DIR}/${{ocp_f##*/}}"'
    return (f'ocp_f={p}; if [ -f {b} ] && [ ! -L {b} ]; then cp -- {b} "$ocp_f{TMP_SUFFIX}.restore" && '
            f'mv -fT -- "$ocp_f{TMP_SUFFIX}.restore" "$ocp_f"; elif [ -e {b}.absent ]; then rm -f -- "$ocp_f"; fi')


def write_script(batch: WriteBatch, root: str = "", *, chown: bool = True) -> str:
    """Phase 1 writes every file to a temp file beside its target and fsyncs it, and backs up the old files;
    phase 2 renames all temps into place. A failure in phase 1 leaves every target untouched.

    Targets in the service user's tree (`as_user`) are created, written, backed up (in `.ocp-prev/` beside
    them) and renamed by sub-scripts that run as that user; root touches only targets whose ancestors are
    root's alone, checked by `ocp_safe` at the moment of use (see provisioner/remote/scripts/trust.py)."""
    root_files = [f for f in batch.files if not f.as_user]
    user_files = [f for f in batch.files if f.as_user]
    user = _user_of(batch.files, batch.dirs)
    temp = {f.path: f'"$R"{q(f.path + TMP_SUFFIX + "." + batch.run_id)}' for f in batch.files}
    kept = [f.path for f in root_files] + ([APPLIED_PATH] if batch.record else [])  # backed up under PREV_DIR
    lines = [
        f"R={q(root)}",
        HELPERS,
        # nothing is touched before every root-side target, and the tool's own state, proved root's alone
        *safe_lines([STATE_DIR + "/x", *(f.path for f in root_files), *(d.path for d in batch.dirs if not d.as_user),
                     *((PREV_DIR + p) for p in kept)]),
        *busy_lines(),
        # directories (and their missing parents) get 0755 unless chmod says otherwise; only file contents are
        # written under umask 077 (a parent made under 077 was root-only, and the gateway could not reach
        # its state dir beneath it)
        "umask 022",
    ]
    # temps are removed on every exit: after phase 2 they are already renamed away
    drop = ["rm -f -- " + " ".join(temp[f.path] for f in root_files)] if root_files else []
    if user_files and user:
        # only while the user's temps may still be there: after their renames this would cost a setpriv for nothing
        drop += ['if [ -z "${ocp_renamed-}" ]; then',
                 *as_user(*user, ["rm -f -- " + " ".join(temp[f.path] for f in user_files)], root, then="|| true"),
                 "fi"]
    lines += ["cleanup() {", *(drop or [":"]), "}", "trap 'cleanup' EXIT", "trap 'exit 130' INT TERM HUP"]
    if batch.create_user and not root:
        u = q(batch.create_user)
        home = q(batch.user_home or f"/home/{batch.create_user}")
        lines.append(f"getent passwd {u} >/dev/null || useradd --system --create-home --home-dir {home} "
                     f"--shell /usr/sbin/nologin --user-group {u}")
    for d in batch.dirs:
        if d.as_user:
            continue
        p = f'"$R"{q(d.path)}'
        lines.append(_refuse_dir_unless_safe(p))
        if d.ensure_only:
            lines.append(f"[ -d {p} ] || install -d -m 0755 {p}")
            continue
        lines.append(f"[ -d {p} ] || mkdir -p -m {d.mode:04o} {p}")
        lines.append(f"chmod {d.mode:04o} {p}")
        if chown:
            lines.append(f"chown -h {q(d.owner)}:{q(d.group)} {p}")
    if user and (user_files or any(d.as_user for d in batch.dirs)):
        sub: list[str] = ["umask 022"]
        for d in batch.dirs:
            if not d.as_user:
                continue
            p = f'"$R"{q(d.path)}'
            sub.append(_refuse_dir_unless_safe(p))
            sub.append(f"[ -d {p} ] || mkdir -p -m {(0o755 if d.ensure_only else d.mode):04o} -- {p}")
            if not d.ensure_only:
                # the owner is the user itself (a dir of someone else's in its tree is refused by the plan); its
                # group can still be wrong, and a user may give its own files to a group it belongs to
                sub += [f"chmod {d.mode:04o} -- {p}", f"chgrp {q(d.group)} -- {p}"]
        for f in user_files:
            sub += _temp_lines(f, temp[f.path], chown=False)
        sub += [_backup_user(f'"$R"{q(f.path)}') for f in user_files]
        lines += as_user(*user, sub, root)
    for f in root_files:
        lines += _temp_lines(f, temp[f.path], chown=chown)
    lines += _mark_pending(batch.pending_units)
    for path in kept:
        p = f'"$R"{q(path)}'
        b = f'"$R"{q(PREV_DIR + path)}'
        lines.append(f"install -d -m 0700 \"$(dirname {b})\"")
        lines.append(f"if [ -f {p} ] && [ ! -L {p} ]; then cp -p -- {p} {b}.new && mv -f -- {b}.new {b} "
                     f"&& rm -f -- {b}.absent; else rm -f -- {b}; : > {b}.absent; fi")
    # only from here on may a failure leave some files new: the executor restores from the backups (made just
    # above, by this run) only after this line; before it the backups may be an earlier run's
    lines.append("echo RENAMING || :")  # with its controller gone the script still finishes the renames
    for f in root_files:
        lines.append(f'mv -fT -- {temp[f.path]} "$R"{q(f.path)}')
    if user_files and user:
        lines += as_user(*user, [f'mv -fT -- {temp[f.path]} "$R"{q(f.path)}' for f in user_files], root)
        lines.append("ocp_renamed=1")
    lines += _record_lines(batch.record)
    parents = sorted({posixpath.dirname(f.path) for f in root_files})
    for parent in parents:
        lines.append(f"sync -- \"$R\"{q(parent)} 2>/dev/null || true")
    lines += ensure_token_lines(batch.tokens, root)
    lines.append("echo WROTE")
    return sh_script(lines)


def _temp_lines(f: DesiredFile, t: str, *, chown: bool) -> list[str]:
    """The new content in a temp file beside the target, mode set before any byte is written (umask 077)."""
    p = f'"$R"{q(f.path)}'
    out = [f"[ -d \"$(dirname {p})\" ] || mkdir -p -m 0755 -- \"$(dirname {p})\"", "umask 077",
           f"base64 -d > {t} {_heredoc(f.content)}", "umask 022", f"chmod {f.mode:04o} -- {t}"]
    if chown:
        out.append(f"chown {q(f.owner)}:{q(f.group)} -- {t}")
    out.append(f"sync -- {t} 2>/dev/null || sync")
    return out


def restore_script(paths: Sequence[str], root: str = "", *, pending: Sequence[str] = (),
                   user: tuple[str, str] | None = None, user_paths: frozenset[str] = frozenset()) -> str:
    """Put back the previous version of each path (or remove it when it did not exist before); paths in the
    service user's tree as that user, from the backups beside them."""
    mine = [p for p in paths if user and p in user_paths]
    theirs = [p for p in paths if p not in mine]
    lines = [f"R={q(root)}", HELPERS, *safe_lines([STATE_DIR + "/x", *theirs, *(PREV_DIR + p for p in theirs)]),
             *busy_lines(), *_mark_pending(pending)]
    for path in theirs:
        p = f'"$R"{q(path)}'
        b = f'"$R"{q(PREV_DIR + path)}'
        lines.append(f"if [ -f {b} ]; then cp -p -- {b} {p}{TMP_SUFFIX}.restore && "
                     f"mv -fT -- {p}{TMP_SUFFIX}.restore {p}; elif [ -e {b}.absent ]; then rm -f -- {p}; fi")
    if mine and user:
        lines += as_user(*user, [_restore_user(f'"$R"{q(p)}') for p in mine], root)
    lines.append("echo RESTORED")
    return sh_script(lines)
