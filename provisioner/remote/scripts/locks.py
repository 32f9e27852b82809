"""The host lock, as scripts: take it (O_EXCL), read it, release it, clear a dead run's. Their result words
are constants here, with the one parser of what the lock scripts print."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from provisioner.remote.command import q
from provisioner.remote.scripts.probe import LOCK_PATH, LOCK_TEXT, STATE_DIR
from provisioner.remote.scripts.shell import sh_script
from provisioner.remote.scripts.trust import HELPERS, safe_lines
from provisioner.remote.scripts.writes import BUSY, BUSY_PATH, busy_lines, settle_lines

LOCKED = "LOCKED"  # this run took the lock
HELD = "HELD"  # `HELD <holder line>`: someone else holds it
FREE = "FREE"  # nobody holds it
CLEARED = "CLEARED"  # a dead run's lock was removed
UNLOCKED = "UNLOCKED"  # released by its holder
FENCED = "FENCED"  # a script sent under the lock found it no longer this run's, and did nothing
FENCED_RC = 75  # its exit status (EX_TEMPFAIL): told apart from any status a script's own commands give


@dataclass(frozen=True)
class LockAnswer:
    """What a lock script said on its first line: one of the words above, and the holder's line with HELD."""

    word: str
    holder: str = ""


def parse_lock_answer(text: str) -> LockAnswer:
    """The first line a lock script printed (the rest is another script's, see `lock_then`)."""
    first = text.partition("\n")[0].strip()
    word, _, rest = first.partition(" ")
    if word not in (LOCKED, HELD, FREE, CLEARED, BUSY, UNLOCKED):
        return LockAnswer("")
    return LockAnswer(word, rest.strip() if word == HELD else "")


def lock_script(holder: str, root: str = "", *, force: bool = False) -> str:
    """Take the host lock atomically (O_EXCL via noclobber); prints LOCKED or HELD <holder>."""
    lk = f'"$R"{q(LOCK_PATH)}'
    lines = [
        f"R={q(root)}",
        HELPERS,
        *safe_lines([LOCK_PATH]),
        f"mkdir -p \"$R\"{q(STATE_DIR)}",
    ]
    if force:
        lines.append(f"rm -f -- {lk}")
    lines.append(f"if ( set -C; printf '%s\\n' {q(holder)} > {lk} ) 2>/dev/null; then echo {LOCKED}; "
                 f"else echo \"{HELD} {LOCK_TEXT}\"; exit 0; fi")
    return sh_script(lines)


def lock_then(holder: str, then: str, root: str = "", *, force: bool = False) -> str:
    """Take the lock and, only if it was taken, go on with another script in the same round trip."""
    return lock_script(holder, root, force=force) + then


def fence_script(holder: str, root: str = "") -> str:
    """The start of every script sent while this run holds the host lock (`remote/connect.py` `Held`): take the
    busy flock, then go on only if the lock still names this run. A script of a killed run can reach its host
    late (queued in sshd, or the host too slow to start it), after the next run has taken the lock over; it must
    then change nothing. Under the flock the check cannot race a takeover, which clears the lock holding it."""
    lk = f'"$R"{q(LOCK_PATH)}'
    return sh_script([f"R={q(root)}", HELPERS, *safe_lines([BUSY_PATH]), *busy_lines(),
                      # `read`, not LOCK_TEXT's two forks: this runs before every script of an apply
                      f"ocp_lk=; IFS= read -r ocp_lk < {lk} 2>/dev/null || :",
                      f'[ "$ocp_lk" = {q(holder)} ] || {{ echo {FENCED}; exit {FENCED_RC}; }}'])


def unlock_script(holder: str, root: str = "", *, settled: Sequence[str] = ()) -> str:
    lk = f'"$R"{q(LOCK_PATH)}'
    # only remove the lock we hold: a lock cleared and retaken by someone else stays theirs
    return sh_script([f"R={q(root)}", *settle_lines(settled),
                      f"if [ \"$(head -n1 {lk} 2>/dev/null)\" = {q(holder)} ]; then rm -f -- {lk}; fi",
                      f"echo {UNLOCKED}"])


def read_lock_script(root: str = "") -> str:
    """Prints `HELD <holder>` or `FREE`."""
    lk = f'"$R"{q(LOCK_PATH)}'
    return sh_script([f"R={q(root)}", f"if [ -f {lk} ]; then echo \"{HELD} {LOCK_TEXT}\"; "
                      f"else echo {FREE}; fi"])


def clear_lock_script(holder: str, root: str = "", *, wait: float = 60) -> str:
    """Remove the lock only if it still holds exactly `holder` (as read before): a lock retaken meanwhile by a
    new run is that run's. First waits for scripts the dead run left running on the host. Prints CLEARED, FREE,
    BUSY or `HELD <the new holder>`."""
    lk = f'"$R"{q(LOCK_PATH)}'
    return sh_script([f"R={q(root)}", HELPERS, *safe_lines([LOCK_PATH]), *busy_lines(wait=wait),
                      f"if [ ! -f {lk} ]; then echo {FREE}; "
                      f"elif [ \"{LOCK_TEXT}\" = {q(holder)} ]; then rm -f -- {lk}; "
                      f"echo {CLEARED}; else echo \"{HELD} {LOCK_TEXT}\"; fi"])
