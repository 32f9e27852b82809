"""Health of every instance on a host: the unit's state and the gateway's /healthz and /readyz, through SSH."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from provisioner.apply.facts import user_unit_states
from provisioner.apply.readiness import ProbeReport, failing_of, mask, probe_report
from provisioner.core.desired import DesiredHost, DesiredService, FileKind
from provisioner.core.observed import ObservedService
from provisioner.core.policies import Manager
from provisioner.inventory.model import Host
from provisioner.remote.connect import run_script, transport_root
from provisioner.remote.scripts.gateway_env import parse_readonly, readonly_script
from provisioner.remote.scripts.openclaw_cli import per_instance_script, split_outputs
from provisioner.remote.scripts.probe import ProbeRequest, parse_probe, probe_script
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
    failing: tuple[str, ...] = ()  # what /readyz named as failing (e.g. "telegram")
    channels: str = ""  # what OpenClaw's live channel probe said, when asked
    channels_failing: tuple[str, ...] = ()  # the channels whose probe failed

    @property
    def known(self) -> bool:
        """False when nothing could be asked: manager none on a stand-in host (a directory, not a machine)."""
        return self.ready != NOT_ASKED

    @property
    def healthy(self) -> bool:
        return (self.unit_state in ("active", "unmanaged") and self.ready == "200"
                and self.openclaw_ok is not False and not self.channels_failing)


def _ask(t: Transport, port: int, path: str) -> tuple[str, tuple[str, ...]]:
    """The status the path answers (or why there is none), and the `failing` list of a non-200 body."""
    try:
        r = t.http_get(port, path, timeout=3.0)
    except TransportError as exc:
        return ("no answer" if "refused" in exc.detail.lower() or "connect failed" in exc.detail.lower()
                else exc.detail[:60]), ()
    return str(r.status), failing_of(r.body) if r.status != 200 else ()


def channel_probe(t: Transport, host: Host, command: Sequence[str], *, become: bool = False
                  ) -> Callable[[Sequence[str]], dict[str, ProbeReport]]:
    """OpenClaw's live channel probe (`channels status --probe --json`) of the named instances of the host, each
    run as its own service user with its gateway's environment (see remote/scripts/openclaw_cli.py)."""
    def probe(names: Sequence[str]) -> dict[str, ProbeReport]:
        insts = [i for i in host.instances if i.name in names and i.port]
        if not insts:
            return {}
        args = ["channels", "status", "--probe", "--json"]
        res = run_script(t, per_instance_script(insts, command, args, transport_root(t)), become=become,
                         timeout=180)
        return {i.name: probe_report(text)
                for i, text in zip(insts, split_outputs(res.text(), len(insts)), strict=True)}
    return probe


def plugin_inspect(t: Transport, host: Host, command: Sequence[str], *, become: bool = False
                   ) -> Callable[[str, Sequence[str]], dict[str, str]]:
    """OpenClaw's runtime inspection of one plugin (`plugins inspect <id> --runtime --json`, which imports it) in
    the named instances, each as its service user with its gateway's environment (apply/plugin_gate.py)."""
    def inspect(plugin_id: str, names: Sequence[str]) -> dict[str, str]:
        insts = [i for i in host.instances if i.name in names]
        args = ["plugins", "inspect", plugin_id, "--runtime", "--json"]
        res = run_script(t, per_instance_script(insts, command, args, transport_root(t)), become=become,
                         timeout=300)
        return {i.name: text for i, text in zip(insts, split_outputs(res.text(), len(insts)), strict=True)}
    return inspect


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
    with_channels = [s.instance for s in desired.services if s.channels and s.port]
    probed = channel_probe(t, host, command, become=become)(with_channels) \
        if host is not None and command and with_channels else {}
    out = []
    for s in desired.services:
        o = services.get(s.unit)
        state = "unmanaged" if s.manager is Manager.NONE else (o.active_state if o and o.load_state == "loaded"
                                                              else "not-found")
        said, ok = cli.get(s.instance, ("not asked", None))
        ready, failing = _ask(t, s.port, s.health_path)
        channels, bad = _channels_said(s, probed.get(s.instance), desired)
        out.append(InstanceHealth(desired.name, s.instance, s.unit, s.port, state, _ask(t, s.port, "/healthz")[0],
                                  ready, said, ok, readonly.get(s.instance, "?"), failing, channels, bad))
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
            live, ready = _ask(t, inst.port, "/healthz")[0], _ask(t, inst.port, inst.health_path)[0]
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


def _channels_said(s: DesiredService, report: ProbeReport | None, desired: DesiredHost
                   ) -> tuple[str, tuple[str, ...]]:
    if not s.channels:
        return "none", ()
    if report is None:
        return "not probed", ()
    bad = report.failed(s.channels)
    if bad:
        secrets = [v for f in desired.files if f.instance == s.instance and f.kind is FileKind.ENV
                   for v in f.secret_values]
        return mask("; ".join(f"{v.channel} failed: {v.detail}" for v in bad), secrets), tuple(v.channel for v in bad)
    if report.proven(s.channels):
        return f"{', '.join(s.channels)}: probe ok", ()
    return report.problem or f"{', '.join(s.channels)}: no probe result", ()
