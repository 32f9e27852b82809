"""Paths and units: what two instances on one host must not share (state, config, workspace, env file, profile,
unit), and paths or commands a systemd unit would not read literally."""

from __future__ import annotations

import re
from collections.abc import Iterator

from provisioner.core.diagnostics import Diagnostic, SourceSpan
from provisioner.core.policies import Manager
from provisioner.inventory.model import Host, Instance
from provisioner.rules.context import Ctx, _pairs, _where

PATH_FIELDS = (("state_dir", "state dir"), ("config_path", "config path"), ("workspace", "workspace"),
               ("env_file", "env file"))
TREE_FIELDS = ("state_dir", "workspace")


def _inside(path: str, tree: str) -> bool:
    return path == tree or path.startswith(tree.rstrip("/") + "/")


def rule_paths(c: Ctx) -> Iterator[Diagnostic]:
    for h in c.inv.hosts:
        for a, b in _pairs(h):
            reported = False
            for fb, nb in PATH_FIELDS:
                pb = getattr(b, fb)
                for fa, na in PATH_FIELDS:
                    pa = getattr(a, fa)
                    clash = (pa == pb or (fa in TREE_FIELDS and _inside(pb, pa))
                             or (fb in TREE_FIELDS and _inside(pa, pb)))
                    if not clash or reported:
                        continue
                    first = c.field(a, fa)
                    how = "is the same path as" if pa == pb else "overlaps"
                    yield c.error(
                        f"duplicate-{fb.replace('_', '-')}",
                        f"{b.address} {nb} {pb} {how} {a.address}'s {na} {pa}{_where(first)}: two gateways would "
                        "share state (OpenClaw refuses a second process on one state dir)",
                        c.field(b, fb), first)
                    reported = True


def rule_profiles(c: Ctx) -> Iterator[Diagnostic]:
    for h in c.inv.hosts:
        for a, b in _pairs(h):
            if a.profile.lower() == b.profile.lower():
                first = c.field(a, "profile")
                yield c.error("duplicate-profile", f"{b.address} and {a.address}{_where(first)} use the same "
                              f"profile {b.profile!r} (OpenClaw profile names are case-insensitive)",
                              c.field(b, "profile"), first)
            if a.unit == b.unit:
                first = c.field(a, "unit")
                yield c.error("duplicate-unit", f"{b.address} and {a.address}{_where(first)} both use unit {b.unit}",
                              c.field(b, "unit"), first)


# characters of a state dir systemd may not take literally in WorkingDirectory=: `\` escapes (or, at the end,
# continues the line) and edge blanks are stripped. Globs are literal there; they stay refused from when the env
# file went into EnvironmentFile= (a glob), since a state dir named with one helps nobody
_UNIT_GLOB = frozenset("*?[]\\")
_EXEC_SAFE = re.compile(r"^[A-Za-z0-9_./@+:-]([A-Za-z0-9_./@+: -]*[A-Za-z0-9_./@+:-])?$")  # inner spaces: quoted


def _unit_trouble(path: str) -> str | None:
    bad = sorted({ch for ch in path if ch in _UNIT_GLOB})
    if bad:
        return "contains " + " ".join(repr(ch) for ch in bad)
    if path != path.strip():
        return "starts or ends with a blank"
    return None


def _origin(c: Ctx, h: Host, i: Instance, key: str) -> SourceSpan | None:
    """Where a path came from: its own setting, or else the service home a default one is derived from (the
    host's, a group's (the last one listed wins, as in layering) or the defaults')."""
    if (key,) in i.provenance:
        return c.field(i, key)
    homes = [(*h.doc_path, "service", "home"), *(("groups", g, "vars", "service", "home") for g in reversed(h.groups)),
             ("defaults", "service", "home")]
    for path in homes:
        # only a home written there: SpanTable.value would fall back to the enclosing node (the host itself)
        span = c.inv.spans.values.get(path)
        if span is not None:
            return span
    return c.field(i, key)


def rule_unit_syntax(c: Ctx) -> Iterator[Diagnostic]:
    """Values the systemd unit carries where systemd would not read them literally: refused, never mangled."""
    for h in c.inv.hosts:
        for i in h.instances:
            if i.service.manager is Manager.NONE:
                continue
            # only the state dir: the env files are arguments of ExecStart= (to gateway-exec), quoted there
            # (render/files.py exec_arg), and so taken literally; no EnvironmentFile= is written any more
            trouble = _unit_trouble(i.state_dir)
            if trouble:
                yield c.error("unit-path", f"{i.address} state_dir {i.state_dir!r} {trouble}: systemd reads it in "
                              "WorkingDirectory=, where that is not taken literally (a glob, an escape, or stripped); "
                              "choose a path without it", _origin(c, h, i, "state_dir"))
    oc = c.inv.openclaw
    exe = oc.run_command[0] if oc.run_command else ""
    if exe and not _EXEC_SAFE.match(exe) and any(i.service.manager is not Manager.NONE for h in c.inv.hosts
                                                 for i in h.instances):
        what, where = (("openclaw.install.prefix", ("openclaw", "install", "prefix")) if oc.install is not None
                       else ("openclaw.command[0]", ("openclaw", "command", 0)))
        yield c.error("unit-command", f"{what} makes {exe!r} the executable systemd starts: it may only hold "
                      "letters, digits, inner spaces and _ . / @ + : - (systemd refuses quotes and backslashes there, "
                      "and would not expand $, % or ~); put the program at a plain path",
                      c.at(where, key=False) or c.at(("openclaw",)))
