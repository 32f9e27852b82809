"""Health of every instance on a host: the unit's state and the gateway's /healthz and /readyz, through SSH."""

from __future__ import annotations

from dataclasses import dataclass

from provisioner.model import DesiredHost, ObservedService
from provisioner.remote.connect import run_script
from provisioner.remote.probe import ProbeRequest, parse_probe, probe_script
from provisioner.remote.transport import Transport, TransportError


@dataclass(frozen=True)
class InstanceHealth:
    host: str
    instance: str
    unit: str
    port: int
    unit_state: str  # active / inactive / failed / not-found / unmanaged
    live: str  # "200", "503", or why it could not be asked
    ready: str

    @property
    def healthy(self) -> bool:
        return self.unit_state in ("active", "unmanaged") and self.ready == "200"


def _ask(t: Transport, port: int, path: str) -> str:
    try:
        return str(t.http_get(port, path, timeout=3.0).status)
    except TransportError as exc:
        return "no answer" if "refused" in exc.detail.lower() or "connect failed" in exc.detail.lower() \
            else exc.detail[:60]


def host_health(t: Transport, desired: DesiredHost, *, become: bool = False) -> list[InstanceHealth]:
    units = tuple(s.unit for s in desired.services if s.manager == "systemd")
    services: dict[str, ObservedService] = {}
    if units:
        req = ProbeRequest(units=units, unit_dirs=())
        res = run_script(t, probe_script(req), become=become, timeout=60)
        if res.ok:
            services = parse_probe(t.host, req, res.text()).services
    out = []
    for s in desired.services:
        o = services.get(s.unit)
        state = "unmanaged" if s.manager != "systemd" else (o.active_state if o and o.load_state == "loaded"
                                                              else "not-found")
        out.append(InstanceHealth(desired.name, s.instance, s.unit, s.port, state, _ask(t, s.port, "/healthz"),
                                  _ask(t, s.port, s.health_path)))
    return out
