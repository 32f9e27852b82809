"""Isolation rules: plain functions Inventory -> Diagnostics, on normalised paths and real port sets (FACTS).

The rules live by concern in ports, browser, paths, owned_keys, hosts, dedupe, secrets and pollers; this is
their list and entry point.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from provisioner.core.diagnostics import Diagnostic
from provisioner.inventory.model import Inventory
from provisioner.rules.browser import rule_cdp
from provisioner.rules.context import Ctx
from provisioner.rules.dedupe import rule_dedupe
from provisioner.rules.hosts import rule_addresses, rule_groups
from provisioner.rules.jumps import rule_proxy_jump
from provisioner.rules.listeners import rule_channel_ports
from provisioner.rules.owned_keys import rule_bind_auth, rule_owned_config
from provisioner.rules.paths import rule_paths, rule_profiles, rule_unit_syntax
from provisioner.rules.pollers import rule_one_poller
from provisioner.rules.ports import rule_port_overlap, rule_port_range, rule_port_required
from provisioner.rules.secrets import rule_secret_literals, rule_secret_refs

RULES: tuple[Callable[[Ctx], Iterator[Diagnostic]], ...] = (
    rule_port_required,
    rule_port_range,
    rule_port_overlap,
    rule_cdp,
    rule_paths,
    rule_profiles,
    rule_owned_config,
    rule_bind_auth,
    rule_groups,
    rule_dedupe,
    rule_addresses,
    rule_proxy_jump,
    rule_unit_syntax,
    rule_secret_refs,
    rule_secret_literals,
    rule_one_poller,
    rule_channel_ports,
)


def check_isolation(inv: Inventory) -> list[Diagnostic]:
    ctx = Ctx(inv)
    return [d for rule in RULES for d in rule(ctx)]
