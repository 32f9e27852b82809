"""Work many hosts at once: one transport per host for the whole run, facts and plans gathered in parallel."""

from __future__ import annotations

import contextlib
import dataclasses
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import TypeVar

from provisioner.apply.facts import gather
from provisioner.core.changes import HostPlan, Plan
from provisioner.core.desired import DesiredHost
from provisioner.core.observed import ObservedHost
from provisioner.core.policies import Manager
from provisioner.inventory.model import Host, Inventory
from provisioner.plan import plan_host
from provisioner.remote.connect import Note, SockFactory, open_transport, transport_root
from provisioner.remote.jump import Jumps
from provisioner.remote.transport import Transport, TransportError

T = TypeVar("T")
# hosts worked on at once unless `--forks` or the inventory's `forks` says otherwise: each one in flight holds a
# thread and an SSH connection
DEFAULT_FORKS = 64


class Fleet:
    """Open transports, one per host, reused by every stage of the run and closed at its end."""

    def __init__(self, inv: Inventory, *, offline_dir: str | None = None, sock_factory: SockFactory | None = None,
                 forks: int | None = None, connect_timeout: float | None = None, on_note: Note | None = None):
        self.inv = inv
        # the command line wins over the inventory, which wins over the default
        self.forks = forks or inv.forks or DEFAULT_FORKS
        self.offline_dir = offline_dir
        self.sock_factory = sock_factory
        self.on_note = on_note  # connect retries are reported through it
        if connect_timeout:  # --connect-timeout: over every host's and bastion's own
            inv = dataclasses.replace(inv, hosts=tuple(_timed(h, connect_timeout) for h in inv.hosts))
            self.inv = inv
        self.connect_timeout = connect_timeout
        self._transports: dict[str, Transport] = {}
        self._lock = threading.Lock()
        self._jumps = Jumps(sock_factory)  # bastion connections, shared by the hosts behind each

    def transport(self, host: Host) -> Transport:
        with self._lock:
            t = self._transports.get(host.name)
        if t is None:
            if self.connect_timeout:
                host = _timed(host, self.connect_timeout)
            t = open_transport(host, inv=self.inv, offline_dir=self.offline_dir, sock_factory=self.sock_factory,
                               jumps=self._jumps, on_note=self.on_note)
            with self._lock:
                self._transports[host.name] = t
        return t

    def each(self, hosts: Iterable[Host], fn: Callable[[Host], T]) -> dict[str, T | BaseException]:
        """Run fn per host in parallel, at most `forks` hosts at once; an exception is that host's result, never the
        run's."""
        hosts = list(hosts)
        out: dict[str, T | BaseException] = {}
        if not hosts:
            return out

        def one(h: Host) -> tuple[str, T | BaseException]:
            try:
                return h.name, fn(h)
            except Exception as exc:  # noqa: BLE001 - per-host results, the first exception must not win
                return h.name, exc

        with ThreadPoolExecutor(max_workers=min(self.forks, len(hosts))) as pool:
            for name, r in pool.map(one, hosts):
                out[name] = r
        return out

    def close(self) -> None:
        with self._lock:
            ts = list(self._transports.values())
            self._transports.clear()
        for t in ts:
            with contextlib.suppress(Exception):  # closing must not hide the run's real result
                t.close()
        self._jumps.close()  # after the hosts: their connections run over the bastions'

    def __enter__(self) -> Fleet:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def make_plan(fleet: Fleet, hosts: list[Host], desired: dict[str, DesiredHost],
              observed_out: dict[str, ObservedHost] | None = None) -> Plan:
    def one(h: Host) -> HostPlan:
        t = fleet.transport(h)
        obs = gather(t, desired[h.name], become=h.ssh.become and h.ssh.user != "root",
                     version_command=fleet.inv.openclaw.run_command if h.service.manager is not Manager.NONE else (),
                     listeners=True)
        if observed_out is not None:
            observed_out[h.name] = obs
        manage = not transport_root(t) and h.service.manager is not Manager.NONE
        return plan_host(desired[h.name], obs, manage_services=manage)

    results = fleet.each(hosts, one)
    host_plans = []
    for h in hosts:
        r = results[h.name]
        if isinstance(r, HostPlan):
            host_plans.append(r)
        else:
            host_plans.append(HostPlan(h.name, (), error=_describe(r)))
    return Plan(
        inventory_path=fleet.inv.path,
        inventory_sha256=fleet.inv.sha256,
        hosts=tuple(host_plans),
        created_at=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    )


def _timed(host: Host, seconds: float) -> Host:
    return dataclasses.replace(host, ssh=dataclasses.replace(host.ssh, connect_timeout=seconds))


def _describe(exc: BaseException) -> str:
    if isinstance(exc, TransportError):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"
