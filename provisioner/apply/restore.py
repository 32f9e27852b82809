"""`provision restore ARCHIVE HOST/INSTANCE`: move an instance, by its `provision backup` archive, onto a host.

The target instance must be in the inventory and applied on its host (its unit, config, env file and token are
there). Under the host lock: the archive is pushed into root's own incoming dir and handed to the service user
read-only (0640 root:<group>); the unit is stopped; as the service user, OpenClaw's own `backup restore`
verifies and unpacks it into a fresh staging dir, the archive's state dir takes the place of the target's, whose
state dir is moved aside to `<state dir>.ocp-replaced-<stamp>` (never deleted), and the target's own config, env
file and token file are carried over into it (the inventory's, for that host: its port, its token); the unit is
started and must answer its health path. Everything else (sessions, credentials, agents, the workspace inside
the state dir) is the archive's.
"""

from __future__ import annotations

import contextlib
import json
import posixpath
import tarfile
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from provisioner.apply.locks import acquire, new_holder
from provisioner.apply.restarts import run_restarts
from provisioner.apply.results import Progress
from provisioner.core.desired import DesiredHost
from provisioner.inventory.model import Instance
from provisioner.remote.connect import held, run_script, transport_root
from provisioner.remote.scripts.backups import HOST_DIR
from provisioner.remote.scripts.locks import unlock_script
from provisioner.remote.scripts.release import INCOMING_DIR, incoming_dir_script, prune_incoming_script
from provisioner.remote.scripts.state_restore import HANDED, RESTORED, hand_over_script, restore_state_script
from provisioner.remote.scripts.trust import refusal_reason
from provisioner.remote.transport import Transport, TransportError

REPLACED_SUFFIX = ".ocp-replaced-"  # <state dir>.ocp-replaced-<stamp>: the target's state before a restore


class RestoreError(Exception):
    pass


@dataclass
class Restored:
    target: str
    archive: str
    aside: str = ""
    ready: bool = False
    seconds: float = 0.0

    def as_json(self) -> dict[str, object]:
        return {"target": self.target, "archive": self.archive, "aside": self.aside or None, "ready": self.ready,
                "seconds": round(self.seconds, 1)}


def archived_state_dir(archive: str) -> str:
    """The state dir the archive recorded (its manifest's `state` asset), read on the controller."""
    try:
        with tarfile.open(archive, "r:gz") as tar:
            for m in tar:
                if m.isfile() and m.name.count("/") == 1 and m.name.endswith("/manifest.json"):
                    f = tar.extractfile(m)
                    doc = json.loads(f.read(1 << 20)) if f else {}
                    break
            else:
                raise RestoreError(f"{archive}: no manifest.json at the archive's root (not an openclaw backup?)")
    except (OSError, tarfile.TarError, ValueError) as exc:
        raise RestoreError(f"{archive}: cannot read it as an openclaw backup archive: {exc}") from None
    states = [a.get("sourcePath") for a in doc.get("assets", []) if isinstance(a, dict) and a.get("kind") == "state"]
    if len(states) != 1 or not isinstance(states[0], str) or not posixpath.isabs(states[0]):
        raise RestoreError(f"{archive}: its manifest does not record exactly one state dir")
    return states[0]


def restore_instance(t: Transport, desired: DesiredHost, inst: Instance, archive: str, command: tuple[str, ...],
                     say: Progress, *, become: bool = False) -> Restored:
    src = archived_state_dir(archive)
    h = inst.host
    out = Restored(inst.address, archive)
    t0 = time.monotonic()
    root = transport_root(t)
    if root:
        raise RestoreError(f"{h}: a stand-in host (a directory) runs no gateway to restore")
    holder = new_holder()
    got = acquire(t, holder, "", root, become=become, say=lambda m: say(h, m))
    if not got.ok:
        raise RestoreError(f"{h}: {got.refusal}")
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    lt = held(t, holder)  # what runs under the lock: fenced
    dest = f"{INCOMING_DIR}/restore-{uuid.uuid4().hex[:8]}.tar.gz"
    try:
        made = run_script(lt, incoming_dir_script(), become=become)
        where = made.text().strip().removeprefix("DIR ")
        if not made.ok or not where.startswith(INCOMING_DIR):
            raise RestoreError(f"{h}: cannot prepare {INCOMING_DIR}: {made.err_text()[:300]}")
        pushed = f"{where}/ocp-restore-{stamp}.tar.gz"
        say(h, f"pushing {posixpath.basename(archive)}")
        t.put_file(archive, pushed, mode=0o600)
        res = run_script(lt, hand_over_script(pushed, dest, inst.service.group), become=become)
        if not res.ok or HANDED not in res.text():
            raise RestoreError(f"{h}: {refusal_reason(res.err_text()) or res.err_text()[:300]}")
        say(h, f"stopping {inst.unit}")
        run_restarts(lt, desired, say, reload=False, restart=[], stop=[inst.unit], become=become)
        out.aside = f"{inst.state_dir.rstrip('/')}{REPLACED_SUFFIX}{stamp}"
        stage = f"{inst.service.home.rstrip('/')}/{HOST_DIR}/restore.{inst.profile}.{stamp}"
        keep = [posixpath.relpath(p, inst.state_dir) for p in (inst.config_path, inst.env_file, inst.token_file)
                if p and p.startswith(inst.state_dir.rstrip("/") + "/")]
        say(h, f"openclaw backup restore, as {inst.service.user}; the previous state dir goes to {out.aside}")
        res = run_script(lt, restore_state_script([(inst, dest, src, out.aside, stage)], command, keep=keep),
                         become=become, timeout=1900)
        if RESTORED not in res.text():
            raise RestoreError(f"{h}: restoring the state of {inst.name} failed: {res.err_text()[-400:]}; "
                               f"{inst.unit} is stopped")
        say(h, f"starting {inst.unit}")
        back = run_restarts(lt, desired, say, reload=False, restart=[inst.unit], become=become)
        if back.result is None or not back.result.ok or back.failure:
            raise RestoreError(f"{h}: starting {inst.unit} failed: {back.failure or ''}")
        out.ready = _wait_ready(t, inst)
    finally:
        with contextlib.suppress(TransportError):
            run_script(t, prune_incoming_script(dest), become=become)
            run_script(t, unlock_script(holder, root), become=become)
    out.seconds = time.monotonic() - t0
    return out


def _wait_ready(t: Transport, inst: Instance) -> bool:
    end = time.monotonic() + inst.health_timeout
    while time.monotonic() < end:
        with contextlib.suppress(TransportError):
            if t.http_get(inst.port or 0, inst.health_path, timeout=5).status == 200:
                return True
        time.sleep(1.0)
    return False
