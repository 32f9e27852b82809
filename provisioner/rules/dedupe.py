"""Inbound dedupe for HA gateways: every instance must claim messages in one shared directory, outside state."""

from __future__ import annotations

from collections.abc import Iterator

from provisioner.core.diagnostics import Diagnostic, SourceSpan
from provisioner.inventory.model import Instance
from provisioner.rules.context import Ctx, _get, _where
from provisioner.rules.paths import _inside


def rule_dedupe(c: Ctx) -> Iterator[Diagnostic]:
    dd = c.inv.dedupe
    if dd and not dd.configure_gateway:
        yield c.warning("dedupe-not-rendered", f"dedupe.configure_gateway is false: {dd.dir} is provisioned and "
                        "verified, but gateway.inboundDedupe is not rendered, so these gateways will NOT coordinate "
                        "and an inbound message may be processed once per host",
                        c.at(("dedupe", "configure_gateway")))
    first: tuple[Instance, str, SourceSpan | None] | None = None
    for h in c.inv.hosts:
        for i in h.instances:
            if dd and _inside(dd.dir, i.state_dir):
                yield c.error("dedupe-dir", f"dedupe.dir {dd.dir} is inside {i.address}'s state dir; the shared "
                              "claim directory must be its own mount", c.at(("dedupe", "dir"), key=False))
            explicit = _get(i.config, "gateway", "inboundDedupe", "file", "dir")
            if explicit is None:
                continue
            span = c.field(i, "config", "gateway", "inboundDedupe", "file", "dir")
            if dd and i.dedupe and explicit != dd.dir:
                yield c.error("dedupe-dir", f"{i.address}: config gateway.inboundDedupe dir {explicit!r} differs from "
                              f"dedupe.dir {dd.dir!r}; every instance must claim in the same directory", span)
            elif first is None:
                first = (i, explicit, span)
            elif explicit != first[1]:
                yield c.error("dedupe-dir", f"{i.address} claims inbound messages in {explicit!r} but "
                              f"{first[0].address}{_where(first[2])} in {first[1]!r}; HA gateways must share one "
                              "directory", span, first[2])
