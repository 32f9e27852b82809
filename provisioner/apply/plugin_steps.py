"""The plugin step of an apply: put each pinned plugin the host lacks in place, before any config loads it."""

from __future__ import annotations

import contextlib
import uuid

from provisioner.apply.results import HostResult, Progress
from provisioner.core.changes import Change, ChangeKind
from provisioner.core.desired import DesiredHost
from provisioner.core.diagnostics import ProvisionError
from provisioner.install.plugin import plugin_artifact
from provisioner.remote.connect import run_script
from provisioner.remote.scripts.plugins import plugin_install_script
from provisioner.remote.scripts.release import INCOMING_DIR, incoming_dir_script, prune_incoming_script
from provisioner.remote.scripts.trust import refusal_reason
from provisioner.remote.transport import Transport, TransportError


def install_plugins(t: Transport, desired: DesiredHost, todo: list[Change], become: bool, say: Progress,
                    result: HostResult) -> str | None:
    """Push and unpack every plugin the plan installs; the first failure, in words, or None."""
    wanted = {c.target for c in todo if c.kind is ChangeKind.PLUGIN}
    for p in desired.plugins:
        if p.dir not in wanted:
            continue
        try:
            art = plugin_artifact(p.package, p.version)  # fetched once per controller, whatever the hosts
        except ProvisionError as exc:
            return str(exc)
        if art.id != p.id:
            return (f"plugin {p.package} {p.version} declares the id {art.id!r} (its openclaw.plugin.json), not "
                    f"{p.id!r}: set `id: {art.id}` for it in the inventory")
        run_id = uuid.uuid4().hex[:8]
        made = run_script(t, incoming_dir_script(), become=become)
        where = made.text().strip().removeprefix("DIR ")
        if not made.ok or not where.startswith(INCOMING_DIR):
            return f"cannot prepare {INCOMING_DIR}: {refusal_reason(made.err_text()) or made.err_text()[:300]}"
        incoming = f"{where}/ocp-plugin-{run_id}.tar.gz"
        say(t.host, f"pushing plugin {p.package} {p.version} ({art.size / 1e6:.1f} MB)")
        try:
            result.transferred += t.put_file(str(art.path), incoming, mode=0o600)
        except TransportError as exc:
            with contextlib.suppress(TransportError):
                run_script(t, prune_incoming_script(incoming), become=become)
            return f"pushing plugin {p.package} {p.version} failed: {exc.detail}"
        res = run_script(t, plugin_install_script(p.dir, incoming, art.sha256, art.stamp, run_id), become=become,
                         timeout=600)
        if not res.ok or "INSTALLED" not in res.text():
            why = refusal_reason(res.err_text()) or res.err_text()[-400:]
            return f"installing plugin {p.package} {p.version} failed: {why}"
    return None
