"""systemctl as scripts: stop, remove, reload, enable and (re)start units; and the look at units that keep exiting."""

from __future__ import annotations

from collections.abc import Sequence

from provisioner.remote.command import q
from provisioner.remote.scripts.probe import PREV_DIR
from provisioner.remote.scripts.shell import sh_script
from provisioner.remote.scripts.trust import HELPERS, as_user, safe_lines
from provisioner.remote.scripts.writes import BUSY_PATH, busy_lines

SYSTEMCTL_OK = "SYSTEMCTL-OK"
UNIT_PROPS = "Id,ActiveState,SubState,Result,NRestarts,InvocationID,TimeoutStopUSec,Job"


def systemctl_script(reload: bool, restart: Sequence[str], start: Sequence[str], stop: Sequence[str],
                     remove_units: Sequence[str] = (), mount_points: Sequence[str] = ()) -> str:
    """Stop, remove, reload, enable and (re)start units. Restarts and starts are queued (`--no-block`), after the
    state of those units is printed (`unit_states`'s format): the controller then watches them stop and start
    (`apply/restarts.py`), since a stop can take the unit's whole TimeoutStopSec. Stops of units that go away
    block: the controller gives this script their budgets as its timeout. A mount point is mounted by systemd
    as root: every directory above it must be root's alone, or the service user could swap in a link and have
    root mount the share over a directory of its choice."""
    lines = ["R=''", HELPERS, *safe_lines([BUSY_PATH, *remove_units, *(PREV_DIR + p for p in remove_units),
                                           *mount_points]), *busy_lines()]
    for u in stop:
        lines.append(f"systemctl disable --now -- {q(u)} || systemctl stop -- {q(u)} || true")
    for path in remove_units:
        b = q(PREV_DIR + path)
        lines.append(f"if [ -f {q(path)} ] && [ ! -L {q(path)} ]; then install -d -m 0700 \"$(dirname {b})\"; "
                     f"mv -fT -- {q(path)} {b}; fi")
    if reload or remove_units:
        lines.append("systemctl daemon-reload")
    if restart or start:
        units = " ".join(q(u) for u in (*restart, *start))
        lines.append(f"systemctl enable -- {units} >/dev/null 2>&1 || systemctl enable -- {units}")
    if restart or start:
        lines.append(f"systemctl show -p {UNIT_PROPS} -- {units}")
        lines.append(f"systemctl restart --no-block -- {units}")
    lines.append(f"echo {SYSTEMCTL_OK}")
    return sh_script(lines)


def unit_states_script(units: Sequence[str]) -> str:
    """The state and restart count of units: a unit that keeps exiting will not get ready however long one waits."""
    return sh_script([f"systemctl show -p {UNIT_PROPS} -- " + " ".join(q(u) for u in units) + " 2>/dev/null || true"])


def stability_bundle_script(user: str, group: str, state_dir: str, minutes: int, root: str = "") -> str:
    """The newest `stop_shutdown_timeout` stability bundle the gateway wrote in the last `minutes` (OpenClaw writes
    one when a stop reached its deadline), looked up as the service user: its state dir is that user's tree."""
    d = f'"$R"{q(state_dir.rstrip("/") + "/logs/stability")}'
    return sh_script([f"R={q(root)}", HELPERS, *as_user(user, group, [
        f"[ -d {d} ] || exit 0",
        f"find {d} -maxdepth 1 -type f -name '*stop_shutdown_timeout.json' -mmin -{int(minutes)} -print"
        " 2>/dev/null | LC_ALL=C sort | tail -n 1",
    ], root)], errexit=False)
