"""Apply one host's planned changes: lock, re-check, atomic writes, systemd, health gate, roll back on failure."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Callable

from provisioner.apply.facts import recheck_request, user_side
from provisioner.apply.gate import ChannelProbe, GateOptions, health_gate
from provisioner.apply.locks import acquire, new_holder
from provisioner.apply.plugin_gate import PluginInspect
from provisioner.apply.plugin_steps import install_plugins
from provisioner.apply.release_steps import finish_release, install_release
from provisioner.apply.restarts import run_restarts
from provisioner.apply.results import HostResult, HostStatus, Progress
from provisioner.apply.upgrade_state import StateGuard
from provisioner.core.changes import Action, ChangeKind, HostPlan
from provisioner.core.desired import DesiredFile, DesiredHost
from provisioner.core.observed import ObservedHost
from provisioner.digests import key_id, keyed
from provisioner.install.release import Artifact
from provisioner.plan import ABSENT, dir_fingerprint, observed_fingerprint, release_fingerprint, sha256
from provisioner.remote.connect import held, run_script, transport_root
from provisioner.remote.scripts.locks import unlock_script
from provisioner.remote.scripts.probe import APPLIED_PATH, parse_probe, probe_script
from provisioner.remote.scripts.tokens import ensure_tokens_script
from provisioner.remote.scripts.trust import refusal_reason, root_output
from provisioner.remote.scripts.writes import WriteBatch, record_line, restore_script, write_script
from provisioner.remote.transport import Transport, TransportError


def drift(planned: HostPlan, observed: ObservedHost) -> list[str]:
    """Targets whose observed state is not what the plan was made against."""
    out = []
    for c in planned.changes:
        if c.kind is ChangeKind.FILE:
            if c.target not in observed.files:
                continue  # not re-checked: an unchanged file of a plan made in this same run
            now = observed_fingerprint(observed.files.get(c.target))
        elif c.kind is ChangeKind.DIR:
            if c.target not in observed.dirs:
                continue
            now = dir_fingerprint(observed.dirs.get(c.target))
        elif c.kind is ChangeKind.RELEASE:
            now = release_fingerprint(observed.releases.get(c.target.rsplit("/", 1)[-1]))
        elif c.kind is ChangeKind.RELEASE_LINK:
            now = observed.current_release or ABSENT
        else:
            continue
        if now != c.before:
            out.append(c.target)
    return out


def apply_host(
    t: Transport,
    desired: DesiredHost,
    planned: HostPlan,
    *,
    become: bool = False,
    progress: Progress | None = None,
    health_poll: float = 0.5,
    lock_force: bool = False,
    health_gate: bool = True,
    health_timeout: float | None = None,
    settle: float = 0.0,
    channel_probe: ChannelProbe | None = None,
    plugin_inspect: PluginInspect | None = None,
    release_artifact: Callable[[], Artifact] | None = None,
    recheck_all: bool = False,
    guard: StateGuard | None = None,
) -> HostResult:
    say = progress or (lambda h, m: None)
    h = desired.name
    if not planned.has_changes:
        return HostResult(h, HostStatus.UNCHANGED, "no changes")
    if planned.refusals:
        # never applied, not even in part: the operator has to look at what is there first
        return HostResult(h, HostStatus.REFUSED, "refused, nothing on this host was touched: " + "; ".join(
            f"{c.target} {c.reason}" for c in planned.refusals))
    root = transport_root(t)
    holder = new_holder()
    # one round trip: take the lock, then re-read the facts the plan was made against
    req = recheck_request(desired, planned, everything=recheck_all)
    got = acquire(t, holder, probe_script(req, root), root, become=become, say=lambda m: say(h, m), force=lock_force)
    if not got.ok:
        return HostResult(h, HostStatus.REFUSED, got.refusal)
    rest, took_over = got.rest, got.took_over
    settled: list[str] = []
    unlocked = False
    try:
        gate = GateOptions(health_gate, health_timeout, health_poll, settle, channel_probe, plugin_inspect)
        say(h, "re-checking facts")
        observed = parse_probe(h, req, rest, root)
        result = _apply_locked(held(t, holder), desired, planned, root, become, say, gate, observed,
                               release_artifact, holder, guard)
        settled, unlocked = result.settled, result.unlocked
        if took_over:
            result.message = f"{result.message}; {took_over}" if result.message else took_over
        return result
    finally:
        if not unlocked:
            with contextlib.suppress(TransportError):  # a lost connection must not hide the apply's own result
                run_script(t, unlock_script(holder, root, settled=settled), become=become)


def _apply_locked(t: Transport, desired: DesiredHost, planned: HostPlan, root: str, become: bool, say: Progress,
                  gate: GateOptions, observed: ObservedHost,
                  release_artifact: Callable[[], Artifact] | None = None, holder: str | None = None,
                  guard: StateGuard | None = None) -> HostResult:
    h = desired.name
    moved = drift(planned, observed)
    if moved:
        return HostResult(h, HostStatus.REFUSED, "host changed since the plan was made: " + ", ".join(moved[:5])
                          + (" ..." if len(moved) > 5 else "") + "; run plan again")
    todo = [c for c in planned.changes if c.action is not Action.NOOP]
    file_targets = {c.target for c in todo if c.kind is ChangeKind.FILE}
    dir_targets = {c.target for c in todo if c.kind is ChangeKind.DIR}
    files = [f for f in desired.files if f.path in file_targets]
    dirs = [d for d in desired.dirs if d.path in dir_targets]
    user = next((c.target for c in todo if c.kind is ChangeKind.USER), None)
    svc_changes = [] if root else [c for c in todo if c.kind is ChangeKind.SERVICE]
    restart = [c.target for c in svc_changes if c.action is Action.RESTART]
    start = [c.target for c in svc_changes if c.action is Action.START]
    stop = [c.target for c in svc_changes if c.action is Action.STOP]
    batch = WriteBatch(files=files, dirs=dirs, create_user=user, user_home=desired.service_home,
                       run_id=uuid.uuid4().hex[:8], pending_units=restart + start, tokens=desired.tokens,
                       record=applied_record(files))
    result = HostResult(h, HostStatus.CHANGED, applied=todo, written=[f.path for f in files])
    install = [c for c in todo if c.kind is ChangeKind.RELEASE and c.action is Action.CREATE]
    if install and desired.release is not None:
        failure = install_release(t, desired.release, become, say, result, release_artifact)
        if failure:
            return HostResult(h, HostStatus.FAILED, f"{failure}; nothing else was changed", applied=[],
                              transferred=result.transferred)
    failure = install_plugins(t, desired, todo, become, say, result) if desired.plugins else None
    if failure:
        return HostResult(h, HostStatus.FAILED, f"{failure}; no file was written", applied=[],
                          transferred=result.transferred)
    if guard is not None and svc_changes:  # a version switch: the state is backed up before anything changes
        failure = guard.snapshot(t, todo, restart + start, say)
        if failure:
            return HostResult(h, HostStatus.FAILED, f"{failure}; nothing else was changed", applied=[],
                              transferred=result.transferred)
    last = not svc_changes and not any(c.kind in (ChangeKind.RELEASE, ChangeKind.RELEASE_LINK) for c in todo)
    if files or dirs or user:
        say(h, f"writing {len(files)} file(s)")
        script = write_script(batch, root, chown=not root)
        if last and holder:
            # nothing follows the writes: release the lock in the same round trip (only reached if they succeed)
            script += unlock_script(holder, root)
        res = run_script(t, script, become=become)
        said = root_output(res.text())
        result.unlocked = "UNLOCKED" in said
        if not res.ok or "WROTE" not in said:
            if "RENAMING" in said:
                # failed while renaming: put back, from this run's backups, what may have moved
                _restore(t, desired, [f.path for f in files], root, become)
            # else phase 1 failed before any rename: every target is untouched, and the backups on the host
            # are an earlier run's, so restoring from them would be wrong
            refused = refusal_reason(res.err_text())
            if refused:
                return HostResult(h, HostStatus.REFUSED, f"refused at the moment of writing, nothing was changed: "
                                  f"{refused}", settled=restart + start)
            return HostResult(h, HostStatus.FAILED, f"writing files failed: {res.err_text()[:400]}; host left on its "
                              "previous files", rolled_back=True, settled=restart + start)
    if not svc_changes:
        finish_release(t, desired, todo, become, say)
        return result
    if desired.tokens and not (files or dirs or user) and (restart or start):
        # a restart with nothing written (a unit left pending): its token file must still be there
        res = run_script(t, ensure_tokens_script(desired.tokens, root), become=become)
        if not res.ok:
            return HostResult(h, HostStatus.FAILED, f"gateway token: {res.err_text()[:300]}; nothing was restarted",
                              applied=[], settled=[])
    unit_changed = any(f.path.endswith(".service") for f in files)
    # a unit of an instance gone from the inventory is moved aside; a disabled instance keeps its unit file
    removed_unit_files = [f"/etc/systemd/system/{c.target}" for c in svc_changes
                          if c.action is Action.STOP and c.instance is None]
    say(h, "systemctl: " + ", ".join(restart + start + stop))
    done = run_restarts(t, desired, say, reload=unit_changed, restart=restart, start=start, stop=stop,
                        remove_units=removed_unit_files, mount_points=_mount_points(desired, restart + start),
                        become=become, poll=gate.poll)
    ran = done.result
    assert ran is not None
    result.restarted = restart + start
    result.reloaded = unit_changed
    result.restarts.update(done.deadlines)
    failure = done.failure if ran.ok else \
        f"systemctl failed: {refusal_reason(ran.err_text()) or ran.err_text()[:400]}"
    if failure is None and gate.enabled:
        failure = health_gate(t, desired, restart + start, result, say, gate, become)
    if failure is None:
        result.settled = restart + start
        finish_release(t, desired, todo, become, say)
        return result
    say(h, "rolling back")
    state = guard is not None and bool(guard.archives)
    if state:  # the new gateways stop before their state dirs are swapped under them
        with contextlib.suppress(TransportError):
            run_restarts(t, desired, say, reload=False, restart=[], stop=restart + start, become=become)
    _restore(t, desired, [f.path for f in files], root, become)
    if state and guard is not None:
        _, note = guard.restore(t, say)  # put back or not, the note says which
        failure = f"{failure}; {note}"
    with contextlib.suppress(TransportError):
        back = run_restarts(t, desired, say, reload=unit_changed, restart=restart + start, become=become,
                            poll=gate.poll)
        result.restarts.update({u: f"rolling back: {why}" for u, why in back.deadlines.items()})
        if back.result is not None and back.result.ok and not back.failure:
            result.settled = restart + start
    result.status = HostStatus.FAILED
    result.rolled_back = True
    result.message = f"{failure}; host put back on its previous files"
    return result


def applied_record(files: list[DesiredFile]) -> list[str]:
    """The record of what these writes put on the host (keyed digests), so that a later plan can tell a change of
    the inventory from a hand edit on the host (plan.py `_cause`)."""
    return [record_line(key_id(), keyed(sha256(f.content)), f.path) for f in files]


def _restore(t: Transport, desired: DesiredHost, paths: list[str], root: str, become: bool) -> None:
    if paths:  # the applied record goes back with the files it describes
        run_script(t, restore_script([*paths, APPLIED_PATH], root, **user_side(desired)), become=become)


def _mount_points(desired: DesiredHost, units: list[str]) -> list[str]:
    """The `Where=` of the mount units among those about to start (from their rendered files)."""
    out = []
    for f in desired.files:
        if f.path.endswith(".mount") and f.path.rsplit("/", 1)[-1] in units:
            out += [line[6:].replace("%%", "%") for line in f.content.decode().splitlines()
                    if line.startswith("Where=")]
    return out


def roll_back_host(t: Transport, desired: DesiredHost, done: HostResult, *, become: bool = False,
                   progress: Progress | None = None) -> HostResult:
    """Put a host that took the new revision back on its previous files and restart what was restarted."""
    say = progress or (lambda h, m: None)
    root = transport_root(t)
    say(done.host, "rolling back (batch failed)")
    holder = new_holder()
    units = done.restarted if not root else []
    settled: list[str] = []
    try:
        # under the host lock again: the apply released it when the host itself was done
        written = [*done.written, APPLIED_PATH] if done.written else []  # the record goes back with the files
        script = restore_script(written, root, pending=units, **user_side(desired))
        got = acquire(t, holder, script, root, become=become, say=lambda m: say(done.host, m), take_over=False)
        if not got.ok:
            return HostResult(done.host, HostStatus.FAILED, f"rollback not done: {got.refusal}", rolled_back=False)
        try:
            if got.result is None or not got.result.ok or "RESTORED" not in root_output(got.rest):
                why = got.result.err_text()[:300] if got.result else ""
                return HostResult(done.host, HostStatus.FAILED, f"rollback: restoring files failed: {why}",
                                  rolled_back=True)
            if units:
                back = run_restarts(held(t, holder), desired, say, reload=done.reloaded, restart=units,
                                    become=become)
                res = back.result
                assert res is not None
                if not res.ok or back.failure:
                    why = back.failure or f"systemctl failed: {res.err_text()[:300]}"
                    return HostResult(done.host, HostStatus.FAILED, f"rollback: {why}", rolled_back=True)
                settled = units
        finally:
            with contextlib.suppress(TransportError):
                run_script(t, unlock_script(holder, root, settled=settled), become=become)
    except TransportError as exc:
        return HostResult(done.host, HostStatus.FAILED, f"rollback failed: {exc.detail}", rolled_back=True)
    return HostResult(done.host, HostStatus.ROLLED_BACK, "its batch failed: put back on its previous files",
                      rolled_back=True)


