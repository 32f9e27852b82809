"""proxy_jump: every hop is an inventory host or [user@]host[:port], a bare name is a host of the inventory (or
left to an ssh_config file), and no chain of inventory bastions loops back on itself."""

from __future__ import annotations

from collections.abc import Iterator

from provisioner.core.diagnostics import Diagnostic
from provisioner.inventory.hops import RouteError, is_bare_name, parse_hop, route
from provisioner.inventory.model import Host
from provisioner.rules.context import Ctx


def rule_proxy_jump(c: Ctx) -> Iterator[Diagnostic]:
    names = {h.name: h for h in c.inv.hosts}
    for h in c.inv.hosts:
        if h.connection != "ssh" or not h.ssh.proxy_jump:
            continue
        span = c.at(_source(c, h), key=False)
        bad = False
        for hop in h.ssh.proxy_jump:
            if hop in names:
                if names[hop].connection != "ssh":
                    yield c.error("proxy-jump", f"{h.name}: bastion {hop!r} is a local host, not one to jump "
                                  "through", span)
                    bad = True
                continue
            try:
                parse_hop(hop)
            except RouteError as e:
                yield c.error("proxy-jump", f"{h.name}: {e}", span)
                bad = True
                continue
            if is_bare_name(hop) and not h.ssh.config_file:
                yield c.error("proxy-jump", f"{h.name}: bastion {hop!r} is not a host of the inventory (write "
                              "user@host, host:port or a name with a dot for an address; an alias needs "
                              "ssh: {config_file: ...})", span)
                bad = True
        if bad:
            continue
        try:
            route(c.inv, h)
        except RouteError as e:
            text = str(e)
            # a host behind a loop it is not part of is not told: the hosts of the loop are
            if text.endswith(f"-> {h.name}") or "more than" in text:
                # the bound's error names the host whose bastions it counted: this one's only once
                yield c.error("proxy-jump", text if text.startswith(f"{h.name}: ") else f"{h.name}: {text}", span)


def _source(c: Ctx, h: Host) -> tuple[str | int, ...]:
    """Where this host's proxy_jump was written: the host, a group it is in, or the defaults."""
    for at in [h.doc_path, *(("groups", g, "vars") for g in reversed(h.groups)), ("defaults",)]:
        path = (*at, "ssh", "proxy_jump")
        if path in c.inv.spans.values:
            return path
    return (*h.doc_path, "ssh")
