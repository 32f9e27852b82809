"""--limit: choose hosts (by name or group glob) and instances (host/instance glob)."""

from __future__ import annotations

import dataclasses
from fnmatch import fnmatchcase

from provisioner.inventory.model import Host, Inventory


class LimitError(Exception):
    pass


def select(inv: Inventory, patterns: list[str]) -> tuple[list[Host], bool]:
    """Hosts chosen by the patterns (all when none), each with only its chosen instances.

    The flag says whether any instance was filtered out: then removals cannot be planned, since an
    instance outside the limit is not an instance that left the inventory.
    """
    if not patterns:
        return list(inv.hosts), False
    chosen: dict[str, set[str] | None] = {}
    for pat in patterns:
        host_pat, _, inst_pat = pat.partition("/")
        hit = False
        for h in inv.hosts:
            in_group = any(fnmatchcase(g, host_pat) for g in h.groups)
            if not (fnmatchcase(h.name, host_pat) or in_group):
                continue
            hit = True
            if not inst_pat:
                chosen[h.name] = None
                continue
            names = {i.name for i in h.instances if fnmatchcase(i.name, inst_pat)}
            prev: set[str] | None = chosen.get(h.name, set())
            if prev is not None:
                chosen[h.name] = prev | names
        if not hit:
            raise LimitError(f"--limit {pat!r} matches no host or group")
    out = []
    partial = False
    for h in inv.hosts:
        if h.name not in chosen:
            continue
        wanted = chosen[h.name]
        if wanted is None:
            out.append(h)
        else:
            partial = True
            out.append(dataclasses.replace(h, instances=tuple(i for i in h.instances if i.name in wanted)))
    return out, partial
