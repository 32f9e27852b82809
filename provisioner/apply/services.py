"""Drive the units of an apply through the manager that runs them: systemd's own (as root), or the service
user's (`service.manager: systemd-user`, as that user; see remote/scripts/user_units.py)."""

from __future__ import annotations

from collections.abc import Sequence

from provisioner.apply.facts import user_side, user_unit_dir
from provisioner.core.desired import DesiredHost
from provisioner.core.policies import Manager
from provisioner.remote.connect import run_script
from provisioner.remote.scripts.systemd import systemctl_script
from provisioner.remote.scripts.trust import root_output
from provisioner.remote.scripts.user_units import USER_SYSTEMCTL_OK, user_systemctl_script
from provisioner.remote.transport import Result, Transport


def systemctl(t: Transport, desired: DesiredHost, reload: bool, restart: Sequence[str], start: Sequence[str],
              stop: Sequence[str], remove_units: Sequence[str] = (), mount_points: Sequence[str] = (), *,
              become: bool = False, timeout: float | None = None) -> Result:
    """Stop, reload, enable and (re)start units, each by its own manager: root's units first (mounts the
    gateways need are among them), then the service user's. Stops at the first that fails. `remove_units`: the
    unit files (as root's unit dir names them) of instances gone from the inventory; on a host whose gateways
    are systemd-user units, those are the user's, in its unit dir. Root's restarts are queued, and what its
    script printed (the units' state before them) leads the result's stdout; `timeout`: root's script's (it
    waits for the stops of units that go away)."""
    users = {s.unit for s in desired.services if s.manager is Manager.SYSTEMD_USER}
    if users:  # a unit of the tool no longer wanted on such a host is a user unit too
        wanted = {s.unit for s in desired.services}
        users |= {u for u in stop if u not in wanted}

    def of(units: Sequence[str], user: bool) -> list[str]:
        return [u for u in units if (u in users) is user]

    removed = of([p.rsplit("/", 1)[-1] for p in remove_units], True)
    system_remove = [p for p in remove_units if p.rsplit("/", 1)[-1] not in removed]
    res: Result | None = None
    if not users or system_remove or any(of(x, False) for x in (restart, start, stop)):
        res = run_script(t, systemctl_script(reload, of(restart, False), of(start, False), of(stop, False),
                                             system_remove, mount_points), become=become, timeout=timeout)
        if not res.ok:
            return res
    first = res.stdout if res is not None else b""
    if any(of(x, True) for x in (restart, start, stop)):
        user, group = user_side(desired)["user"] or (desired.service_user, desired.service_user)
        script = user_systemctl_script(user, group, reload, of(restart, True), of(start, True), of(stop, True),
                                       [f"{user_unit_dir(desired)}/{u}" for u in removed])
        res = run_script(t, script, become=become)
        if res.ok and USER_SYSTEMCTL_OK not in root_output(res.text()):
            return Result(1, first + res.stdout, res.stderr + b"\nthe user-side systemctl did not finish")
        res = Result(res.rc, first + res.stdout, res.stderr)
    return res or Result(0, b"", b"")
