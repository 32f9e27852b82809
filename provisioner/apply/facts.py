"""Gather one host's facts in a single batched probe, for exactly what its desired state names."""

from __future__ import annotations

import posixpath
from dataclasses import replace
from typing import Any

from provisioner.core.changes import Action, ChangeKind, HostPlan
from provisioner.core.desired import DesiredHost, FileKind
from provisioner.core.observed import EntryKind, ObservedHost, ObservedService
from provisioner.core.policies import Manager
from provisioner.plan import sha256
from provisioner.remote.connect import run_script, transport_root
from provisioner.remote.scripts.probe import ProbeRequest, contents_script, parse_contents, parse_probe, probe_script
from provisioner.remote.scripts.user_units import managed_user_units, observed_user_units, user_unit_states_script
from provisioner.remote.transport import Transport, TransportError


class FactsError(TransportError):
    pass


def probe_request(desired: DesiredHost, *, version_command: tuple[str, ...] = (),
                  listeners: bool = False) -> ProbeRequest:
    # only root's own unit directories: a user-side one (systemd-user units) is the service user's to fill
    unit_dirs = sorted({f.path.rsplit("/", 1)[0] for f in desired.files if f.path.endswith(".service")
                        and not f.as_user} | {"/etc/systemd/system"})
    # systemd-user hosts too: the pending-restart marks are root's, whichever manager runs the units
    systemd = any(s.manager is not Manager.NONE for s in desired.services) or not desired.services
    return ProbeRequest(
        files=tuple(f.path for f in desired.files),
        dirs=tuple(d.path for d in desired.dirs),
        users=(desired.service_user,) if desired.service_user else (),
        units=tuple(s.unit for s in desired.services),
        unit_dirs=tuple(unit_dirs),
        systemd=systemd,
        version_command=version_command,
        listeners=listeners,
        release_prefix=desired.release.prefix if desired.release else None,
        plugin_dirs=tuple(p.dir for p in desired.plugins),
        **user_side(desired),
    )


def user_side(desired: DesiredHost) -> dict[str, Any]:
    """The ProbeRequest fields that name the service user and the paths in its tree (probed as that user)."""
    mine = frozenset([f.path for f in desired.files if f.as_user] + [d.path for d in desired.dirs if d.as_user])
    groups = [f.group for f in desired.files if f.as_user] + [d.group for d in desired.dirs if d.as_user]
    group = groups[0] if groups else desired.service_user
    return {"user": (desired.service_user, group) if mine else None, "user_paths": mine}


def user_unit_dir(desired: DesiredHost) -> str:
    """Where the host's systemd-user units live (the service user's ~/.config/systemd/user), or ""."""
    return next((posixpath.dirname(f.path) for f in desired.files if f.kind is FileKind.UNIT and f.as_user), "")


def user_units_facts(t: Transport, desired: DesiredHost, *, become: bool = False,
                     timeout: float = 60.0) -> tuple[dict[str, ObservedService], list[str]]:
    """The state of the host's systemd-user units, asked of the service user's own manager (as that user), and
    the unit files of the tool found in the user's unit dir; none on a stand-in host, or while the user or its
    manager does not exist yet."""
    units = [s.unit for s in desired.services if s.manager is Manager.SYSTEMD_USER]
    if not units or transport_root(t):
        return {}, []
    user, group = user_side(desired)["user"] or (desired.service_user, desired.service_user)
    res = run_script(t, user_unit_states_script(user, group, units, user_unit_dir(desired)), become=become,
                     timeout=timeout)
    if not res.ok:
        raise FactsError(t.host, f"asking {user}'s systemd manager failed (exit {res.rc}): {res.err_text()[:300]}")
    managed = managed_user_units(res.text())
    return {u: s for u, s in observed_user_units(res.text()).items() if u in units or u in managed}, managed


def user_unit_states(t: Transport, desired: DesiredHost, *, become: bool = False,
                     timeout: float = 60.0) -> dict[str, ObservedService]:
    return user_units_facts(t, desired, become=become, timeout=timeout)[0]


def recheck_request(desired: DesiredHost, planned: HostPlan, *, everything: bool = False) -> ProbeRequest:
    """What apply re-checks under the lock. A plan made moments ago in the same run: only the targets of its
    file, dir and release changes (a probe of everything costs the host a dozen more forks, and nothing else
    decides whether it may go on). A saved plan: every file and dir it was made against, unchanged ones too."""
    changing = [c for c in planned.changes if everything or c.action is not Action.NOOP]
    kinds = {c.kind for c in changing}
    return ProbeRequest(
        files=tuple(c.target for c in changing if c.kind is ChangeKind.FILE),
        dirs=tuple(c.target for c in changing if c.kind is ChangeKind.DIR),
        systemd=False,
        release_prefix=(desired.release.prefix if desired.release and kinds & {ChangeKind.RELEASE,
                                                                                 ChangeKind.RELEASE_LINK} else None),
        **user_side(desired),
    )


def gather(t: Transport, desired: DesiredHost, *, become: bool = False, timeout: float = 120.0,
           version_command: tuple[str, ...] = (), listeners: bool = False) -> ObservedHost:
    req = probe_request(desired, version_command=version_command, listeners=listeners)
    root = transport_root(t)
    res = run_script(t, probe_script(req, root), become=become, timeout=timeout)
    if not res.ok:
        raise FactsError(t.host, f"fact probe failed (exit {res.rc}): {res.err_text()[:500]}")
    observed = parse_probe(t.host, req, res.text(), root)
    user_services, user_managed = user_units_facts(t, desired, become=become, timeout=timeout)
    observed.services.update(user_services)
    if user_managed:
        observed = replace(observed, managed_units=tuple(sorted({*observed.managed_units, *user_managed})))
    # contents only of files that differ, for their diffs: an unchanged fleet costs no second round trip
    differ = [f.path for f in desired.files if not f.seed and (o := observed.files.get(f.path)) is not None
              and o.exists
              and o.kind is EntryKind.FILE and o.sha256 is not None and o.sha256 != sha256(f.content)]
    if differ:
        res = run_script(t, contents_script(differ, root, req.user, req.user_paths), become=become, timeout=timeout)
        if res.ok:
            for path, content in parse_contents(differ, res.text(), req.user_paths).items():
                observed.files[path] = replace(observed.files[path], content=content)
    return observed
