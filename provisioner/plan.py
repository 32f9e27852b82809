"""Pure planning: desired state vs observed facts -> a Plan of typed Changes, each with its reason and fingerprints."""

from __future__ import annotations

import difflib
import hashlib
import re
from collections.abc import Callable, Iterable

from provisioner.core.changes import Action, Change, ChangeKind, HostPlan
from provisioner.core.desired import (
    DesiredDir,
    DesiredFile,
    DesiredHost,
    DesiredRelease,
    DesiredService,
    FileKind,
    Manager,
)
from provisioner.core.observed import EntryKind, ObservedFile, ObservedHost, ObservedService
from provisioner.plan_plugins import plan_plugins

ABSENT = "absent"
REDACTED = "<redacted>"


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def file_fingerprint(sha: str | None, mode: int | None, owner: str | None, group: str | None) -> str:
    """Content, mode and owner of a file, as plans show and apply re-checks it. The content part is keyed
    (`hmac-sha256:...`, see provisioner/digests.py), never the sha256 itself: an env file is a known template plus
    the secrets, so its plain digest would let whoever reads a plan confirm a guessed token offline."""
    from provisioner.digests import keyed

    content = keyed(sha) if sha else "content:unknown"
    return f"{content} mode:{(mode or 0):04o} owner:{owner}:{group}"


def observed_fingerprint(o: ObservedFile | None) -> str:
    if o is None or not o.exists:
        return ABSENT
    if o.kind is not EntryKind.FILE:
        return f"{o.kind.value} mode:{(o.mode or 0):04o} owner:{o.owner}:{o.group}"
    return file_fingerprint(o.sha256, o.mode, o.owner, o.group)


def desired_fingerprint(f: DesiredFile) -> str:
    return file_fingerprint(sha256(f.content), f.mode, f.owner, f.group)


def dir_fingerprint(o: ObservedFile | None) -> str:
    if o is None or not o.exists:
        return ABSENT
    return (f"dir mode:{(o.mode or 0):04o} owner:{o.owner}:{o.group}" if o.kind is EntryKind.DIRECTORY
            else f"other:{o.kind.value}")


# --- masking ---------------------------------------------------------------------------------------------

_ASSIGN = re.compile(r"^(\s*(?:export\s+)?)([A-Za-z_][A-Za-z0-9_]*)=(.*)$")
# where a secret comes from, as render and offline plans write it in place of the value (render/files.py
# placeholder_secrets): not a secret, and what an offline plan's diff must show
_SOURCE = re.compile(r'"?<secret from (?:env|file) [^<>"]*>"?')


def mask_text(text: str, f: DesiredFile, other: dict[str, str] | None = None) -> str:
    """Mask secret values: by value everywhere, and in env files every value whose key is not known public."""
    for value in sorted(f.secret_values, key=len, reverse=True):
        if value and not _SOURCE.fullmatch(value):
            text = text.replace(value, REDACTED)
    if f.kind is not FileKind.ENV:
        return text
    out = []
    for line in text.split("\n"):
        m = _ASSIGN.match(line)
        if m and m.group(2) not in f.reveal_keys and not _SOURCE.fullmatch(m.group(3)):
            changed = other is not None and other.get(m.group(2)) not in (None, m.group(3))
            line = f"{m.group(1)}{m.group(2)}={REDACTED}{' (changed)' if changed else ''}"
        out.append(line)
    return "\n".join(out)


def _assignments(text: str) -> dict[str, str]:
    out = {}
    for line in text.split("\n"):
        m = _ASSIGN.match(line)
        if m:
            out[m.group(2)] = m.group(3)
    return out


def _mask(text: str, values: Iterable[str], changed: Callable[[str], bool] = lambda v: False) -> str:
    for value in sorted(set(values), key=len, reverse=True):
        if value:
            text = text.replace(value, f"{REDACTED} (changed)" if changed(value) else REDACTED)
    return text


def _config_sides(old_t: str, new_t: str, f: DesiredFile) -> tuple[str, str]:
    """Both sides of a config's diff, masked: the planned file's literal credentials and the host's own (a token
    since rotated). A planned credential the host's file lacks reads `<redacted> (changed)`. A host file that does
    not parse is not shown: where its credentials are cannot be told."""
    import json5

    from provisioner.rules.secret_fields import masked_forms

    try:
        olds = masked_forms(json5.loads(old_t), f.mask_fields) if old_t else ()
    except (ValueError, RecursionError):
        old_t, olds = "(the file on the host does not parse as JSON5: not shown, it may hold credentials)\n", ()
    return (_mask(old_t, (*f.secret_values, *olds)),
            _mask(new_t, f.secret_values, lambda v: bool(old_t) and v not in old_t))


def file_diff(path: str, old: bytes | None, new: bytes | None, f: DesiredFile) -> str:
    old_t = (old or b"").decode("utf-8", "replace")
    new_t = (new or b"").decode("utf-8", "replace")
    old_a, new_a = _assignments(old_t), _assignments(new_t)
    old_m = mask_text(old_t, f)
    new_m = mask_text(new_t, f, other=old_a) if f.kind is FileKind.ENV else mask_text(new_t, f)
    if f.kind is FileKind.CONFIG and f.mask_fields:
        old_m, new_m = _config_sides(old_t, new_t, f)
    del new_a
    lines = difflib.unified_diff(
        old_m.splitlines(keepends=True),
        new_m.splitlines(keepends=True),
        fromfile=f"{path} (on host)" if old is not None else "/dev/null",
        tofile=f"{path} (planned)" if new is not None else "/dev/null",
    )
    text = "".join(line if line.endswith("\n") else line + "\n\\ No newline at end of file\n" for line in lines)
    return text


# --- per host ----------------------------------------------------------------------------------------------

def release_fingerprint(stamp: str | None) -> str:
    if not stamp:
        return ABSENT
    # the checksum part is the tarball's: the same release fetched on the host has none, and is the same release
    return "release:" + " ".join(p for p in stamp.split() if not p.startswith("sha256="))


def _plan_release(h: str, r: DesiredRelease, observed: ObservedHost) -> tuple[list[Change], str | None]:
    from provisioner.install.release import version_key

    out: list[Change] = []
    have = observed.releases.get(r.version)
    wanted = f"release:{r.stamp_prefix}"
    current = observed.current_release
    if current and current != r.version and version_key(r.version) < version_key(current) and not r.allow_downgrade:
        return [], (f"OpenClaw {r.version} is older than the {current} this host runs: a downgrade must be explicit "
                    "(openclaw.install.allow_downgrade: true)")
    if release_fingerprint(have) != wanted:
        how = "pushed from the controller's cache" if r.source == "push" else "from the npm registry, on the host"
        out.append(Change(h, None, r.dir, Action.CREATE, f"install OpenClaw {r.version} with node {r.node_version}, "
                          f"{how}", release_fingerprint(have), wanted, kind=ChangeKind.RELEASE))
    if current != r.version:
        # the state goes back with the release if the new one fails its gate (apply/upgrade_state.py)
        backup = f"; first, each instance's state is backed up on the host (openclaw backup create, {current})" \
            if current else ""
        out.append(Change(h, None, f"{r.prefix}/current", Action.UPDATE, f"switch current {current or '(none)'} -> "
                          f"{r.version} once the gateways are healthy on it{backup}", current or ABSENT, r.version,
                          kind=ChangeKind.RELEASE_LINK))
    keep = {r.version, *([current] if current else [])}
    older = sorted((v for v in observed.releases if v not in keep), key=version_key, reverse=True)
    room = max(r.keep - len(keep), 0)
    for v in older[room:]:
        out.append(Change(h, None, f"{r.prefix}/{v}", Action.DELETE, f"prune: keep {r.keep} release(s) for rollback",
                          release_fingerprint(observed.releases[v]), ABSENT, kind=ChangeKind.RELEASE))
    return out, None


def plan_host(desired: DesiredHost, observed: ObservedHost, *, manage_services: bool = True) -> HostPlan:
    changes: list[Change] = []
    h = desired.name
    if desired.release is not None and manage_services:
        release_changes, problem = _plan_release(h, desired.release, observed)
        if problem:
            return HostPlan(h, (), error=problem)
        changes += release_changes
    changes += plan_plugins(h, desired.plugins, observed) if manage_services else []
    if desired.service_user and not observed.users.get(desired.service_user, True):
        changes.append(Change(h, None, desired.service_user, Action.CREATE_USER,
                              f"service user {desired.service_user} does not exist", kind=ChangeKind.USER))
    changes += _plan_dirs(h, desired.dirs, observed)
    file_changes = _plan_files(h, desired.files, observed)
    changes += file_changes
    if manage_services:
        changed_paths = {c.target for c in file_changes if c.action is not Action.NOOP}
        changes += _plan_services(h, desired.services, observed, changed_paths)
        changes += _plan_removed(h, desired, observed)
    return HostPlan(h, tuple(changes), locked_by=observed.lock_holder)


def _plan_dirs(h: str, dirs: Iterable[DesiredDir], observed: ObservedHost) -> list[Change]:
    out = []
    for d in dirs:
        o = observed.dirs.get(d.path)
        before = dir_fingerprint(o)
        after = f"dir mode:{d.mode:04o} owner:{d.owner}:{d.group}"
        if o is None or not o.exists:
            out.append(Change(h, d.instance, d.path, Action.CREATE, "directory is missing", before, after,
                              kind=ChangeKind.DIR))
        elif o.kind is not EntryKind.DIRECTORY:
            out.append(Change(h, d.instance, d.path, Action.REFUSE, f"{_found(o)} where a directory belongs; the "
                              "tool will not replace or follow it: remove it by hand", before, after,
                              kind=ChangeKind.DIR))
        elif d.as_user and o.owner != d.owner:
            out.append(Change(h, d.instance, d.path, Action.REFUSE, f"is owned by {o.owner}:{o.group}, not "
                              f"{d.owner}: inside {d.owner}'s tree the tool acts only as {d.owner} and cannot take "
                              f"it over (chown -R {d.owner} it by hand if it should be {d.owner}'s)", before, after,
                              kind=ChangeKind.DIR))
        elif d.ensure_only:
            continue
        elif before != after:
            out.append(Change(h, d.instance, d.path, Action.UPDATE, _attr_reason(o, d.mode, d.owner, d.group),
                              before, after, kind=ChangeKind.DIR))
    return out


def _found(o: ObservedFile) -> str:
    """What is at a path, in words: 'is a symbolic link', 'is a fifo', 'is a directory' ..."""
    what = o.found or o.kind.value
    return f"is a {what}" + (f" (owned by {o.owner})" if o.owner else "")


def _attr_reason(o: ObservedFile, mode: int, owner: str, group: str) -> str:
    parts = []
    if o.mode != mode:
        parts.append(f"mode {(o.mode or 0):04o} -> {mode:04o}")
    if (o.owner, o.group) != (owner, group):
        parts.append(f"owner {o.owner}:{o.group} -> {owner}:{group}")
    return ", ".join(parts)


def _plan_files(h: str, files: Iterable[DesiredFile], observed: ObservedHost) -> list[Change]:
    out = []
    for f in files:
        o = observed.files.get(f.path)
        if f.seed and o is not None and o.exists:
            continue  # seeded once, and the agent's since: no change, whatever it holds now
        before = observed_fingerprint(o)
        after = desired_fingerprint(f)
        if o is None or not o.exists:
            out.append(Change(h, f.instance, f.path, Action.CREATE, f"{f.kind.value} file does not exist yet",
                              before, after, file_diff(f.path, None, f.content, f)))
            continue
        if o.kind is not EntryKind.FILE:
            out.append(Change(h, f.instance, f.path, Action.REFUSE, f"{_found(o)} where a regular file belongs; the "
                              "tool will not replace or follow it: remove it by hand", before, after))
            continue
        if before == after:
            out.append(Change(h, f.instance, f.path, Action.NOOP, "up to date", before, after))
            continue
        reasons = []
        diff = ""
        cause = ""
        if o.sha256 != sha256(f.content):
            cause = _cause(observed.applied.get(f.path), o.sha256, sha256(f.content))
            reasons.append(CAUSES[cause])
            diff = file_diff(f.path, o.content, f.content, f) if o.content is not None else \
                f"(file too large to diff; the planned file is {len(f.content)} bytes)\n"
        attr = _attr_reason(o, f.mode, f.owner, f.group)
        if attr:
            reasons.append(attr)
        out.append(Change(h, f.instance, f.path, Action.UPDATE, "; ".join(reasons), before, after, diff,
                          cause=cause))
    return out


# why a file's content differs, by what the host's record of the last apply says (ObservedHost.applied)
CAUSES = {
    "inventory": "the inventory changed this file",
    "drift": "the host's file was edited since the last apply (drift): apply puts back the inventory's version",
    "both": "the inventory changed this file, and the host's file was also edited since the last apply: apply "
            "overwrites that edit",
    "unknown": "content differs from the rendered file (no record of an apply from this controller: a change of "
               "the inventory or an edit on the host)",
}


def _cause(applied: tuple[str, str] | None, host_sha: str | None, desired_sha: str) -> str:
    """Which of CAUSES: the record holds the keyed digest of what the last apply wrote, made with a key whose id
    it names; a record made under another controller's key cannot be compared."""
    from provisioner.digests import DigestKeyError, key_id, keyed

    try:
        if applied is None or host_sha is None or applied[0] != key_id():
            return "unknown"
    except DigestKeyError:
        return "unknown"
    edited = keyed(host_sha) != applied[1]
    changed = keyed(desired_sha) != applied[1]
    return "both" if edited and changed else "drift" if edited else "inventory" if changed else "unknown"


def service_fingerprint(s: ObservedService | None) -> str:
    if s is None:
        return "unit:unknown"
    return f"unit:{s.load_state}/{s.active_state}/{s.enabled}"


def _plan_services(h: str, services: Iterable[DesiredService], observed: ObservedHost,
                   changed: set[str]) -> list[Change]:
    out = []
    for s in services:
        if s.manager is Manager.NONE:
            continue
        o = observed.services.get(s.unit)
        before = service_fingerprint(o)
        touched = [p for p in s.files if p in changed]
        active = o is not None and o.active_state in ("active", "activating", "reloading")
        if not s.enabled:
            if active or (o is not None and o.enabled == "enabled"):
                out.append(Change(h, s.instance, s.unit, Action.STOP, "instance has enabled: false in the inventory",
                                  before, "unit:stopped/disabled", kind=ChangeKind.SERVICE))
            continue
        if touched:
            names = ", ".join(p.rsplit("/", 1)[-1] for p in touched)
            action = Action.RESTART if active else Action.START
            out.append(Change(h, s.instance, s.unit, action, f"{names} changed", before, "unit:loaded/active/enabled",
                              kind=ChangeKind.SERVICE))
        elif s.unit in observed.pending_restart and active:
            out.append(Change(h, s.instance, s.unit, Action.RESTART, "an earlier run wrote its files and was cut off "
                              "before restarting it: it still runs the previous ones", before,
                              "unit:loaded/active/enabled", kind=ChangeKind.SERVICE))
        elif not active:
            state = o.active_state if o else "unknown"
            out.append(Change(h, s.instance, s.unit, Action.START, f"unit is {state}", before,
                              "unit:loaded/active/enabled", kind=ChangeKind.SERVICE))
        elif o is not None and o.enabled != "enabled":
            out.append(Change(h, s.instance, s.unit, Action.START, f"unit is {o.enabled}, not enabled", before,
                              "unit:loaded/active/enabled", kind=ChangeKind.SERVICE))
    return out


def _plan_removed(h: str, desired: DesiredHost, observed: ObservedHost) -> list[Change]:
    wanted = {s.unit for s in desired.services}
    out = []
    for unit in observed.managed_units:
        if unit in wanted:
            continue
        o = observed.services.get(unit)
        out.append(Change(h, None, unit, Action.STOP, "instance is no longer in the inventory: stop and disable it "
                          "(its state directory is kept)", service_fingerprint(o), "unit:removed",
                          kind=ChangeKind.SERVICE))
    return out
