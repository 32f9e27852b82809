"""`service.manager: systemd-user`: the gateways are units of the service user's own systemd manager.

Root's part is only to make that manager run: `loginctl enable-linger USER` (it then runs without a login
session, and starts at boot) and `systemctl start user@UID.service`, which returns once the manager is up.
Everything else (daemon-reload, enable, (re)start, stop, the units' state) is `systemctl --user` run **as the
service user** (`ocp_as`, see trust.py), with `XDG_RUNTIME_DIR=/run/user/UID`: systemctl reaches the manager on
its private socket there, so no D-Bus session bus is needed. The host needs libpam-systemd (its PAM session
gives the user manager its runtime directory; without it `user@UID.service` exits at once).

What the user-side steps print is the user's, as for every user-side step: root prints the result word only
when the user-side step exited 0. The units' state it reports is the user's to tell: the unit and its gateway
are that user's own, which it can stop or restart at will anyway.
"""

from __future__ import annotations

from collections.abc import Sequence

from provisioner.core.observed import ObservedService
from provisioner.remote.command import q
from provisioner.remote.scripts.probe import UNIT_MARKER
from provisioner.remote.scripts.shell import sh_script
from provisioner.remote.scripts.trust import BACKUP_DIR, HELPERS, as_user, user_output

USER_SYSTEMCTL_OK = "USER-SYSTEMCTL-OK"
NO_MANAGER = "no systemd user manager"
_RUNTIME = 'XDG_RUNTIME_DIR=/run/user/$(id -u); export XDG_RUNTIME_DIR'


def manager_lines(user: str) -> list[str]:
    """Root: keep the user's manager running (linger) and wait until it is up; fail naming what is missing."""
    u = q(user)
    return [
        f"uid=$(id -u -- {u})",
        f"loginctl enable-linger -- {u}",
        'systemctl start "user@$uid.service" || '
        f'{{ echo {q(f"{NO_MANAGER} for {user}: user@")}"$uid.service does not start (does the host have '
        'libpam-systemd?)" >&2; exit 1; }',
        '[ -S "/run/user/$uid/systemd/private" ] || '
        f'{{ echo {q(f"{NO_MANAGER} for {user}: no")}" /run/user/$uid/systemd/private" >&2; exit 1; }}',
    ]


def user_systemctl_script(user: str, group: str, reload: bool, restart: Sequence[str], start: Sequence[str],
                          stop: Sequence[str], remove: Sequence[str] = ()) -> str:
    """Stop, reload, enable and (re)start user units, as their user; prints USER_SYSTEMCTL_OK when all went well.
    `remove`: unit files (of instances gone from the inventory, stopped above) moved aside into `.ocp-prev/`
    beside them, where the user manager does not look."""
    sub = [_RUNTIME]
    for u in stop:
        sub.append(f"systemctl --user disable --now -- {q(u)} || systemctl --user stop -- {q(u)} || true")
    for path in remove:
        d, name = path.rsplit("/", 1)
        prev = f"{d}/{BACKUP_DIR}"
        sub.append(f"if [ -f {q(path)} ] && [ ! -L {q(path)} ]; then mkdir -p -- {q(prev)}; "
                   f"mv -fT -- {q(path)} {q(prev + '/' + name)}; fi")
    if reload or remove:
        sub.append("systemctl --user daemon-reload")
    if restart or start:
        units = " ".join(q(u) for u in (*restart, *start))
        sub.append(f"systemctl --user enable -- {units} >/dev/null 2>&1 || systemctl --user enable -- {units}")
    for u in (*restart, *start):
        sub.append(f"systemctl --user restart -- {q(u)}")
    return sh_script(["R=''", HELPERS, *manager_lines(user), "rc=0",
                      *as_user(user, group, sub, then="|| rc=$?"),
                      f'[ "$rc" = 0 ] && echo {USER_SYSTEMCTL_OK}', 'exit "$rc"'])


def user_unit_states_script(user: str, group: str, units: Sequence[str], unit_dir: str = "") -> str:
    """`systemctl --user show` of units, as their user, between `S` and `S.` lines (in the user's output, so
    prefixed); nothing when the user or its manager does not exist yet (plan then sees units never started).
    `unit_dir`: also `M unit` for each unit file there that carries the tool's marker (asked about too)."""
    show = ("systemctl --user show -p Id,LoadState,ActiveState,UnitFileState,InvocationID,SubState,Result,NRestarts "
            '-- "$@" 2>/dev/null || true')
    sub = [_RUNTIME, "set --" + "".join(f" {q(u)}" for u in units)]
    if unit_dir:
        sub.append(f'for f in {q(unit_dir)}/*.service; do [ -f "$f" ] && [ ! -L "$f" ] || continue; '
                   f'grep -q -- {q("^" + UNIT_MARKER)} "$f" 2>/dev/null || continue; u=${{f##*/}}; echo "M $u"; '
                   'case $u in *[!A-Za-z0-9:_.@-]*) ;; *) set -- "$@" "$u" ;; esac; done')
    sub += ['[ -S "$XDG_RUNTIME_DIR/systemd/private" ] || exit 0', "echo S", show, "echo S."]
    return sh_script(["R=''", HELPERS, f"getent passwd {q(user)} >/dev/null || exit 0", *as_user(user, group, sub),
                      "echo END"])


def parse_user_unit_states(out: str) -> dict[str, dict[str, str]]:
    """The `systemctl show` blocks of user_unit_states_script, per unit: {property: value}."""
    lines = user_output(out).split("\n")
    if "S" not in lines:
        return {}
    body = lines[lines.index("S") + 1:]
    body = body[:body.index("S.")] if "S." in body else body
    blocks: dict[str, dict[str, str]] = {}
    block: dict[str, str] = {}
    for line in [*body, ""]:
        if not line:
            if "Id" in block:
                blocks[block["Id"]] = block
            block = {}
            continue
        k, _, v = line.partition("=")
        block[k] = v
    return blocks


def observed_user_units(out: str) -> dict[str, ObservedService]:
    return {unit: ObservedService(unit, b.get("LoadState", "not-found"), b.get("ActiveState", "inactive"),
                                  b.get("UnitFileState", "") or "disabled", b.get("InvocationID", ""))
            for unit, b in parse_user_unit_states(out).items()}


def managed_user_units(out: str) -> list[str]:
    """The unit files carrying the tool's marker that user_unit_states_script found in the user's unit dir."""
    return sorted(line[2:] for line in user_output(out).split("\n") if line.startswith("M "))
