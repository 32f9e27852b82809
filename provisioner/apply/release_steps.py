"""The release steps of an apply: put the pinned OpenClaw release in place before anything refers to it, and
once the gateways are healthy on it, point `current` at it and prune what is beyond `keep`."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Callable

from provisioner.apply.results import HostResult, Progress
from provisioner.core.changes import Action, Change, ChangeKind
from provisioner.core.desired import DesiredHost, DesiredRelease
from provisioner.install.release import Artifact
from provisioner.remote.connect import run_script
from provisioner.remote.scripts.release import (
    INCOMING_DIR,
    incoming_dir_script,
    install_script,
    prune_incoming_script,
    prune_script,
    registry_install_script,
    switch_current_script,
)
from provisioner.remote.scripts.trust import refusal_reason
from provisioner.remote.transport import Transport, TransportError


def install_release(t: Transport, r: DesiredRelease, become: bool, say: Progress, result: HostResult,
                     release_artifact: Callable[[], Artifact] | None) -> str | None:
    """Put the pinned release in place under its prefix, before any file that refers to it is written."""
    run_id = uuid.uuid4().hex[:8]
    if r.source == "registry":
        say(t.host, f"installing OpenClaw {r.version} from the npm registry {r.registry or '(the host npm default)'}")
        res = run_script(t, registry_install_script(r.prefix, r.version, r.node_version, run_id, r.registry),
                         become=become, timeout=1800)
        return None if res.ok and "INSTALLED" in res.text() else f"installing OpenClaw {r.version} from the " \
            f"registry failed: {res.err_text()[-400:]}"
    if release_artifact is None:
        return "no release artifact to push"
    art = release_artifact()
    # under the tool's root-only state dir, not /var/tmp, where the service user may create names too
    made = run_script(t, incoming_dir_script(), become=become)
    where = made.text().strip().removeprefix("DIR ")
    if not made.ok or not where.startswith(INCOMING_DIR):
        return f"cannot prepare {INCOMING_DIR}: {refusal_reason(made.err_text()) or made.err_text()[:300]}"
    incoming = f"{where}/ocp-release-{run_id}.tar.gz"
    say(t.host, f"pushing OpenClaw {r.version} ({art.size / 1e6:.0f} MB)")
    try:
        result.transferred += t.put_file(str(art.path), incoming, mode=0o600)
    except TransportError as exc:
        with contextlib.suppress(TransportError):
            run_script(t, prune_incoming_script(incoming), become=become)
        return f"pushing OpenClaw {r.version} failed: {exc.detail}"
    say(t.host, f"unpacking OpenClaw {r.version}")
    res = run_script(t, install_script(r.prefix, r.version, incoming, art.sha256, art.stamp, run_id), become=become,
                     timeout=900)
    if not res.ok or "INSTALLED" not in res.text():
        return f"installing OpenClaw {r.version} failed: {res.err_text()[-400:]}"
    return None


def finish_release(t: Transport, desired: DesiredHost, todo: list[Change], become: bool, say: Progress) -> None:
    """After the gateways are healthy on it: point `current` at the release, then prune old ones."""
    r = desired.release
    if r is None:
        return
    if any(c.kind is ChangeKind.RELEASE_LINK for c in todo):
        say(t.host, f"current -> {r.version}")
        run_script(t, switch_current_script(r.prefix, r.version), become=become)
    old = [c.target.rsplit("/", 1)[-1] for c in todo if c.kind is ChangeKind.RELEASE and c.action is Action.DELETE]
    if old:
        run_script(t, prune_script(r.prefix, old), become=become)
