"""Who a host-side step runs as: the line between what root may touch and what only the service user may.

Threat model (README, "Who is trusted"): the controller and the inventory are trusted; the network is not
(strict host keys); the gateway's service user is hostile, because the gateway runs AI agents with shell tools
as that user. Everything that user can write (its home, state dirs, workspaces, config and env files, the shared
dedupe directory) is hostile input to every root-side step.

The design, applied by every script that touches a host:

1. **Inside the service user's tree, act as that user.** A target whose parent directory is inside the service
   user's home or inside a directory the tool gives to that user (state dir, workspace, user unit dir) is
   written, backed up, restored, probed and read by a sub-script that runs as the user (`setpriv` to its uid,
   gid and groups, a clean environment, no new privileges), bounded in time. The kernel then does the
   checking: whatever the user swapped in (a link to /etc, a FIFO, a hard link to a root file, a directory
   where a file was), the step can do no more than the user could do by hand. Backups of such files stay in
   the user's tree (`.ocp-prev/` beside the file), since restoring them is also done as the user.
2. **Outside it, root acts only on paths that are root's alone.** Units in /etc/systemd/system, the tool's
   state under /var/lib/openclaw-provisioner, release prefixes, mount points and parents the tool creates are
   handled by root only after `ocp_safe` has checked, at the moment of use, that every directory above them
   (as written, and as resolved when a link is on the way) is owned by root and writable by no one else. A
   path that passes cannot be changed by the service user between the check and its use, so the check is not
   a time-of-check/time-of-use race.
3. **The user's output is data.** What a user-side sub-script prints goes to a root-owned temp file and comes
   back with every line prefixed `~ ` (capped in size), so it can never forge one of the root script's own
   result words (LOCKED, WROTE, `M unit` ...), and a process it leaves behind cannot hold the SSH channel open.
4. **Nothing user-writable runs as root.** Env files are parsed as data (by `awk`, as the user); the OpenClaw
   CLI (status, `--version`, `config schema`) runs as the service user from the start.

Local stand-in hosts (`connection: local`, a directory standing for `/`) have no users and no privilege
boundary: their sub-scripts run as the caller and the ownership checks are skipped.
"""

from __future__ import annotations

import posixpath
import secrets
from collections.abc import Iterable, Sequence

from provisioner.remote.command import q
from provisioner.remote.scripts.shell import sh_script

USER_TIMEOUT = 120  # seconds any one user-side sub-script may take; it can only be slowed by the user's own files
OUTPUT_CAP = 64 << 20  # bytes of a user-side sub-script's stdout that root reads back
USER_PREFIX = "~ "  # every line a user-side sub-script printed, as root relays it
BACKUP_DIR = ".ocp-prev"  # beside a user-side file: its previous version (and `<name>.absent` markers)
UNSAFE = "UNSAFE"  # stderr word of ocp_safe when a root-side path is not root's alone
REFUSED = "REFUSED"  # stderr word of a write that found a link or another file where a directory must be

# Defined once at the top of any script that needs them. `ocp_as USER GROUP`: run the script on stdin as USER
# (for at most $ocp_limit seconds if the script sets it, else USER_TIMEOUT: a backup of a large state takes longer).
# `ocp_safe PATH...`: each existing PATH (the ancestors of a root-side target) is a directory owned by root and
# writable by no one else, or a link whose resolved target's directories are; prints UNSAFE and fails otherwise.
# A user-side sub-script gets no fd 8 (the busy lock, remote/scripts/writes.py): a process the user leaves behind,
# or one of its own that attaches to the sub-script, would otherwise hold root's lock and append to root's file.
HELPERS = f"""ocp_as() {{
  ocp_d=$(mktemp -d) || return 1
  ocp_rc=0
  if [ -n "$R" ]; then /bin/sh -s >"$ocp_d/o" 2>"$ocp_d/e" 8>&- || ocp_rc=$?
  else timeout -k 5 "${{ocp_limit:-{USER_TIMEOUT}}}" setpriv --reuid="$1" --regid="$2" --init-groups \\
    --no-new-privs --reset-env -- /bin/sh -s >"$ocp_d/o" 2>"$ocp_d/e" 8>&- || ocp_rc=$?; fi
  head -c {OUTPUT_CAP} -- "$ocp_d/o" | sed 's/^/{USER_PREFIX}/'
  if [ -s "$ocp_d/e" ]; then head -c 65536 -- "$ocp_d/e" | sed "s|^|as $1: |" >&2; fi
  [ "$ocp_rc" != 124 ] || echo "as $1: timed out after ${{ocp_limit:-{USER_TIMEOUT}}} s (a FIFO or a huge file in its \\
tree?)" >&2
  rm -rf -- "$ocp_d"
  return "$ocp_rc"
}}
ocp_check() {{
  while IFS= read -r ocp_l; do
    [ -n "$ocp_l" ] || continue
    ocp_n=${{ocp_l#*|}}; ocp_a=${{ocp_l%%|*}}
    ocp_u=${{ocp_a%% *}}; ocp_a=${{ocp_a#* }}; ocp_g=${{ocp_a%% *}}; ocp_a=${{ocp_a#* }}
    ocp_m=${{ocp_a%% *}}; ocp_t=${{ocp_a#* }}
    case $ocp_t in
      directory)
        if [ "$ocp_u" != 0 ]; then echo "{UNSAFE} $ocp_n: owned by uid $ocp_u, not root" >&2; return 1; fi
        if [ $((0$ocp_m & 002)) != 0 ] || {{ [ $((0$ocp_m & 020)) != 0 ] && [ "$ocp_g" != 0 ]; }}; then
          echo "{UNSAFE} $ocp_n: writable by others (mode $ocp_m)" >&2; return 1; fi ;;
      "symbolic link")
        [ "$1" = links ] || {{ echo "{UNSAFE} $ocp_n: a link where only directories may be" >&2; return 1; }}
        ocp_links="$ocp_links$(readlink -f -- "$ocp_n")
" ;;
      *) echo "{UNSAFE} $ocp_n: a $ocp_t where a directory must be" >&2; return 1 ;;
    esac
  done
  return 0
}}
ocp_safe() {{
  [ -z "$R" ] || return 0
  ocp_links=
  ocp_check links <<OCP_SAFE || return 1
$(stat -c '%u %g %a %F|%n' -- "$@" 2>/dev/null)
OCP_SAFE
  [ -n "$ocp_links" ] || return 0
  set --
  while IFS= read -r ocp_p; do
    while [ -n "$ocp_p" ]; do set -- "$@" "$ocp_p"; ocp_p=${{ocp_p%/*}}; done
  done <<OCP_SAFE
$ocp_links
OCP_SAFE
  ocp_check dirs <<OCP_SAFE
$(stat -c '%u %g %a %F|%n' -- / "$@" 2>/dev/null)
OCP_SAFE
}}
"""


def ancestors(paths: Iterable[str]) -> list[str]:
    """Every directory above each path (not the path itself), `/` included, sorted and unique."""
    out: set[str] = set()
    for p in paths:
        d = posixpath.dirname(posixpath.normpath(p))
        while True:
            out.add(d)
            if d == "/":
                break
            d = posixpath.dirname(d)
    return sorted(out)


def safe_lines(paths: Iterable[str]) -> list[str]:
    """Check, at the moment of use, that root may act on these paths: everything above them is root's alone."""
    above = ancestors(paths)
    if not above:
        return []
    return ["ocp_safe" + "".join(f' "$R"{q(p)}' for p in above)]


def as_user(user: str, group: str, lines: Sequence[str], root: str = "", *, then: str = "") -> list[str]:
    """Shell lines that run `lines` as a sub-script under `user`:`group` (see `ocp_as` in HELPERS), with the
    same stand-in root as its caller. Its stdout returns prefixed with USER_PREFIX; it stops at its first
    failure, and its exit status is that of the `ocp_as` line; `then` follows that command on its line (e.g.
    `|| rc=$?`)."""
    text = sh_script([f"R={q(root)}", *lines]).rstrip("\n")
    delim = f"__OCP_USER_{secrets.token_hex(6)}__"
    while delim in text:  # cannot happen (paths holding a newline are refused); kept exact anyway
        delim = f"__OCP_USER_{secrets.token_hex(6)}__"
    return [f"ocp_as {q(user)} {q(group)} <<'{delim}' {then}".rstrip(), text, delim]


def user_output(text: str) -> str:
    """Only the lines a user-side sub-script printed, without their prefix."""
    n = len(USER_PREFIX)
    return "\n".join(line[n:] for line in text.split("\n") if line.startswith(USER_PREFIX))


def root_output(text: str) -> str:
    """Only the lines the root script itself printed: never anything the service user could have written."""
    return "\n".join(line for line in text.split("\n") if not line.startswith(USER_PREFIX))


def refusal_reason(stderr: str) -> str | None:
    """Why a host script stopped before touching anything: a path swapped since the plan (REFUSED), or one that
    root may not act on because someone other than root could change it (UNSAFE)."""
    for line in stderr.splitlines():
        for word in (REFUSED + " ", UNSAFE + " "):
            if line.startswith(word):
                what = line[len(word):]
                return what if word == REFUSED + " " else f"{what}: root acts only where nobody else can write"
    return None
