"""The plan of a session's hosts, and whether a saved plan may still be applied.

`plan_session` gathers every host's facts, plans it, and checks what each host can take (busy ports, config
keys its OpenClaw version rejects): a host with such problems keeps an error and stays out of the apply. The
problems come back as located diagnostics for the caller to show.
"""

from __future__ import annotations

from dataclasses import replace

from provisioner.apply.capabilities import port_diagnostics, version_diagnostics
from provisioner.apply.fleet import Fleet, make_plan
from provisioner.apply.locks import Liveness, liveness, parse_holder, refusal
from provisioner.core.changes import Action, Change, ChangeKind, HostPlan, Plan
from provisioner.core.diagnostics import Diagnostic
from provisioner.core.observed import ObservedHost
from provisioner.digests import KEY_ENV, DigestKeyError, current_key, key_id
from provisioner.inventory.model import Host
from provisioner.manifest import ManagedHost, removals
from provisioner.plan import desired_fingerprint
from provisioner.planfile import SavedPlan
from provisioner.session import Session


def plan_session(session: Session, fleet: Fleet) -> tuple[Plan, list[Diagnostic]]:
    """Facts from every host, then the plan, and the diagnostics of what the hosts cannot take (in plan order)."""
    observed: dict[str, ObservedHost] = {}
    plan = make_plan(fleet, session.hosts, session.desired, observed)
    if session.partial:
        plan = without_removals(plan)
    by_name = {h.name: h for h in session.hosts}

    def check(h: Host) -> list[Diagnostic]:
        obs = observed.get(h.name)
        if obs is None:
            return []
        return port_diagnostics(session.inv, h, obs) + version_diagnostics(session.inv, h, obs, fleet.transport(h))

    found = fleet.each([by_name[n] for n in observed], check)
    shown: list[Diagnostic] = []
    hosts = []
    for hp in plan.hosts:
        diags = found.get(hp.host, [])
        if isinstance(diags, BaseException):
            hosts.append(replace(hp, error=f"capability check failed: {diags}"))
            continue
        shown += diags
        hosts.append(with_problems(hp, sum(d.is_error for d in diags)))
    return replace(plan, hosts=tuple(hosts)), shown


def with_problems(hp: HostPlan, errors: int) -> HostPlan:
    """The host's plan kept out of the apply when the capability checks found `errors` problems on it."""
    if not errors or hp.error:
        return hp
    why = f"{errors} problem(s) on the host would break the apply (see above)"
    if hp.locked_by and liveness(parse_holder(hp.locked_by)) is Liveness.LIVE:
        # another run is changing the host as it is probed: the lock is the reason to give first, and what that
        # run is in the middle of (a gateway restarting) may be all there is to the problems
        why = f"{refusal(hp.locked_by)}; {why}"
    return replace(hp, error=why)


def without_removals(plan: Plan) -> Plan:
    """The plan without its service stops: with part of a host's instances selected, an instance left out by
    --limit is not one that left the inventory."""
    return replace(plan, hosts=tuple(
        replace(h, changes=tuple(c for c in h.changes
                                 if not (c.kind is ChangeKind.SERVICE and c.action is Action.STOP)))
        for h in plan.hosts))


def saved_plan_problem(saved: Plan, session: Session) -> str | None:
    """Why a saved plan may not be applied, or None. It is applied only if the inventory and the rendered files
    are exactly what it was made from, and its file fingerprints were made with this controller's digest key
    (provisioner/digests.py)."""
    if saved.inventory_sha256 != session.inv.sha256:
        return f"the inventory {saved.inventory_path} changed since the plan was made"
    made_with = saved.digest_key_id if isinstance(saved, SavedPlan) else None
    if made_with is None:
        # a plan file of an older version: its file fingerprints are plain sha256 digests, which nothing matches now
        if any((c.before or "").startswith("sha256:") or (c.after or "").startswith("sha256:")
               for hp in saved.hosts for c in hp.changes if c.kind is ChangeKind.FILE):
            return "this plan was made by an older version of the tool (unkeyed file fingerprints); run plan again"
    else:
        try:
            mine = key_id()
        except DigestKeyError as exc:
            return str(exc)
        if made_with != mine:
            why = "" if current_key().persistent else " (this controller could not keep a key of its own: see above)"
            return (f"this plan was made by a controller with another digest key{why}; run plan again here, or share "
                    f"the key with {KEY_ENV}")
    desired_fp = {(h, f.path): desired_fingerprint(f) for h, dh in session.desired.items() for f in dh.files}
    for hp in saved.hosts:
        for c in hp.changes:
            if c.kind is ChangeKind.FILE and desired_fp.get((c.host, c.target)) != c.after:
                return (f"{c.host}:{c.target} would not be what the plan says (a secret or the tool changed "
                        "since); make a new plan")
    return None


def with_offline_removals(plan: Plan, session: Session, managed: dict[str, ManagedHost], *, limited: bool) -> Plan:
    """An offline plan with what the render manifest of the deployed revision managed and the inventory no longer
    does: units of removed instances and mounts on the selected hosts, and (without --limit) hosts that left."""
    if session.partial:  # an instance left out by --limit is not one that left the inventory
        return plan
    hosts = [replace(hp, changes=(*hp.changes, *removals(hp.host, session.desired[hp.host], managed[hp.host])))
             if hp.host in managed and hp.host in session.desired and not hp.error else hp for hp in plan.hosts]
    if not limited:
        known = {h.name for h in session.inv.hosts}
        hosts += [HostPlan(name, tuple(removals(name, None, m))) for name, m in managed.items() if name not in known]
    return replace(plan, hosts=tuple(hosts))


def offline_causes(plan: Plan) -> Plan:
    """In an offline plan the "host" is a render of the deployed revision, never edited by hand: a file that
    differs is one the inventory changed."""
    from provisioner.plan import CAUSES

    def one(c: Change) -> Change:
        if c.cause != "unknown":
            return c
        return replace(c, cause="inventory", reason=c.reason.replace(CAUSES["unknown"], CAUSES["inventory"]))

    return replace(plan, hosts=tuple(replace(h, changes=tuple(one(c) for c in h.changes)) for h in plan.hosts))
