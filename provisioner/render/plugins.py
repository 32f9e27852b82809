"""Pinned npm plugins: where each lives on a host and how an instance's config loads it.

A plugin is unpacked once per host under a root-owned, versioned directory (the service user can read and run
it, never change it: the gateway loads that code), and every instance that uses it names it by path:
`plugins.load.paths` and `plugins.entries.<id>`. OpenClaw loads a plugin from a path in `load.paths` with
origin "config" (measured on 2026.9.6, README "Plugins"); no `openclaw plugins install` runs on hosts. The
path holds the version, so a version change is a config change of exactly the instances that use it.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from provisioner.core.desired import DesiredPlugin
from provisioner.inventory.model import Instance, PluginSpec

PLUGIN_PREFIX = "/opt/openclaw-plugins"
STAMP = ".ocp-plugin"  # in a plugin's directory once it is in place: "<package>@<version> sha256=<tarball's>"


def slug(package: str) -> str:
    """A package name as one path segment: `@openclaw/slack` -> `openclaw+slack` (npm names hold no `+`)."""
    return package.lstrip("@").replace("/", "+")


def plugin_dir(spec: PluginSpec) -> str:
    return f"{PLUGIN_PREFIX}/{slug(spec.package)}/{spec.version}"


def load_path(spec: PluginSpec) -> str:
    """What `plugins.load.paths` names: the package itself inside the unpacked npm project."""
    return f"{plugin_dir(spec)}/node_modules/{spec.package}"


def wire(cfg: dict[str, Any], inst: Instance) -> None:
    """Add the instance's plugins to its config: load paths after any the inventory gives, and an enabled
    entry per plugin, its `config` merged over an entry the inventory's config may already have."""
    if not inst.plugins:
        return
    plugins = cfg.setdefault("plugins", {})
    load = plugins.setdefault("load", {})
    paths = [p for p in load.get("paths") or [] if isinstance(p, str)]
    load["paths"] = paths + [load_path(s) for s in inst.plugins if load_path(s) not in paths]
    entries = plugins.setdefault("entries", {})
    for s in inst.plugins:
        entry = entries.setdefault(s.id, {})
        entry["enabled"] = True
        if s.config is not None:
            entry["config"] = {**(entry.get("config") or {}), **s.config}


def desired_plugins(host: str, instances: Iterable[Instance]) -> tuple[DesiredPlugin, ...]:
    """Each plugin version the host's instances use, once, with the instances that use it."""
    users: dict[tuple[str, str], list[str]] = {}
    specs: dict[tuple[str, str], PluginSpec] = {}
    for inst in instances:
        for s in inst.plugins:
            users.setdefault((s.package, s.version), []).append(inst.name)
            specs.setdefault((s.package, s.version), s)
    return tuple(DesiredPlugin(host, s.package, s.version, s.id, plugin_dir(s), tuple(users[k]))
                 for k, s in sorted(specs.items()))
