"""Health of every instance on a host: the unit's state and the gateway's /healthz and /readyz, through SSH."""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace

from provisioner.apply.facts import user_side, user_unit_states
from provisioner.apply.results import HostResult, Progress
from provisioner.core.desired import DesiredHost
from provisioner.core.observed import ObservedService
from provisioner.core.policies import Manager
from provisioner.inventory.model import Host
from provisioner.remote.connect import run_script, transport_root
from provisioner.remote.scripts.gateway_env import parse_readonly, readonly_script
from provisioner.remote.scripts.openclaw_cli import per_instance_script, split_outputs
from provisioner.remote.scripts.probe import ProbeRequest, parse_probe, probe_script
from provisioner.remote.scripts.systemd import unit_states_script
from provisioner.remote.scripts.user_units import parse_user_unit_states, user_unit_states_script
from provisioner.remote.transport import Transport, TransportError

NOT_ASKED = "not asked"  # /healthz and /readyz of an unmanaged instance on a stand-in host


@dataclass(frozen=True)
class InstanceHealth:
    host: str
    instance: str
    unit: str
    port: int
    unit_state: str  # active / inactive / failed / not-found / unmanaged
    live: str  # "200", "503", or why it could not be asked
    ready: str
    openclaw: str = "not asked"  # what `openclaw gateway status` says: "rpc ok", "rpc failed: ...", ...
    openclaw_ok: bool | None = None
    # OPENCLAW_CONFIG_READONLY=1 in the running gateway's own environment: yes / no / - (no process found) / ?
    config_readonly: str = "?"

    @property
    def known(self) -> bool:
        """False when nothing could be asked: manager none on a stand-in host (a directory, not a machine)."""
        return self.ready != NOT_ASKED

    @property
    def healthy(self) -> bool:
        return (self.unit_state in ("active", "unmanaged") and self.ready == "200"
                and self.openclaw_ok is not False)


def _ask(t: Transport, port: int, path: str) -> str:
    try:
        return str(t.http_get(port, path, timeout=3.0).status)
    except TransportError as exc:
        return "no answer" if "refused" in exc.detail.lower() or "connect failed" in exc.detail.lower() \
            else exc.detail[:60]


def gateway_status(t: Transport, host: Host, command: Sequence[str], *, become: bool = False
                   ) -> dict[str, tuple[str, bool]]:
    """`openclaw gateway status --json` for every instance of the host, run as each instance's own service user
    (its env file read as data, never sourced by root); only what that user side printed is parsed."""
    insts = [i for i in host.instances if i.port]
    if not insts:
        return {}
    args = ["gateway", "status", "--json", "--timeout", "8000"]
    res = run_script(t, per_instance_script(insts, command, args, transport_root(t)), become=become, timeout=180)
    err = (res.err_text().splitlines() or [""])[-1]  # e.g. "as openclaw: timed out after 120 s"
    out: dict[str, tuple[str, bool]] = {}
    for inst, text in zip(insts, split_outputs(res.text(), len(insts)), strict=True):
        try:
            doc = json.loads(text[text.index("{"):])
        except ValueError:
            last = text.strip().splitlines()[-1:] or [f"no output ({err})" if err else "no output"]
            out[inst.name] = (f"status failed: {last[0][:80]}", False)
            continue
        rpc = doc.get("rpc") or {}
        valid = ((doc.get("config") or {}).get("daemon") or {}).get("valid", True)
        port = (doc.get("gateway") or {}).get("port")
        if rpc.get("ok") and valid and port == inst.port:
            out[inst.name] = (f"rpc ok, v{rpc.get('version', '?')}, port {port}", True)
        else:
            why = rpc.get("error") or rpc.get("kind") or "no answer"
            out[inst.name] = (f"rpc {why}; config valid={valid}; port {port}", False)
    return out


def host_health(t: Transport, desired: DesiredHost, *, become: bool = False, host: Host | None = None,
                command: Sequence[str] = ()) -> list[InstanceHealth]:
    units = tuple(s.unit for s in desired.services if s.manager is Manager.SYSTEMD)
    services: dict[str, ObservedService] = {}
    if units:
        req = ProbeRequest(units=units, unit_dirs=())
        root = transport_root(t)  # a stand-in host's units are not the controller's
        res = run_script(t, probe_script(req, root), become=become, timeout=60)
        if res.ok:
            services = parse_probe(t.host, req, res.text(), root).services
    with contextlib.suppress(TransportError):  # a user manager that cannot be asked: its units show not-found
        services.update(user_unit_states(t, desired, become=become))
    cli = gateway_status(t, host, command, become=become) if host is not None and command else {}
    readonly = config_readonly(t, desired, become)
    out = []
    for s in desired.services:
        o = services.get(s.unit)
        state = "unmanaged" if s.manager is Manager.NONE else (o.active_state if o and o.load_state == "loaded"
                                                              else "not-found")
        said, ok = cli.get(s.instance, ("not asked", None))
        out.append(InstanceHealth(desired.name, s.instance, s.unit, s.port, state, _ask(t, s.port, "/healthz"),
                                  _ask(t, s.port, s.health_path), said, ok, readonly.get(s.instance, "?")))
    return out + _unmanaged(t, desired, host, {s.instance for s in desired.services})


def _unmanaged(t: Transport, desired: DesiredHost, host: Host | None, seen: set[str]) -> list[InstanceHealth]:
    """Instances with no unit to ask (`manager: none`): their ports are asked, unless the host is a stand-in
    directory, where no gateway of the host's own runs and the controller's own ports would answer instead."""
    out = []
    for inst in host.instances if host is not None else ():
        if inst.name in seen or not inst.port:
            continue
        if transport_root(t):
            live = ready = NOT_ASKED
        else:
            live, ready = _ask(t, inst.port, "/healthz"), _ask(t, inst.port, inst.health_path)
        out.append(InstanceHealth(desired.name, inst.name, "-", inst.port, "unmanaged", live, ready,
                                  config_readonly="-"))
    return out


def config_readonly(t: Transport, desired: DesiredHost, become: bool) -> dict[str, str]:
    """Per instance: is OPENCLAW_CONFIG_READONLY=1 in its running gateway's environment (yes / no / -)?"""
    gateways = [s for s in desired.services if s.port]
    if not gateways or transport_root(t):
        return {s.instance: "-" for s in gateways}  # a stand-in host runs no gateway of its own
    targets = [(s.unit if s.manager is Manager.SYSTEMD else "", s.port) for s in gateways]
    try:
        res = run_script(t, readonly_script(targets), become=become, timeout=30)
    except TransportError:
        return {}
    return {s.instance: word for s, word in zip(gateways, parse_readonly(res.text(), len(gateways)), strict=True)}


# --- the gate after a restart -------------------------------------------------------------------------

@dataclass(frozen=True)
class GateOptions:
    enabled: bool = True
    timeout: float | None = None  # overrides each service's own
    poll: float = 0.5


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


def health_gate(t: Transport, desired: DesiredHost, units: list[str], result: HostResult, say: Progress,
                 gate: GateOptions, become: bool = False) -> str | None:
    """Each restarted instance must answer its health path with 200 within its timeout."""
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
            crashing = crash_looping(t, list(pending), become, desired)
            if crashing:
                unit, why = crashing
                s = pending[unit]
                result.health[s.instance] = f"not ready: {why}"
                log = f"_SYSTEMD_USER_UNIT={unit}" if s.manager is Manager.SYSTEMD_USER else f"-u {unit}"
                return f"{s.instance} will not start: {why} (see journalctl {log} on {desired.name})"
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
