"""Hosts and groups: group members that are not hosts, group names that shadow hosts, two hosts at one address."""

from __future__ import annotations

from collections.abc import Iterator

from provisioner.core.diagnostics import Diagnostic
from provisioner.inventory.model import Host
from provisioner.rules.context import Ctx, _where


def rule_groups(c: Ctx) -> Iterator[Diagnostic]:
    names = {h.name for h in c.inv.hosts}
    for g, members in c.inv.groups.items():
        for idx, m in enumerate(members):
            if m not in names:
                yield c.error("unknown-host", f"group {g!r} lists host {m!r}, which is not in hosts:",
                              c.at(("groups", g, "hosts", idx), key=False))
        if g in names:
            yield c.error("group-host-name", f"group {g!r} has the same name as a host; --limit could not tell them "
                          "apart", c.at(("groups", g)))


def rule_addresses(c: Ctx) -> Iterator[Diagnostic]:
    seen: dict[tuple[str, int], Host] = {}
    for h in c.inv.hosts:
        if h.connection != "ssh" or not h.address:
            continue
        key = (h.address.lower(), h.ssh.port)
        if key in seen:
            first = c.at((*seen[key].doc_path, "address"), key=False)
            yield c.warning("duplicate-address", f"hosts {seen[key].name!r}{_where(first)} and {h.name!r} have the "
                            f"same address {h.address}:{h.ssh.port}; their files would land on one machine",
                            c.at((*h.doc_path, "address"), key=False), first)
        else:
            seen[key] = h
