"""The health gate's plugin step: every pinned plugin of a restarted instance must really load in it.

`openclaw plugins list` only reads manifests (a plugin whose code throws is listed `loaded`); `openclaw plugins
inspect <id> --runtime --json` imports the module and reports `status: error`, the error and its phase
(measured on 2026.9.6, README "Plugins"). It runs as the service user with the gateway's environment, once per
plugin for all the instances that use it, and must show the plugin loaded from its pinned path.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

from provisioner.apply.results import HostResult, Progress, ProgressEvent
from provisioner.core.desired import DesiredHost, DesiredService
from provisioner.remote.transport import TransportError

# (plugin id, instance names) -> what `plugins inspect <id> --runtime --json` printed in each instance
PluginInspect = Callable[[str, Sequence[str]], dict[str, str]]


def verdict(text: str, pinned: str) -> str | None:
    """Why the inspect output does not show the plugin loaded from `pinned`, or None when it does."""
    try:
        doc = json.loads(text[text.index("{"):])
    except ValueError:
        return f"OpenClaw's inspect gave no report ({text.strip()[-200:] or 'no output'})"
    p: Any = doc.get("plugin") if isinstance(doc, dict) else None
    if not isinstance(p, dict):
        return "OpenClaw's inspect does not know it"
    if p.get("status") != "loaded" or p.get("imported") is not True:
        return f"status {p.get('status')}" + (f" in {p['failurePhase']}" if p.get("failurePhase") else "") + \
            (f": {str(p['error'])[:300]}" if p.get("error") else "")
    if p.get("rootDir") != pinned:
        return f"loaded from {p.get('rootDir')}, not from the pinned {pinned}"
    return None


def check_plugins(desired: DesiredHost, services: list[DesiredService], result: HostResult, say: Progress,
                  inspect: PluginInspect | None) -> str | None:
    """None when every plugin of the restarted instances loaded from its pinned path; else why not, naming it."""
    restarted = {s.instance for s in services}
    todo = [(p, [i for i in p.instances if i in restarted]) for p in desired.plugins]
    todo = [(p, names) for p, names in todo if names]
    if not todo or inspect is None:
        return None
    for p, names in todo:
        say(desired.name, ProgressEvent(f"checking plugin {p.id} loads in {', '.join(names)}", "plugin-check",
                                        instances=names, plugin=p.id))
        pinned = f"{p.dir}/node_modules/{p.package}"
        try:
            said = inspect(p.id, names)
        except TransportError as exc:
            said = {n: f"the plugin check failed: {exc.detail}" for n in names}
        for name in names:
            why = verdict(said.get(name, ""), pinned)
            if why:
                result.failing[name] = [f"plugin:{p.id}"]
                result.health[name] = f"not ready: plugin {p.id} did not load ({why})"
                return f"{name}: plugin {p.id} ({p.package} {p.version}) did not load: {why}"
            result.health[name] += f"; plugin {p.id} {p.version} loaded"
    return None
