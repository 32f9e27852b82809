"""Pure planning of pinned plugins: which plugin directories a host lacks (or holds in another version)."""

from __future__ import annotations

from collections.abc import Iterable

from provisioner.core.changes import Action, Change, ChangeKind
from provisioner.core.desired import DesiredPlugin
from provisioner.core.observed import ObservedHost


def plugin_fingerprint(stamp: str | None) -> str:
    """`plugin:<package>@<version>` from a stamp; the checksum part is the tarball's, not the plugin's."""
    return f"plugin:{stamp.split()[0]}" if stamp and stamp.split() else "absent"


def plan_plugins(h: str, plugins: Iterable[DesiredPlugin], observed: ObservedHost) -> list[Change]:
    out = []
    for p in plugins:
        have = plugin_fingerprint(observed.plugins.get(p.dir))
        wanted = f"plugin:{p.package}@{p.version}"
        if have != wanted:
            out.append(Change(h, None, p.dir, Action.CREATE, f"install plugin {p.package} {p.version} (used by "
                              f"{', '.join(p.instances)}), pushed from the controller's cache", have, wanted,
                              kind=ChangeKind.PLUGIN))
    return out
