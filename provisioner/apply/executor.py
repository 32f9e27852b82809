"""Apply one host's planned changes: lock, re-check, atomic writes, systemd, health gate, roll back on failure."""

from __future__ import annotations

import contextlib
import enum
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from provisioner.apply.facts import recheck_request, user_side
from provisioner.apply.locks import Liveness, liveness, new_holder, parse_holder, refusal
from provisioner.core.changes import Action, Change, ChangeKind, HostPlan
from provisioner.core.desired import DesiredHost, DesiredRelease
from provisioner.core.observed import ObservedHost
from provisioner.install.release import Artifact
from provisioner.plan import ABSENT, dir_fingerprint, observed_fingerprint, release_fingerprint
from provisioner.remote.command import q, sh_script
from provisioner.remote.connect import run_script, transport_root
from provisioner.remote.probe import parse_probe, probe_script
from provisioner.remote.release import (
    INCOMING_DIR,
    incoming_dir_script,
    install_script,
    prune_incoming_script,
    prune_script,
    registry_install_script,
    switch_current_script,
)
from provisioner.remote.transport import Transport, TransportError
from provisioner.remote.trust import UNSAFE, root_output
from provisioner.remote.writes import (
    WriteBatch,
    clear_lock_script,
    lock_then,
    restore_script,
    systemctl_script,
    unlock_script,
    write_script,
)


class HostStatus(enum.Enum):
    UNCHANGED = "unchanged"
    CHANGED = "changed"
    FAILED = "failed"  # tried and failed; the host was put back on its previous files
    UNREACHABLE = "unreachable"
    NOT_REACHED = "not-reached"  # the rollout stopped before this host
    REFUSED = "refused"  # drifted since the plan, or locked by another run
    ROLLED_BACK = "rolled-back"  # took the new revision, then was put back because its batch failed


@dataclass
class HostResult:
    host: str
    status: HostStatus
    message: str = ""
    applied: list[Change] = field(default_factory=list)
    restarted: list[str] = field(default_factory=list)
    rolled_back: bool = False
    health: dict[str, str] = field(default_factory=dict)  # instance -> "ready after 9.1 s" / "not ready: ..."
    written: list[str] = field(default_factory=list)  # paths replaced on the host (their old versions are kept)
    reloaded: bool = False
    transferred: int = 0  # bytes of release tarballs pushed to the host
    settled: list[str] = field(default_factory=list)  # units now running the files on disk: clear their marks
    unlocked: bool = False  # the last script released the host lock itself

    @property
    def ok(self) -> bool:
        return self.status in (HostStatus.UNCHANGED, HostStatus.CHANGED)


Progress = Callable[[str, str], None]  # (host, what is happening)


class ApplyFailed(Exception):
    pass


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
    release_artifact: Callable[[], Artifact] | None = None,
    recheck_all: bool = False,
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
    res = run_script(t, lock_then(holder, probe_script(req, root), root, force=lock_force), become=become)
    first, _, rest = res.text().partition("\n")
    took_over = ""
    if res.ok and first.startswith("HELD") and liveness(parse_holder(first.removeprefix("HELD "))) is Liveness.DEAD:
        # the run holding it is provably dead (same controller, its process is gone): the host's files are each
        # whole, old or new, and its pending restarts are marked, so taking the lock over is safe
        stale = first.removeprefix("HELD ").strip()
        say(h, "taking over the stale lock of a killed run")
        cleared = run_script(t, clear_lock_script(stale, root), become=become, timeout=90)
        if "BUSY" in cleared.text():
            return HostResult(h, HostStatus.REFUSED, "a killed run's script is still running on the host after 60 s; "
                              "try again when it has finished")
        took_over = f"took over the stale lock of a killed run ({parse_holder(stale).describe()})"
        res = run_script(t, lock_then(holder, probe_script(req, root), root), become=become)
        first, _, rest = res.text().partition("\n")
    if not res.ok or first.strip() != "LOCKED":
        if first.startswith("HELD"):
            return HostResult(h, HostStatus.REFUSED, refusal(first.removeprefix("HELD ")))
        return HostResult(h, HostStatus.REFUSED, f"could not take the host lock: {res.err_text()[:300]}")
    settled: list[str] = []
    unlocked = False
    try:
        gate = GateOptions(health_gate, health_timeout, health_poll)
        say(h, "re-checking facts")
        observed = parse_probe(h, req, rest, root)
        result = _apply_locked(t, desired, planned, root, become, say, gate, observed, release_artifact, holder)
        settled, unlocked = result.settled, result.unlocked
        if took_over:
            result.message = f"{result.message}; {took_over}" if result.message else took_over
        return result
    finally:
        if not unlocked:
            with contextlib.suppress(TransportError):  # a lost connection must not hide the apply's own result
                run_script(t, unlock_script(holder, root, settled=settled), become=become)


@dataclass(frozen=True)
class GateOptions:
    enabled: bool = True
    timeout: float | None = None  # overrides each service's own
    poll: float = 0.5


def _apply_locked(t: Transport, desired: DesiredHost, planned: HostPlan, root: str, become: bool, say: Progress,
                  gate: GateOptions, observed: ObservedHost,
                  release_artifact: Callable[[], Artifact] | None = None, holder: str | None = None) -> HostResult:
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
                       run_id=uuid.uuid4().hex[:8], pending_units=restart + start)
    result = HostResult(h, HostStatus.CHANGED, applied=todo, written=[f.path for f in files])
    install = [c for c in todo if c.kind is ChangeKind.RELEASE and c.action is Action.CREATE]
    if install and desired.release is not None:
        failure = _install_release(t, desired.release, become, say, result, release_artifact)
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
        _finish_release(t, desired, todo, become, say)
        return result
    unit_changed = any(f.path.endswith(".service") for f in files)
    # a unit of an instance gone from the inventory is moved aside; a disabled instance keeps its unit file
    removed_unit_files = [f"/etc/systemd/system/{c.target}" for c in svc_changes
                          if c.action is Action.STOP and c.instance is None]
    say(h, "systemctl: " + ", ".join(restart + start + stop))
    res = run_script(t, systemctl_script(unit_changed, restart, start, stop, removed_unit_files,
                                         _mount_points(desired, restart + start)), become=become)
    result.restarted = restart + start
    result.reloaded = unit_changed
    failure = None if res.ok else f"systemctl failed: {refusal_reason(res.err_text()) or res.err_text()[:400]}"
    if failure is None and gate.enabled:
        failure = _health_gate(t, desired, restart + start, result, say, gate, become)
    if failure is None:
        result.settled = restart + start
        _finish_release(t, desired, todo, become, say)
        return result
    say(h, "rolling back")
    _restore(t, desired, [f.path for f in files], root, become)
    with contextlib.suppress(TransportError):
        if run_script(t, systemctl_script(unit_changed, restart + start, [], []), become=become).ok:
            result.settled = restart + start
    result.status = HostStatus.FAILED
    result.rolled_back = True
    result.message = f"{failure}; host put back on its previous files"
    return result


def _install_release(t: Transport, r: DesiredRelease, become: bool, say: Progress, result: HostResult,
                     release_artifact: Callable[[], Artifact] | None) -> str | None:
    """Put the pinned release in place under its prefix, before any file that refers to it is written."""
    run_id = uuid.uuid4().hex[:8]
    if r.source == "registry":
        say(t.host, f"installing OpenClaw {r.version} from the npm registry")
        res = run_script(t, registry_install_script(r.prefix, r.version, r.node_version, run_id), become=become,
                         timeout=1800)
        return None if res.ok and "INSTALLED" in res.text() else f"installing OpenClaw {r.version} from the " \
            f"registry failed: {res.err_text()[-400:]}"
    if release_artifact is None:
        return "no release artifact to push"
    art = release_artifact()
    # under the tool's root-only state dir, not /var/tmp, where the service user may create names too
    made = run_script(t, incoming_dir_script(), become=become)
    where = made.text().strip().removeprefix("DIR ")
    if not made.ok or not where.startswith(INCOMING_DIR):
        return f"cannot prepare {INCOMING_DIR}: {refusal_reason(made.err_text()) or made.err_text()[:300]}"
    incoming = f"{where}/ocp-release-{run_id}.tar.gz"
    say(t.host, f"pushing OpenClaw {r.version} ({art.size / 1e6:.0f} MB)")
    try:
        result.transferred += t.put_file(str(art.path), incoming, mode=0o600)
    except TransportError as exc:
        with contextlib.suppress(TransportError):
            run_script(t, prune_incoming_script(incoming), become=become)
        return f"pushing OpenClaw {r.version} failed: {exc.detail}"
    say(t.host, f"unpacking OpenClaw {r.version}")
    res = run_script(t, install_script(r.prefix, r.version, incoming, art.sha256, art.stamp, run_id), become=become,
                     timeout=900)
    if not res.ok or "INSTALLED" not in res.text():
        return f"installing OpenClaw {r.version} failed: {res.err_text()[-400:]}"
    return None


def _finish_release(t: Transport, desired: DesiredHost, todo: list[Change], become: bool, say: Progress) -> None:
    """After the gateways are healthy on it: point `current` at the release, then prune old ones."""
    r = desired.release
    if r is None:
        return
    if any(c.kind is ChangeKind.RELEASE_LINK for c in todo):
        say(t.host, f"current -> {r.version}")
        run_script(t, switch_current_script(r.prefix, r.version), become=become)
    old = [c.target.rsplit("/", 1)[-1] for c in todo if c.kind is ChangeKind.RELEASE and c.action is Action.DELETE]
    if old:
        run_script(t, prune_script(r.prefix, old), become=become)


def _restore(t: Transport, desired: DesiredHost, paths: list[str], root: str, become: bool) -> None:
    if paths:
        run_script(t, restore_script(paths, root, **_user_side(desired)), become=become)


def _mount_points(desired: DesiredHost, units: list[str]) -> list[str]:
    """The `Where=` of the mount units among those about to start (from their rendered files)."""
    out = []
    for f in desired.files:
        if f.path.endswith(".mount") and f.path.rsplit("/", 1)[-1] in units:
            out += [line[6:].replace("%%", "%") for line in f.content.decode().splitlines()
                    if line.startswith("Where=")]
    return out


def _user_side(desired: DesiredHost) -> dict[str, Any]:
    """restore_script's arguments naming the service user and the paths in its tree."""
    fields = user_side(desired)
    return {"user": fields["user"], "user_paths": fields["user_paths"]}


def refusal_reason(stderr: str) -> str | None:
    """Why a host script stopped before touching anything: a path swapped since the plan (REFUSED), or one that
    root may not act on because someone other than root could change it (UNSAFE)."""
    for line in stderr.splitlines():
        for word in ("REFUSED ", UNSAFE + " "):
            if line.startswith(word):
                what = line[len(word):]
                return what if word == "REFUSED " else f"{what}: root acts only where nobody else can write"
    return None


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
        res = run_script(t, lock_then(holder, restore_script(done.written, root, pending=units,
                                                             **_user_side(desired)), root), become=become)
        first = res.text().partition("\n")[0].strip()
        if first != "LOCKED":
            held = first.removeprefix("HELD ").strip() if first.startswith("HELD") else res.err_text()[:300]
            return HostResult(done.host, HostStatus.FAILED, f"rollback not done: the host is locked by another run "
                              f"({held})", rolled_back=False)
        try:
            if not res.ok:
                return HostResult(done.host, HostStatus.FAILED, f"rollback: restoring files failed: "
                                  f"{res.err_text()[:300]}", rolled_back=True)
            if units:
                res = run_script(t, systemctl_script(done.reloaded, units, [], []), become=become)
                if not res.ok:
                    return HostResult(done.host, HostStatus.FAILED, f"rollback: systemctl failed: "
                                      f"{res.err_text()[:300]}", rolled_back=True)
                settled = units
        finally:
            with contextlib.suppress(TransportError):
                run_script(t, unlock_script(holder, root, settled=settled), become=become)
    except TransportError as exc:
        return HostResult(done.host, HostStatus.FAILED, f"rollback failed: {exc.detail}", rolled_back=True)
    return HostResult(done.host, HostStatus.ROLLED_BACK, "its batch failed: put back on its previous files",
                      rolled_back=True)


def _crash_looping(t: Transport, units: list[str], become: bool) -> tuple[str, str] | None:
    """A unit that keeps exiting will not get ready however long the gate waits: say so at once."""
    script = sh_script(["systemctl show -p Id,ActiveState,SubState,Result,NRestarts -- "
                        + " ".join(q(u) for u in units) + " 2>/dev/null || true"])
    try:
        out = run_script(t, script, become=become, timeout=15).text()
    except TransportError:
        return None  # the poll itself reports a lost connection
    for block in out.split("\n\n"):
        f = dict(line.split("=", 1) for line in block.splitlines() if "=" in line)
        n = f.get("NRestarts", "")
        restarts = int(n) if n.isdigit() else 0
        if f.get("Id") in units and (f.get("ActiveState") == "failed" or restarts >= 2):
            return f["Id"], (f"the unit keeps exiting ({f.get('ActiveState')}/{f.get('SubState')}, result "
                             f"{f.get('Result')}, restarted {restarts} times)")
    return None


def _health_gate(t: Transport, desired: DesiredHost, units: list[str], result: HostResult, say: Progress,
                 gate: GateOptions, become: bool = False) -> str | None:
    """Each restarted instance must answer its health path with 200 within its timeout."""
    from dataclasses import replace

    poll = gate.poll
    services = [s if gate.timeout is None else replace(s, health_timeout=gate.timeout)
                for s in desired.services if s.unit in units and s.port]
    start = time.monotonic()
    pending = {s.unit: s for s in services}
    last: dict[str, str] = {}
    next_look = start + 2.0
    while pending:
        if time.monotonic() >= next_look and not transport_root(t):
            next_look = time.monotonic() + 2.0
            crashing = _crash_looping(t, list(pending), become)
            if crashing:
                unit, why = crashing
                s = pending[unit]
                result.health[s.instance] = f"not ready: {why}"
                return f"{s.instance} will not start: {why} (see journalctl -u {unit} on {desired.name})"
        for unit, s in list(pending.items()):
            try:
                r = t.http_get(s.port, s.health_path, timeout=min(5.0, s.health_timeout))
                if r.status == 200:
                    result.health[s.instance] = f"ready after {time.monotonic() - start:.1f} s"
                    say(desired.name, f"{s.instance} ready")
                    del pending[unit]
                    continue
                last[unit] = f"HTTP {r.status}"
            except TransportError as exc:
                last[unit] = exc.detail
            if time.monotonic() - start > s.health_timeout:
                result.health[s.instance] = f"not ready after {s.health_timeout:.0f} s: {last.get(unit, '')}"
                return (f"{s.instance} did not answer {s.health_path} on port {s.port} within "
                        f"{s.health_timeout:.0f} s ({last.get(unit, 'no answer')})")
        if pending:
            time.sleep(poll)
    return None
