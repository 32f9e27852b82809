"""Writing provisioner inventories that point at lab hosts (addresses and strict SSH settings filled in)."""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from .harness import Lab
from .hosts import LabHost


def fill(lab: Lab, inventory: Mapping[str, Any],
         hosts: Mapping[str, LabHost] | Sequence[LabHost] | None = None, *, user: str | None = None
         ) -> dict[str, Any]:
    """A copy of `inventory` whose hosts point at lab hosts. Values already in `inventory` win.

    hosts: {inventory host name: lab host}, or lab hosts used under their own names, or None to match
    inventory host names against the lab's host names. Each matched host gets `address`; defaults.ssh gets
    the lab's user, port, identity_file, known_hosts and host_key_policy strict."""
    inv = copy.deepcopy(dict(inventory))
    if hosts is None:
        mapping = {n: lab.hosts[n] for n in inv.get("hosts") or {} if n in lab.hosts}
    elif isinstance(hosts, Mapping):
        mapping = dict(hosts)
    else:
        mapping = {h.name: h for h in hosts}
    inv_hosts = inv.setdefault("hosts", {})
    for name, h in mapping.items():
        entry = inv_hosts.setdefault(name, {})
        if entry is None:
            entry = inv_hosts[name] = {}
        entry.setdefault("address", h.address)
    if mapping:
        some = next(iter(mapping.values()))
        ssh = inv.setdefault("defaults", {}).setdefault("ssh", {})
        for k, v in some.ssh_settings(user).items():
            ssh.setdefault(k, v)
    return inv


def write(path: Path, lab: Lab, inventory: Mapping[str, Any],
          hosts: Mapping[str, LabHost] | Sequence[LabHost] | None = None, *, user: str | None = None) -> Path:
    path.write_text(yaml.safe_dump(fill(lab, inventory, hosts, user=user), sort_keys=False))
    return path
