"""Host script that puts an instance's state dir back from an OpenClaw backup archive, as its service user.

OpenClaw restores only into a fresh directory (`openclaw backup restore ARCHIVE --target DIR`: it verifies the
archive first, rejects traversal and links out, and never writes into live state). The activation step, which
OpenClaw leaves to the operator, is done here: the state asset the archive recorded is renamed into the state
dir's place, and the live state dir is renamed aside first, never deleted. Every step runs as the service user
(the state dir, its parent, the archive's copy and the staging dir are all in that user's tree): whatever that
user planted can do no more than the user could by hand. The gateway must be stopped while this runs.
"""

from __future__ import annotations

import posixpath
from collections.abc import Sequence

from provisioner.inventory.model import Instance
from provisioner.remote.command import q
from provisioner.remote.scripts.shell import sh_script
from provisioner.remote.scripts.trust import HELPERS, as_user, safe_lines

RESTORED = "OCP-STATE-RESTORED"  # user-side word: the archive's state dir is in place, the old one aside


def restore_state_lines(inst: Instance, command: Sequence[str], archive: str, src_state: str, aside: str,
                        stage: str, root: str = "", keep: Sequence[str] = ()) -> list[str]:
    """User-side lines: OpenClaw restores `archive` into `stage`; its state asset (recorded from `src_state` on
    the host it came from) replaces `inst.state_dir`, which moves to `aside`; `stage` is removed. `keep`: files
    of the state dir (relative paths) carried over from the live one into the restored one (the target's own
    config, env file and token file when an instance moves to another host)."""
    st, stg, away = (f'"$R"{q(p)}' for p in (inst.state_dir, stage, aside))
    payload = "/payload/posix" + posixpath.normpath(src_state)
    carry = [f"if [ -f {away}/{q(k)} ] && [ ! -L {away}/{q(k)} ]; then mkdir -p -- \"$(dirname -- {st}/{q(k)})\"; "
             f"cp -p -- {away}/{q(k)} {st}/{q(k)}; fi" for k in keep]
    return [
        "umask 077",
        f'mkdir -p -- "$R"{q(posixpath.dirname(stage))}',
        f"rm -rf -- {stg}",
        # OpenClaw in a throwaway HOME and state dir: the old release refuses to run at all against the live
        # state dir the new one migrated (measured: "state database ... uses newer schema version 18; this build
        # supports 17"), and a restore needs nothing of the instance's own
        "t=$(mktemp -d)",
        "trap 'rm -rf -- \"$t\"' EXIT",
        f'HOME="$t" OPENCLAW_STATE_DIR="$t/state" OPENCLAW_CONFIG_PATH="$t/state/openclaw.json" '
        f'OPENCLAW_CONFIG_READONLY=1 {" ".join(q(a) for a in command)} backup restore {q(root + archive)} '
        f'--target {q(root + stage)} --json </dev/null 2>&1 | tail -c 65536',  # its verdict: the staging dir
        f"[ -d {stg} ] || {{ echo 'openclaw backup restore wrote no staging dir' >&2; exit 3; }}",
        f"set -- {stg}/*/",
        '[ "$#" = 1 ] && [ -d "$1" ] && [ ! -L "${1%/}" ] || '
        '{ echo "the restored archive has not exactly one root" >&2; exit 4; }',
        f'p="${{1%/}}"{q(payload)}',
        '[ -d "$p" ] && [ ! -L "$p" ] || '
        f'{{ echo "the archive holds no state dir recorded as {src_state}" >&2; exit 4; }}',
        f"if [ -e {st} ] || [ -L {st} ]; then mv -T -- {st} {away}; fi",
        f'mv -T -- "$p" {st}',
        *carry,
        f"rm -rf -- {stg}",
        f"echo {RESTORED}",
    ]


def restore_state_script(jobs: Sequence[tuple[Instance, str, str, str, str]], command: Sequence[str],
                         root: str = "", keep: Sequence[str] = ()) -> str:
    """Restore each (instance, archive, recorded state dir, aside, stage), each as its own service user, one after
    the other; what each printed comes back framed by index (openclaw_cli's framing)."""
    lines = [f"R={q(root)}", "ocp_limit=1800", HELPERS]
    for i, (inst, archive, src, aside, stage) in enumerate(jobs):
        lines.append(f'echo "@@OCP {i} BEGIN"')
        lines += as_user(inst.service.user, inst.service.group,
                         restore_state_lines(inst, command, archive, src, aside, stage, root, keep), root)
        lines.append(f'echo; echo "@@OCP {i} END"')
    return sh_script(lines, errexit=False)


HANDED = "HANDED"  # root's word: the pushed archive is in place for the service user


def hand_over_script(incoming: str, dest: str, group: str) -> str:
    """Root: move a pushed archive into root's own incoming dir as `dest`, 0640 root:`group`: the service user can
    read it (to restore from it) and cannot change, replace or link it. `dest` is root's alone; `incoming` is
    where SFTP put it (root's dir, or the SSH user's own 0700 dir in it under `become`)."""
    return sh_script(["R=''", HELPERS, *safe_lines([dest]),
                      f"install -m 0640 -o root -g {q(group)} -- {q(incoming)} {q(dest)}",
                      f"rm -f -- {q(incoming)}", f"echo {HANDED}"])
