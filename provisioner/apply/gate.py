"""The health gate after a restart: OpenClaw's probe contract, and what a healthy gateway requires of its channels.

For every restarted instance, in turn for all of them at once:

1. **Ready**: its health path (`/readyz`) answers 200 within its timeout. A 503 body's `failing` list is kept,
   so a gateway that never gets ready is reported with what OpenClaw named (`agent-database:main`, `telegram`).
2. **Channels proven** (`health.channels: probe`, the default, for an instance whose config enables channels):
   OpenClaw's own live probe, `channels status --probe --json`, run as the service user with the gateway's
   environment. An account whose probe failed fails the gate at once, naming the channel and the probe's
   error. Measured on 2026.9.6: an unreachable Telegram API is `probe.ok: false` seconds after the gateway is
   ready, while `/readyz` keeps answering 200 for the channel's 120 s grace.
3. **Settle**: an instance with channels the probe did not prove (a channel without a probe, `channels:
   readyz`, a CLI that could not ask) keeps being watched on `/readyz` for its settle time (the instance's
   `health.settle`, else the playbook's for this batch); a 503 then fails the gate with its `failing` list.
   An instance without channels, or whose channels all passed the probe, pays no settle time.

`channels: ignore` takes the instance's channels out of the decision (a failing list naming only them counts
as ready).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from provisioner.apply.facts import user_side
from provisioner.apply.plugin_gate import PluginInspect, check_plugins
from provisioner.apply.readiness import ProbeReport, describe_ready, failing_of, mask
from provisioner.apply.results import HostResult, Progress, ProgressEvent
from provisioner.core.desired import DesiredHost, DesiredService, FileKind
from provisioner.core.policies import Manager
from provisioner.remote.connect import run_script, transport_root
from provisioner.remote.scripts.systemd import unit_states_script
from provisioner.remote.scripts.user_units import parse_user_unit_states, user_unit_states_script
from provisioner.remote.transport import Transport, TransportError

ChannelProbe = Callable[[Sequence[str]], dict[str, ProbeReport]]  # instance names -> what the probe said of each


@dataclass(frozen=True)
class GateOptions:
    enabled: bool = True
    timeout: float | None = None  # overrides each service's own
    poll: float = 0.5
    settle: float = 0.0  # this batch's settle (the playbook's); an instance's own `health.settle` wins
    probe: ChannelProbe | None = None  # asks the host's gateways to probe their channels; None: cannot
    plugins: PluginInspect | None = None  # asks OpenClaw whether a pinned plugin loads; None: cannot


def crash_looping(t: Transport, units: list[str], become: bool,
                  desired: DesiredHost | None = None) -> tuple[str, str] | None:
    """A unit that keeps exiting will not get ready however long the gate waits: say so at once. systemd-user
    units are asked of the service user's manager, as that user."""
    mine = {s.unit for s in desired.services if s.manager is Manager.SYSTEMD_USER} if desired else set()
    blocks: list[dict[str, str]] = []
    try:
        system = [u for u in units if u not in mine]
        if system:
            out = run_script(t, unit_states_script(system), become=become, timeout=15).text()
            blocks += [dict(line.split("=", 1) for line in b.splitlines() if "=" in line) for b in out.split("\n\n")]
        if desired is not None and mine & set(units):
            user, group = user_side(desired)["user"] or (desired.service_user, desired.service_user)
            script = user_unit_states_script(user, group, [u for u in units if u in mine])
            blocks += parse_user_unit_states(run_script(t, script, become=become, timeout=15).text()).values()
    except TransportError:
        return None  # the poll itself reports a lost connection
    for f in blocks:
        n = f.get("NRestarts", "")
        restarts = int(n) if n.isdigit() else 0
        if f.get("Id") in units and (f.get("ActiveState") == "failed" or restarts >= 2):
            return f["Id"], (f"the unit keeps exiting ({f.get('ActiveState')}/{f.get('SubState')}, result "
                             f"{f.get('Result')}, restarted {restarts} times)")
    return None


def _ignored(s: DesiredService, failing: Sequence[str]) -> bool:
    """A 503 that names only channels the instance's policy ignores counts as ready."""
    return s.health_channels == "ignore" and bool(failing) and set(failing) <= set(s.channels)


def _ready(t: Transport, s: DesiredService, timeout: float) -> tuple[bool, str, tuple[str, ...]]:
    """(ready?, what it answered, the failing names) for one look at the instance's health path."""
    try:
        r = t.http_get(s.port, s.health_path, timeout=timeout)
    except TransportError as exc:
        return False, exc.detail, ()
    failing = failing_of(r.body) if r.status != 200 else ()
    return r.status == 200 or _ignored(s, failing), f"HTTP {describe_ready(r.status, failing)}", failing


def health_gate(t: Transport, desired: DesiredHost, units: list[str], result: HostResult, say: Progress,
                gate: GateOptions, become: bool = False) -> str | None:
    """Each restarted instance must be ready, have its channels proven or settled; None, or why not."""
    services = [s if gate.timeout is None else replace(s, health_timeout=gate.timeout)
                for s in desired.services if s.unit in units and s.port]
    start = time.monotonic()
    failure = _first_ready(t, desired, services, result, say, gate, become, start) or \
        check_plugins(desired, services, result, say, gate.plugins)
    if failure:
        return failure
    unproven = [s for s in services if s.channels and s.health_channels != "ignore"]
    probing = [s for s in unproven if s.health_channels == "probe"]
    if probing and gate.probe is not None:
        failure, proven = _probe_channels(desired, probing, result, say, gate.probe)
        if failure:
            return failure
        unproven = [s for s in unproven if s.unit not in proven]
    return _settle(t, desired, unproven, result, say, gate)


def _first_ready(t: Transport, desired: DesiredHost, services: list[DesiredService], result: HostResult,
                 say: Progress, gate: GateOptions, become: bool, start: float) -> str | None:
    pending = {s.unit: s for s in services}
    last: dict[str, str] = {}
    next_look = start + 2.0
    while pending:
        if time.monotonic() >= next_look and not transport_root(t):
            next_look = time.monotonic() + 2.0
            crashing = crash_looping(t, list(pending), become, desired)
            if crashing:
                unit, why = crashing
                s = pending[unit]
                result.health[s.instance] = f"not ready: {why}"
                log = f"_SYSTEMD_USER_UNIT={unit}" if s.manager is Manager.SYSTEMD_USER else f"-u {unit}"
                return f"{s.instance} will not start: {why} (see journalctl {log} on {desired.name})"
        for unit, s in list(pending.items()):
            ok, said, failing = _ready(t, s, min(5.0, s.health_timeout))
            if ok:
                result.health[s.instance] = f"ready after {time.monotonic() - start:.1f} s"
                say(desired.name, ProgressEvent(f"{s.instance} ready", "ready", instance=s.instance,
                                                elapsed=round(time.monotonic() - start, 1)))
                del pending[unit]
                continue
            last[unit] = said
            if failing:
                result.failing[s.instance] = list(failing)
            if time.monotonic() - start > s.health_timeout:
                result.health[s.instance] = f"not ready after {s.health_timeout:.0f} s: {said}"
                return (f"{s.instance} did not answer {s.health_path} on port {s.port} within "
                        f"{s.health_timeout:.0f} s ({last.get(unit, 'no answer')})")
        if pending:
            time.sleep(gate.poll)
    return None


def _probe_channels(desired: DesiredHost, probing: list[DesiredService], result: HostResult, say: Progress,
                    probe: ChannelProbe) -> tuple[str | None, set[str]]:
    """Ask the gateways to probe their channels; (why the gate fails, or None; the units proven)."""
    names = sorted({c for s in probing for c in s.channels})
    say(desired.name, ProgressEvent(f"probing channels {', '.join(names)} of {', '.join(s.instance for s in probing)}",
                                    "probing", instances=[s.instance for s in probing], channels=names))
    try:
        reports = probe([s.instance for s in probing])
    except TransportError as exc:
        reports = {s.instance: ProbeReport(problem=f"the channel probe failed: {exc.detail}") for s in probing}
    proven: set[str] = set()
    for s in probing:
        report = reports.get(s.instance, ProbeReport(problem="the channel probe said nothing of it"))
        bad = report.failed(s.channels)
        if bad:
            secrets = [v for f in desired.files if f.instance == s.instance and f.kind is FileKind.ENV
                       for v in f.secret_values]
            why = mask("; ".join(f"{v.channel}: {v.detail}" for v in bad), secrets)
            result.failing[s.instance] = [v.channel for v in bad]
            result.health[s.instance] = f"not ready: channel {', '.join(v.channel for v in bad)} failed " \
                                        f"OpenClaw's live probe ({why})"
            say(desired.name, ProgressEvent(f"{s.instance}: channel {', '.join(v.channel for v in bad)} failed its "
                                            "probe", "channel-failed", instance=s.instance,
                                            failing=[v.channel for v in bad]))
            return (f"{s.instance}: channel {', '.join(v.channel for v in bad)} cannot connect: OpenClaw's live "
                    f"probe failed ({why})"), proven
        if report.proven(s.channels):
            proven.add(s.unit)
            result.health[s.instance] += f"; channels {', '.join(s.channels)} passed the live probe"
        elif report.problem:
            result.health[s.instance] += f"; channels not probed: {mask(report.problem, [])}"
    return None, proven


def _settle(t: Transport, desired: DesiredHost, services: list[DesiredService], result: HostResult,
            say: Progress, gate: GateOptions) -> str | None:
    """Watch /readyz of instances with unproven channels for their settle time; a 503 fails the gate."""
    until = {s.unit: time.monotonic() + (s.health_settle if s.health_settle is not None else gate.settle)
             for s in services}
    watching = [s for s in services if until[s.unit] > time.monotonic()]
    if watching:
        longest = max(until.values()) - time.monotonic()
        say(desired.name, ProgressEvent(f"settling: watching /readyz of {', '.join(s.instance for s in watching)} "
                                        f"for {longest:.0f} s (channels not proven by a probe)", "settling",
                                        instances=[s.instance for s in watching], seconds=round(longest)))
    start = time.monotonic()
    while watching:
        for s in list(watching):
            ok, said, failing = _ready(t, s, 5.0)
            if not ok:
                result.failing[s.instance] = list(failing)
                result.health[s.instance] = f"not ready {time.monotonic() - start:.0f} s into settling: {said}"
                return (f"{s.instance} stopped being ready while settling: {s.health_path} answered {said} "
                        f"{time.monotonic() - start:.0f} s after it was first ready")
            if time.monotonic() >= until[s.unit]:
                watching.remove(s)
                result.health[s.instance] += f"; still ready after settling {time.monotonic() - start:.0f} s"
        if watching:
            time.sleep(max(gate.poll, 1.0))
    return None
