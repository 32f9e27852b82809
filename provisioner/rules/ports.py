"""Ports: the span of ports an OpenClaw instance occupies, and the rules that keep spans on a host apart."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from provisioner.core.diagnostics import Diagnostic
from provisioner.inventory.model import Instance
from provisioner.rules.browser import cdp_ports
from provisioner.rules.context import Ctx, _pairs, _where

# FACTS (OpenClaw 2026.9.6): from base B, browser control B+2, extension relay B+3..B+10, managed CDP B+11..B+110
DERIVED_SPAN = 110
RECOMMENDED_SPACING = 120


@dataclass(frozen=True)
class PortSpan:
    """The ports one instance occupies: its derived range plus explicit CDP ports."""

    base: int
    extra: tuple[int, ...]

    @property
    def range(self) -> range:
        return range(self.base, self.base + DERIVED_SPAN + 1)

    def ports(self) -> set[int]:
        return set(self.range) | set(self.extra)

    def describe(self) -> str:
        extra = f" + CDP {', '.join(map(str, self.extra))}" if self.extra else ""
        return f"{self.base}..{self.base + DERIVED_SPAN}{extra}"


def port_span(inst: Instance) -> PortSpan | None:
    if inst.port is None:
        return None
    return PortSpan(inst.port, tuple(sorted({p for _, p in cdp_ports(inst)})))


def rule_port_required(c: Ctx) -> Iterator[Diagnostic]:
    for h in c.inv.hosts:
        for i in h.instances:
            if i.port is None:
                yield c.error("port-missing", f"{i.address}: no port; give every instance an explicit `port:` "
                              "(OpenClaw would otherwise derive one from the profile name)", c.at(i.doc_path))


def rule_port_range(c: Ctx) -> Iterator[Diagnostic]:
    for h in c.inv.hosts:
        for i in h.instances:
            if i.port is not None and i.port + DERIVED_SPAN > 65535:
                yield c.error("port-range", f"{i.address}: base port {i.port} leaves no room for its derived ports "
                              f"(they run to {i.port + DERIVED_SPAN}, past 65535)", c.field(i, "port"))
            for name, port in cdp_ports(i):
                if not 1 <= port <= 65535:
                    yield c.error("port-range", f"{i.address}: browser profile {name!r} cdpPort {port} is outside "
                                  "1..65535", c.field(i, "config", "browser", "profiles", name, "cdpPort"))


def rule_port_overlap(c: Ctx) -> Iterator[Diagnostic]:
    for h in c.inv.hosts:
        for a, b in _pairs(h):
            sa, sb = port_span(a), port_span(b)
            if sa is None or sb is None:
                continue
            common = sa.ports() & sb.ports()
            first_a = c.field(a, "port")
            if common:
                lo, hi = min(common), max(common)
                shared = f"{lo}" if lo == hi else f"{lo}..{hi}" if len(common) == hi - lo + 1 else \
                    f"{len(common)} ports between {lo} and {hi}"
                yield c.error(
                    "port-overlap",
                    f"{b.address} and {a.address}{_where(first_a)} occupy the same ports ({shared}): "
                    f"{b.name} uses {sb.describe()}, {a.name} uses {sa.describe()} (an OpenClaw instance occupies "
                    f"its base port through base+{DERIVED_SPAN})",
                    c.field(b, "port"), first_a)
            elif abs(sa.base - sb.base) < RECOMMENDED_SPACING:
                yield c.warning(
                    "port-spacing",
                    f"{b.address} base port {sb.base} is {abs(sa.base - sb.base)} from {a.address}'s {sa.base}"
                    f"{_where(first_a)}; keep base ports at least {RECOMMENDED_SPACING} apart",
                    c.field(b, "port"), first_a)
