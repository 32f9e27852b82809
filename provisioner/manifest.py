"""The render manifest: what `render --out` manages per host, written at the top of the tree it renders.

An offline plan (`plan --offline DIR`) compares files against the tree, but a file that is not rendered any more
cannot be seen by looking at what is rendered now: the manifest of the deployed revision says which hosts, units
and instances the tool managed then, and the managed sets are compared. The manifest also marks the directory as
a render, so that the next `render --out` into it may replace its tree (and refuses any other non-empty
directory). It holds names and paths only, never a secret's value.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from provisioner.core.changes import Action, Change, ChangeKind
from provisioner.core.desired import DesiredHost
from provisioner.core.policies import Manager

MANIFEST = ".openclaw-provisioner-render.json"  # host names start with a letter or digit: never a host's folder
FORMAT = "openclaw-provisioner-render/1"


class ManifestError(Exception):
    pass


@dataclass(frozen=True)
class ManagedHost:
    units: Mapping[str, str]  # systemd unit -> the instance it runs ("dedupe-mount" for the claim mount)
    instances: tuple[str, ...]


def manifest_json(inventory_path: str, inventory_sha256: str, hosts: Mapping[str, DesiredHost]) -> dict[str, Any]:
    return {
        "format": FORMAT,
        "inventory": {"path": inventory_path, "sha256": inventory_sha256},
        "hosts": {
            name: {
                "instances": sorted({f.instance for f in dh.files if f.instance} | {s.instance for s in dh.services
                                                                                    if s.instance != "dedupe-mount"}),
                "units": {s.unit: s.instance for s in dh.services if s.manager is Manager.SYSTEMD},
                "files": sorted(f.path for f in dh.files),
                "dirs": sorted(d.path for d in dh.dirs),
            }
            for name, dh in hosts.items()
        },
    }


def read_manifest(directory: str) -> dict[str, ManagedHost] | None:
    """The managed sets of the render in `directory`; None when it has no manifest (a render of an older version,
    or not a render at all)."""
    path = os.path.join(directory, MANIFEST)
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise ManifestError(f"{path}: cannot read the render manifest: {exc}") from exc
    if not isinstance(data, dict) or data.get("format") != FORMAT or not isinstance(data.get("hosts"), dict):
        raise ManifestError(f"{path}: not a render manifest of format {FORMAT}")
    try:
        return {name: ManagedHost(dict(h.get("units", {})), tuple(h.get("instances", ())))
                for name, h in data["hosts"].items()}
    except (AttributeError, TypeError, ValueError) as exc:
        raise ManifestError(f"{path}: malformed render manifest: {exc}") from exc


def removals(host: str, desired: DesiredHost | None, managed: ManagedHost) -> list[Change]:
    """What the deployed revision managed on `host` and the proposed one does not: each unit is stopped, disabled
    and its unit file removed, as a live plan does (state directories are kept). `desired` None: the host left
    the inventory, which apply never touches."""
    wanted = set() if desired is None else {s.unit for s in desired.services}
    out = []
    for unit, instance in sorted(managed.units.items()):
        if unit in wanted:
            continue
        if desired is None:
            why = (f"host {host} is no longer in the inventory: apply does not touch it, so stop and remove "
                   f"{instance} by hand")
        elif instance == "dedupe-mount":
            why = "the shared dedupe directory is no longer mounted by the tool: stop and disable its mount unit"
        else:
            why = (f"instance {instance} is no longer in the inventory: stop and disable it (its state directory "
                   "is kept)")
        out.append(Change(host, None, unit, Action.STOP, why, "unit:rendered", "unit:removed",
                          kind=ChangeKind.SERVICE))
    return out
