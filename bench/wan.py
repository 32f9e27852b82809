"""bench/run's WAN mode: the lab's hosts behind the delaying relay (tests/lab/relay.py), and what it measured.

Every tool reaches host i at the control address, port BASE_PORT + i, through one relay process in the lab's
client namespace; the relay adds the RTT to every byte both ways and to the TCP handshake. The relay is checked
before it is used: the time from connect() to sshd's banner must be 2 RTT, as over a real link (handshake, then
the banner). Its own account (how late it passed chunks on, its CPU) goes into the table, so a relay that could
not keep up shows.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path

from tests.lab.harness import Lab
from tests.lab.hosts import LabHost
from tests.lab.relay import RelayProcess

BASE_PORT = 30000


@dataclass(frozen=True)
class Endpoint:
    """Where a tool connects to reach a host: the host itself, or the relay's port for it."""

    address: str
    port: int


@dataclass
class Link:
    """One RTT setting of a run: the relay (None at direct), its endpoints, the known_hosts they need."""

    rtt_ms: float
    endpoints: dict[str, Endpoint]
    known_hosts: Path
    relay: RelayProcess | None = None
    banner_ms: list[float] = field(default_factory=list)
    stats: dict[str, float] = field(default_factory=dict)

    def close(self) -> None:
        if self.relay is not None:
            self.stats = self.relay.stop()
            self.relay = None


def direct(hosts: list[LabHost]) -> Link:
    return Link(-1, {h.name: Endpoint(h.address, h.port) for h in hosts}, hosts[0].known_hosts_path)


def relayed(lab: Lab, hosts: list[LabHost], rtt_ms: float, work: Path) -> Link:
    """Start the relay in front of `hosts` with `rtt_ms` added, check it, and return the link."""
    ctl = lab.cfg.ctl_address
    ports = {h.name: BASE_PORT + i for i, h in enumerate(hosts)}
    kh = work / f"known_hosts-relay-{rtt_ms:g}"
    # the tools look the host key up under "[address]:port", the endpoint they were given
    kh.write_text("".join(f"[{ctl}]:{ports[h.name]} {h.host_public_key}\n" for h in hosts))
    relay = RelayProcess([(ports[h.name], h.address, h.port) for h in hosts], rtt_ms, listen=ctl,
                         argv_prefix=lab.client_argv([]))
    link = Link(rtt_ms, {h.name: Endpoint(ctl, p) for h, p in zip(hosts, ports.values(), strict=True)}, kh, relay)
    try:
        link.banner_ms = [1000 * _banner_time(lab, ctl, ports[hosts[i % len(hosts)].name]) for i in range(10)]
    except BaseException:
        link.close()
        raise
    return link


def _banner_time(lab: Lab, address: str, port: int) -> float:
    """Seconds from the start of connect() to sshd's first line, made from the client namespace."""
    t0 = time.perf_counter()
    s = lab.connect_socket(address, port, timeout=30)
    try:
        s.settimeout(30)
        got = b""
        while b"\n" not in got:
            chunk = s.recv(256)
            if not chunk:
                raise OSError(f"{address}:{port} closed before its banner")
            got += chunk
    finally:
        s.close()
    if not got.startswith(b"SSH-"):
        raise OSError(f"{address}:{port} is not sshd: {got[:40]!r}")
    return time.perf_counter() - t0


def link_lines(links: list[Link]) -> list[str]:
    """The relay's checks and account, one table row per RTT."""
    lines = ["", "The relay, per RTT: connect() to sshd's banner (10 connections, best and median: sshd's own time to "
             "answer plus, over a real link, 2 RTT: the handshake and the banner; expected = the best at 0 ms + 2 "
             "RTT), and the relay's own account of the whole run: how late it passed chunks on (p50 / p99) and the "
             "CPU it used:", "",
             "| RTT (ms) | banner best / median (ms) | expected (ms) | chunks | late p50 / p99 (ms) | relay CPU (s) |",
             "|---|---|---|---|---|---|"]
    base = min((min(k.banner_ms) for k in links if k.rtt_ms == 0), default=None)
    for k in links:
        st = k.stats
        expected = f"{base + 2 * k.rtt_ms:.1f}" if base is not None else f"sshd + {2 * k.rtt_ms:g}"
        lines.append(f"| {k.rtt_ms:g} | {min(k.banner_ms):.1f} / {statistics.median(k.banner_ms):.1f} "
                     f"| {expected} | {int(st.get('chunks', 0))} "
                     f"| {st.get('p50_ms', float('nan')):.1f} / {st.get('p99_ms', float('nan')):.1f} "
                     f"| {st.get('cpu_s', float('nan')):.2f} |")
    return lines


def wan_summary(results: dict[str, dict[str, dict[str, float]]], rtts: list[float], counts: list[int]) -> list[str]:
    """The target's sentence per host count: what the RTT cost the no-op plan, against the floor."""
    lines = [""]
    lo, hi = min(rtts), max(rtts)
    for n in counts:
        a, b = results.get(label(n, lo), {}), results.get(label(n, hi), {})
        p_lo, p_hi = a.get("provision", {}).get("noop-plan"), b.get("provision", {}).get("noop-plan")
        if p_lo is None or p_hi is None:
            continue
        floor = 7 * (hi - lo) / 1000
        line = (f"{n} hosts: the no-op plan at {hi:g} ms costs {p_hi - p_lo:+.2f} s over {lo:g} ms (target: at most "
                f"+0.50 s; the floor, ~7 round trips for connect + probe, is {floor:.2f} s)")
        q_lo, q_hi = a.get("pyinfra", {}).get("noop"), b.get("pyinfra", {}).get("noop")
        if q_lo is not None and q_hi is not None:
            line += (f"; pyinfra's no-op is {q_lo - p_lo:+.2f} s over provision's no-op plan at {lo:g} ms, "
                     f"{q_hi - p_hi:+.2f} s at {hi:g} ms")
        lines.append(line + ".")
    return lines


def label(n: int, rtt: float | None) -> str:
    return str(n) if rtt is None or rtt < 0 else f"{n} @ {rtt:g} ms"
