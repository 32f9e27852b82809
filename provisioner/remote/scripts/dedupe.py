"""Host-side scripts of `dedupe verify`, built from quoted words: facts, nonce, writability, race, deletion.

The shared dedupe directory is writable by the service user (the gateways write their claims there), so it is
hostile ground for root (see remote/scripts/trust.py): every step that creates, reads, removes or waits for a file in
it runs as the host's service user (`nobody` while that user does not exist yet), never as root. Only the facts
script runs as root, and only to look: what the path is (a symbolic link or anything but a directory is
reported, not followed), what is mounted there and how much space is free.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from provisioner.remote.command import q
from provisioner.remote.scripts.openclaw_cli import as_user_or_nobody
from provisioner.remote.scripts.shell import sh_script
from provisioner.remote.scripts.trust import HELPERS, as_user


@dataclass(frozen=True)
class Who:
    """Whom the steps inside the directory run as on one host, and its stand-in root ('' on a real host)."""

    user: str
    group: str
    root: str = ""


def _p(path: str) -> str:
    return f'"$R"{q(path)}'


def _as(who: Who, lines: list[str]) -> str:
    return sh_script([f"R={q(who.root)}", HELPERS, *as_user_or_nobody(who.user, who.group, lines, who.root)])


# a word of the host's (a link's target, a file type) as one printable line: it can never start another line
_WORD = "ocp_word() { printf '%s' \"$1\" | tr -c '[:print:]' '?' | head -c \"$2\"; }"


def facts_script(d: str, who: Who) -> str:
    """What the path is, what is mounted there, free space, and whether the service user can write to it.

    Root only looks (`[ -L ]` before `[ -d ]`: a link is reported with its target and never followed); the
    write test runs as the service user. Lines: `DIR 1`, `DIR 0` (missing), `DIR link TARGET`, `DIR other TYPE`,
    then `MNT`, `FREE`, and `WRITE nouser` from root or `U WRITE 1|0` from the user side."""
    return sh_script([
        f"R={q(who.root)}",
        HELPERS,
        _WORD,
        f"d={_p(d)}",
        'if [ -L "$d" ]; then echo "DIR link $(ocp_word "$(readlink -- "$d")" 512)"; exit 0; fi',
        'if [ ! -e "$d" ]; then echo "DIR 0"; exit 0; fi',
        'if [ ! -d "$d" ]; then echo "DIR other $(ocp_word "$(stat -c %F -- "$d" 2>/dev/null)" 64)"; exit 0; fi',
        'echo "DIR 1"',
        'echo "MNT $(findmnt -n -o TARGET,FSTYPE,SOURCE --target "$d" 2>/dev/null | head -n1)"',
        'echo "FREE $(df -Pk "$d" | awk \'NR==2{print $4}\')"',
        f"if id -u {q(who.user)} >/dev/null 2>&1; then",
        *as_user(who.user, who.group, [
            # a name of its own per call: `$$` repeats across hosts (each has its own PID namespace, and the same
            # few processes before this one), and two hosts creating one name exclusively is the race test's job
            f'f={_p(d)}/.ocp-verify-write-{secrets.token_hex(8)}',
            'if ( set -C; : > "$f" ) 2>/dev/null; then rm -f -- "$f"; echo "WRITE 1"; else echo "WRITE 0"; fi',
        ], who.root, then="|| true"),
        'else echo "WRITE nouser"; fi',
    ], errexit=False)


def write_script(path: str, content: str, who: Who) -> str:
    return _as(who, [f"p={_p(path)}", f"printf '%s\\n' {q(content)} > \"$p.tmp\"", 'mv -f -- "$p.tmp" "$p"',
                     "echo WROTE"])


def read_script(path: str, who: Who) -> str:
    return _as(who, [f"p={_p(path)}",
                     'if [ -f "$p" ]; then echo "READ $(head -c 200 -- "$p")"; else echo MISSING; fi'])


def race_script(path: str, host: str, at_ms: int, who: Who) -> str:
    """Wait until the same wall-clock instant on every host, then create one file exclusively (O_EXCL).

    Over sshfs the loser usually gets EPERM, not EEXIST: any failed exclusive create is a loss."""
    return _as(who, [
        f"p={_p(path)}",
        f"while [ \"$(date +%s%3N)\" -lt {at_ms} ]; do sleep 0.005; done",
        f"if ( set -C; printf '%s\\n' {q(host)} > \"$p\" ) 2>/dev/null; then echo WON; else echo LOST; fi",
    ])


def remove_script(*paths: str, who: Who) -> str:
    """REMOVED, or KEPT when the user may not remove one (another host's user's file in a sticky directory)."""
    return _as(who, [f"if rm -f -- {' '.join(_p(p) for p in paths)} 2>/dev/null; then echo REMOVED; "
                     "else echo KEPT; fi"])


def wait_gone_script(path: str, timeout_s: float, who: Who) -> str:
    """Poll until the path is gone; prints how long that took in ms (or TIMEOUT)."""
    return _as(who, [
        f"p={_p(path)}",
        "start=$(date +%s%3N)",
        f"end=$((start + {int(timeout_s * 1000)}))",
        'while [ -e "$p" ]; do',
        '  if [ "$(date +%s%3N)" -gt "$end" ]; then echo TIMEOUT; exit 0; fi',
        "  sleep 0.05",
        "done",
        'echo "GONE $(( $(date +%s%3N) - start ))"',
    ])
