"""The route to a host: the bastions of its `proxy_jump` (first hop first), then the host itself, each as a Hop
with everything needed to connect to it. Pure: an ssh_config lookup, when one is used, is passed in.

A hop that names a host of the inventory is reached with that host's own ssh: settings, through that host's own
bastions (so chains can be written hop by hop); any other hop is `[user@]host[:port]`, reached with the settings
of the host that jumps through it (its known_hosts and host_key_policy: a bastion's key is checked like any).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, replace

from provisioner.core.policies import HostKeyPolicy
from provisioner.inventory.model import Host, Inventory, SSHSettings

# [user@]host[:port]; host is a name, an IPv4 address, or [an IPv6 address]
_HOP = re.compile(r"(?:(?P<user>[a-z_][a-z0-9_-]*[$]?)@)?(?P<host>[A-Za-z0-9][A-Za-z0-9_.-]*|\[[0-9A-Fa-f:.%]+\])"
                  r"(?::(?P<port>[0-9]{1,5}))?")
MAX_HOPS = 8


class RouteError(ValueError):
    pass


@dataclass(frozen=True)
class Hop:
    """One SSH server on the way: a bastion, or the host itself (the last hop)."""

    label: str  # how messages name it: "bastion gw-b (10.0.0.5:22)"
    address: str
    port: int
    user: str
    identity_file: str | None
    identity_explicit: bool  # the inventory (or ssh_config) named the key: use only it
    known_hosts: str | None
    host_key_policy: HostKeyPolicy
    connect_timeout: float
    keepalive: float
    proxy_command: str | None = None  # only for a first hop

    @property
    def key(self) -> tuple[str, int, str, str | None]:
        """Hops with equal keys are one SSH server logged into alike: their transport can be shared."""
        return (self.address.lower(), self.port, self.user, self.identity_file)


def parse_hop(text: str) -> tuple[str | None, str, int | None]:
    """(user, host, port) of `[user@]host[:port]`; RouteError if it is not in that form."""
    m = _HOP.fullmatch(text)
    if m is None:
        raise RouteError(f"{text!r} is not a bastion: write an inventory host's name or [user@]host[:port]")
    port = int(m["port"]) if m["port"] else None
    if port is not None and not 1 <= port <= 65535:
        raise RouteError(f"{text!r}: port {port} is out of range")
    return m["user"], m["host"].strip("[]"), port


def is_bare_name(text: str) -> bool:
    """A hop with no '.', '@', ':' is a name: an inventory host (or an ssh_config alias), not an address."""
    return not any(c in text for c in ".@:[")


Lookup = Callable[[str, str | None], dict[str, object]]  # (name, config_file) -> ssh_config options for it


def route(inv: Inventory, host: Host, lookup: Lookup | None = None) -> list[Hop]:
    """The hops to `host`, bastions first and `host` last; RouteError for an unknown bastion or a loop."""
    return _route(inv, host, lookup, ())


def _route(inv: Inventory, host: Host, lookup: Lookup | None, seen: tuple[str, ...]) -> list[Hop]:
    if host.name in seen:
        raise RouteError(f"proxy_jump loops: {' -> '.join((*seen, host.name))}")
    assert host.address is not None
    role = "bastion " if seen else ""  # a host of the inventory others jump through
    target = _hop(f"{role}{host.name} ({host.address}:{host.ssh.port})", host.address, host.ssh)
    hops: list[Hop] = []
    for text in host.ssh.proxy_jump:
        if len(hops) >= MAX_HOPS:
            raise RouteError(f"{host.name}: more than {MAX_HOPS} bastions")
        bastion = _inventory_host(inv, text)
        if bastion is not None:
            hops += _route(inv, bastion, lookup, (*seen, host.name))
            continue
        hops.append(address_hop(text, host.ssh, lookup))
    if hops and target.proxy_command:
        target = replace(target, proxy_command=None)  # ProxyJump wins over ProxyCommand, as in OpenSSH
    return [*hops, target]


def route_of_one(host: Host) -> Hop:
    """The host itself as its only hop (no bastions looked up)."""
    assert host.address is not None
    return _hop(f"{host.name} ({host.address}:{host.ssh.port})", host.address, host.ssh)


def _inventory_host(inv: Inventory, name: str) -> Host | None:
    for h in inv.hosts:
        if h.name == name and h.connection == "ssh":
            return h
    return None


def address_hop(text: str, via: SSHSettings, lookup: Lookup | None) -> Hop:
    """A bastion given as [user@]host[:port], with the jumping host's keys, completed from ssh_config."""
    user, address, port = parse_hop(text)
    identity, explicit = via.identity_file, "identity_file" in via.explicit
    if lookup is not None and via.config_file:
        opts = lookup(address, via.config_file)
        address = str(opts.get("hostname") or address)
        port = port or _int(opts.get("port"))
        user = user or (str(opts["user"]) if opts.get("user") else None)
        if opts.get("identityfile") and not explicit:
            identity, explicit = str(opts["identityfile"]), True
    if is_bare_name(text) and (lookup is None or not via.config_file):
        raise RouteError(f"bastion {text!r} is not a host of the inventory")
    label = f"bastion {text} ({address}:{port or 22})"
    return Hop(label, address, port or 22, user or via.user, identity, explicit, via.known_hosts,
               via.host_key_policy, via.connect_timeout, via.keepalive)


def _hop(label: str, address: str, ssh: SSHSettings) -> Hop:
    return Hop(label, address, ssh.port, ssh.user, ssh.identity_file, "identity_file" in ssh.explicit,
               ssh.known_hosts, ssh.host_key_policy, ssh.connect_timeout, ssh.keepalive, ssh.proxy_command)


def _int(v: object) -> int | None:
    return int(str(v)) if v is not None and str(v).isdigit() else None
