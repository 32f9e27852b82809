"""Planning, exactly: the Change every file, directory, unit and service user gets, with its action, reason and
fingerprints, and the masked diff a plan shows. Found by mutation testing (`scripts/mutation plan`): the fast
tests checked the actions of a few changes, so a wrong reason, fingerprint, cause or masking rule went unnoticed
(the CLI tests that show them are left out of mutation runs).

README, "Rollouts": a file's change says whether the inventory changed it, the host's file was edited since the
last apply (drift), or both (`cause`); "Who is trusted": a link or a FIFO where a managed file or directory
belongs, or a directory of the service user's tree owned by someone else, is a refusal; "Inventory": secrets are
masked in every plan and diff (`<redacted>`, `(changed)` when the value changed). Units restart only when one of
their files changed, and start when stopped."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from provisioner import digests
from provisioner.core.desired import DesiredDir, DesiredFile, DesiredHost, DesiredService, FileKind, Manager
from provisioner.core.observed import EntryKind, ObservedFile, ObservedHost, ObservedService
from provisioner.plan import CAUSES, file_diff, plan_host, sha256
from provisioner.rules.secret_fields import fields_for


@pytest.fixture(autouse=True)
def _key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A fixed digest key, so that fingerprints and the record of the last apply can be written down."""
    key = tmp_path / "key"
    key.write_text("0f" * 32 + "\n")
    monkeypatch.setenv(digests.KEY_ENV, str(key))
    digests.forget_key()
    yield
    digests.forget_key()


@dataclass(frozen=True)
class fp:  # noqa: N801 - reads as the fingerprint it stands for
    """A file's fingerprint, written down before the test's key exists: keyed content digest, mode, owner."""

    content: bytes
    mode: int
    owner: str = "oc"
    group: str = "oc"

    def __str__(self) -> str:
        return f"{digests.keyed(sha256(self.content))} mode:{self.mode:04o} owner:{self.owner}:{self.group}"


def _text(change: tuple) -> tuple:
    return tuple(str(x) if isinstance(x, fp) else x for x in change)


CFG = "/srv/oc/openclaw.json"
NEW = b"{port: 2}\n"
OLD = b"{port: 1}\n"


def _file(content: bytes = NEW, mode: int = 0o600, kind: FileKind = FileKind.CONFIG, **kw: object) -> DesiredFile:
    return DesiredFile("h", "main", CFG, content, mode, "oc", "oc", kind, **kw)  # type: ignore[arg-type]


def _seen(content: bytes | None = OLD, mode: int = 0o600, owner: str = "oc", kind: EntryKind = EntryKind.FILE,
          found: str = "regular file", sha: bool = True) -> ObservedFile:
    return ObservedFile(CFG, True, sha256(content) if sha and content is not None else None, mode, owner, owner,
                        content, found, kind)


SAME = fp(NEW, 0o600)
DIFF_TAIL = "--- /srv/oc/openclaw.json (on host)\n+++ /srv/oc/openclaw.json (planned)\n@@ -1 +1 @@\n-{port: 1}\n" \
            "+{port: 2}\n"


@pytest.mark.parametrize(("seen", "applied", "change", "diff"), [
    pytest.param(None, None, ("create", "config file does not exist yet", "absent", SAME, ""),
                 "--- /dev/null\n+++ /srv/oc/openclaw.json (planned)\n@@ -0,0 +1 @@\n+{port: 2}\n", id="absent"),
    pytest.param(_seen(NEW), None, ("no-op", "up to date", SAME, SAME, ""), "", id="up-to-date"),
    pytest.param(_seen(OLD), None, ("update", CAUSES["unknown"], fp(OLD, 0o600), SAME, "unknown"), DIFF_TAIL,
                 id="differs-no-record"),
    pytest.param(_seen(OLD), "old", ("update", CAUSES["inventory"], fp(OLD, 0o600), SAME, "inventory"), DIFF_TAIL,
                 id="the-inventory-changed-it"),
    pytest.param(_seen(OLD), "new", ("update", CAUSES["drift"], fp(OLD, 0o600), SAME, "drift"), DIFF_TAIL,
                 id="edited-on-the-host"),
    pytest.param(_seen(OLD), "third", ("update", CAUSES["both"], fp(OLD, 0o600), SAME, "both"), DIFF_TAIL,
                 id="both"),
    pytest.param(_seen(OLD), "other-key", ("update", CAUSES["unknown"], fp(OLD, 0o600), SAME, "unknown"), DIFF_TAIL,
                 id="record-of-another-controller"),
    pytest.param(_seen(NEW, 0o644, "root"), None,
                 ("update", "mode 0644 -> 0600, owner root:root -> oc:oc", fp(NEW, 0o644, "root", "root"), SAME, ""),
                 "", id="mode-and-owner-only"),
    pytest.param(_seen(NEW, 0o640), None, ("update", "mode 0640 -> 0600", fp(NEW, 0o640), SAME, ""), "",
                 id="mode-only"),
    pytest.param(ObservedFile(CFG, True, sha256(OLD), 0o644, "oc", "oc", None, "regular file", EntryKind.FILE), None,
                 ("update", CAUSES["unknown"] + "; mode 0644 -> 0600", fp(OLD, 0o644), SAME, "unknown"),
                 "(file too large to diff; the planned file is 10 bytes)\n", id="too-large-to-diff"),
    pytest.param(_seen(None, 0o777, "root", EntryKind.SYMLINK, "symbolic link"), None,
                 ("refuse", "is a symbolic link (owned by root) where a regular file belongs; the tool will not "
                  "replace or follow it: remove it by hand", "symlink mode:0777 owner:root:root", SAME, ""), "",
                 id="a-link-is-refused"),
    pytest.param(ObservedFile(CFG, True, None, None, None, None, None, "", EntryKind.OTHER), None,
                 ("refuse", "is a other where a regular file belongs; the tool will not replace or follow it: remove "
                  "it by hand", "other mode:0000 owner:None:None", SAME, ""), "", id="unnamed-entry"),
    pytest.param(ObservedFile(CFG, False), None, ("create", "config file does not exist yet", "absent", SAME, ""),
                 "--- /dev/null\n+++ /srv/oc/openclaw.json (planned)\n@@ -0,0 +1 @@\n+{port: 2}\n", id="probed-absent"),
])
def test_a_file_s_change(seen: ObservedFile | None, applied: str | None, change: tuple, diff: str) -> None:
    key = digests.key_id()
    record = {"old": (key, digests.keyed(sha256(OLD))), "new": (key, digests.keyed(sha256(NEW))),
              "third": (key, digests.keyed(sha256(b"x"))), "other-key": ("00000000", digests.keyed(sha256(NEW)))}
    obs = ObservedHost("h", files={CFG: seen} if seen else {}, applied={CFG: record[applied]} if applied else {})
    hp = plan_host(DesiredHost("h", "oc", "/srv/oc", (_file(),), (), ()), obs)
    (c,) = hp.changes
    assert (c.host, c.instance, c.target, c.kind.value) == ("h", "main", CFG, "file")
    assert (c.action.value, c.reason, c.before, c.after, c.cause) == _text(change)
    assert c.diff == diff


def test_a_file_without_a_known_digest_or_mode_has_an_unknown_content_fingerprint() -> None:
    seen = ObservedFile(CFG, True, None, None, "oc", "oc", None, "regular file", EntryKind.FILE)
    (c,) = plan_host(DesiredHost("h", "oc", "/srv/oc", (_file(),), (), ()),
                     ObservedHost("h", files={CFG: seen})).changes
    assert (c.action.value, c.before, c.cause) == ("update", "content:unknown mode:0000 owner:oc:oc", "unknown")
    assert c.reason == CAUSES["unknown"] + "; mode 0000 -> 0600"


D = "/srv/oc/state"
WANT = "dir mode:0700 owner:oc:oc"


@pytest.mark.parametrize(("desired", "seen", "change"), [
    pytest.param(DesiredDir("h", "main", D, 0o700, "oc", "oc"), None,
                 ("create", "directory is missing", "absent", WANT), id="missing"),
    pytest.param(DesiredDir("h", "main", D, 0o700, "oc", "oc"),
                 ObservedFile(D, False), ("create", "directory is missing", "absent", WANT), id="probed-missing"),
    pytest.param(DesiredDir("h", "main", D, 0o700, "oc", "oc"),
                 ObservedFile(D, True, None, 0o700, "oc", "oc", found="directory", kind=EntryKind.DIRECTORY), None,
                 id="as-wanted"),
    pytest.param(DesiredDir("h", "main", D, 0o700, "oc", "oc"),
                 ObservedFile(D, True, None, 0o755, "root", "adm", found="directory", kind=EntryKind.DIRECTORY),
                 ("update", "mode 0755 -> 0700, owner root:adm -> oc:oc", "dir mode:0755 owner:root:adm", WANT),
                 id="mode-and-owner"),
    pytest.param(DesiredDir("h", "main", D, 0o700, "oc", "oc"),
                 ObservedFile(D, True, None, 0o700, "oc", "adm", found="directory", kind=EntryKind.DIRECTORY),
                 ("update", "owner oc:adm -> oc:oc", "dir mode:0700 owner:oc:adm", WANT), id="group-only"),
    pytest.param(DesiredDir("h", "main", D, 0o700, "oc", "oc"),
                 ObservedFile(D, True, None, None, "oc", "oc", found="directory", kind=EntryKind.DIRECTORY),
                 ("update", "mode 0000 -> 0700", "dir mode:0000 owner:oc:oc", WANT), id="mode-not-probed"),
    pytest.param(DesiredDir("h", None, "/etc/oc", 0o755, "root", "root", ensure_only=True),
                 ObservedFile("/etc/oc", True, None, 0o750, "adm", "adm", found="directory",
                              kind=EntryKind.DIRECTORY), None, id="ensure-only-leaves-an-existing-one-alone"),
    pytest.param(DesiredDir("h", "main", D, 0o700, "oc", "oc"),
                 ObservedFile(D, True, None, 0o777, "mallory", "mallory", found="symbolic link",
                              kind=EntryKind.SYMLINK),
                 ("refuse", "is a symbolic link (owned by mallory) where a directory belongs; the tool will not "
                  "replace or follow it: remove it by hand", "other:symlink", WANT), id="a-link-is-refused"),
    pytest.param(DesiredDir("h", "main", D, 0o700, "oc", "oc", as_user=True),
                 ObservedFile(D, True, None, 0o700, "root", "root", found="directory", kind=EntryKind.DIRECTORY),
                 ("refuse", "is owned by root:root, not oc: inside oc's tree the tool acts only as oc and cannot take "
                  "it over (chown -R oc it by hand if it should be oc's)", "dir mode:0700 owner:root:root", WANT),
                 id="someone-else-s-dir-in-the-user-s-tree"),
    pytest.param(DesiredDir("h", "main", D, 0o700, "oc", "oc", as_user=True),
                 ObservedFile(D, True, None, 0o755, "oc", "oc", found="directory", kind=EntryKind.DIRECTORY),
                 ("update", "mode 0755 -> 0700", "dir mode:0755 owner:oc:oc", WANT), id="the-user-s-own-dir"),
])
def test_a_directory_s_change(desired: DesiredDir, seen: ObservedFile | None, change: tuple | None) -> None:
    hp = plan_host(DesiredHost("h", "oc", "/srv/oc", (), (desired,), ()),
                   ObservedHost("h", dirs={desired.path: seen} if seen else {}))
    got = [(c.host, c.instance, c.target, c.action.value, c.reason, c.before, c.after, c.kind.value, c.cause)
           for c in hp.changes]
    assert got == ([("h", desired.instance, desired.path, *change, "dir", "")] if change else [])


def test_a_directory_left_alone_does_not_hide_the_next_one() -> None:
    seen = ObservedFile("/etc/oc", True, None, 0o750, "adm", "adm", found="directory", kind=EntryKind.DIRECTORY)
    dirs = (DesiredDir("h", None, "/etc/oc", 0o755, "root", "root", ensure_only=True),
            DesiredDir("h", "main", D, 0o700, "oc", "oc"))
    hp = plan_host(DesiredHost("h", "oc", "/srv/oc", (), dirs, ()), ObservedHost("h", dirs={"/etc/oc": seen}))
    assert [(c.target, c.action.value) for c in hp.changes] == [(D, "create")]


U = "openclaw-gateway.service"
UP = "unit:loaded/active/enabled"


def _svc(enabled: bool = True, manager: Manager = Manager.SYSTEMD) -> DesiredService:
    return DesiredService("h", "main", U, manager, "oc", 18789, (CFG, "/srv/oc/gateway.env"), enabled=enabled)


@pytest.mark.parametrize(("desired", "seen", "file_changed", "pending", "change"), [
    pytest.param(_svc(), ObservedService(U, "loaded", "active", "enabled"), True, False,
                 ("restart", "openclaw.json changed", "unit:loaded/active/enabled", UP), id="a-file-changed"),
    pytest.param(_svc(), ObservedService(U, "loaded", "reloading", "enabled"), True, False,
                 ("restart", "openclaw.json changed", "unit:loaded/reloading/enabled", UP), id="reloading-is-running"),
    pytest.param(_svc(), ObservedService(U, "loaded", "failed", "enabled"), True, False,
                 ("start", "openclaw.json changed", "unit:loaded/failed/enabled", UP), id="a-file-changed-not-running"),
    pytest.param(_svc(), None, True, False, ("start", "openclaw.json changed", "unit:unknown", UP),
                 id="a-file-changed-no-unit-yet"),
    pytest.param(_svc(), ObservedService(U, "loaded", "active", "enabled"), False, False, None, id="nothing-to-do"),
    pytest.param(_svc(), ObservedService(U, "loaded", "activating", "enabled"), False, False, None,
                 id="activating-is-running"),
    pytest.param(_svc(), ObservedService(U, "loaded", "active", "enabled"), False, True,
                 ("restart", "an earlier run wrote its files and was cut off before restarting it: it still runs the "
                  "previous ones", "unit:loaded/active/enabled", UP), id="cut-off-before-its-restart"),
    pytest.param(_svc(), ObservedService(U, "loaded", "inactive", "enabled"), False, True,
                 ("start", "unit is inactive", "unit:loaded/inactive/enabled", UP), id="cut-off-and-stopped"),
    pytest.param(_svc(), None, False, False, ("start", "unit is unknown", "unit:unknown", UP), id="not-probed"),
    pytest.param(_svc(), ObservedService(U, "loaded", "active", "disabled"), False, False,
                 ("start", "unit is disabled, not enabled", "unit:loaded/active/disabled", UP), id="running-disabled"),
    pytest.param(_svc(enabled=False), ObservedService(U, "loaded", "active", "enabled"), True, False,
                 ("stop", "instance has enabled: false in the inventory", "unit:loaded/active/enabled",
                  "unit:stopped/disabled"), id="disabled-in-the-inventory"),
    pytest.param(_svc(enabled=False), ObservedService(U, "loaded", "inactive", "enabled"), False, False,
                 ("stop", "instance has enabled: false in the inventory", "unit:loaded/inactive/enabled",
                  "unit:stopped/disabled"), id="disabled-in-the-inventory-stopped-but-enabled"),
    pytest.param(_svc(enabled=False), ObservedService(U, "loaded", "inactive", "disabled"), True, False, None,
                 id="disabled-and-already-off"),
    pytest.param(_svc(enabled=False), None, True, False, None, id="disabled-and-never-there"),
    pytest.param(_svc(manager=Manager.NONE), None, True, False, None, id="manager-none-runs-nothing"),
])
def test_a_unit_s_change(desired: DesiredService, seen: ObservedService | None, file_changed: bool, pending: bool,
                         change: tuple | None) -> None:
    seen_file = _seen(OLD if file_changed else NEW)
    obs = ObservedHost("h", files={CFG: seen_file}, services={U: seen} if seen else {},
                       pending_restart=(U,) if pending else ())
    hp = plan_host(DesiredHost("h", "oc", "/srv/oc", (_file(),), (), (desired,)), obs)
    got = [(c.host, c.instance, c.target, c.action.value, c.reason, c.before, c.after, c.kind.value)
           for c in hp.changes if c.kind.value == "service"]
    assert got == ([("h", "main", U, *change, "service")] if change else [])


@pytest.mark.parametrize("first", [_svc(enabled=False), _svc(manager=Manager.NONE)], ids=["disabled", "manager-none"])
def test_a_unit_left_alone_does_not_hide_the_next_one(first: DesiredService) -> None:
    second = DesiredService("h", "ops", "ops.service", Manager.SYSTEMD, "oc", 1, ())
    hp = plan_host(DesiredHost("h", "oc", "/srv/oc", (), (), (first, second)), ObservedHost("h"))
    assert [(c.target, c.action.value, c.reason) for c in hp.changes] == [("ops.service", "start", "unit is unknown")]


def test_restart_names_every_changed_file_of_the_unit_and_only_those() -> None:
    env = DesiredFile("h", "main", "/srv/oc/gateway.env", b"A=1\n", 0o600, "oc", "oc", FileKind.ENV)
    other = DesiredFile("h", "ops", "/srv/oc/other.json", b"{}\n", 0o600, "oc", "oc", FileKind.CONFIG)
    obs = ObservedHost("h", services={U: ObservedService(U, "loaded", "active", "enabled")})
    hp = plan_host(DesiredHost("h", "oc", "/srv/oc", (_file(), env, other), (), (_svc(),)), obs)
    (svc,) = [c for c in hp.changes if c.kind.value == "service"]
    assert (svc.action.value, svc.reason) == ("restart", "openclaw.json, gateway.env changed")


def test_a_unit_that_left_the_inventory_is_stopped_and_the_service_user_made() -> None:
    obs = ObservedHost("h", managed_units=(U, "openclaw-gateway-old.service"), users={"oc": False},
                       services={"openclaw-gateway-old.service": ObservedService("x", "loaded", "active", "enabled"),
                                 U: ObservedService(U, "loaded", "active", "enabled")}, lock_holder="pid 7")
    hp = plan_host(DesiredHost("h", "oc", "/srv/oc", (), (), (_svc(),)), obs)
    assert hp.locked_by == "pid 7"
    assert [(c.host, c.instance, c.target, c.action.value, c.reason, c.before, c.after, c.kind.value)
            for c in hp.changes] == [
        ("h", None, "oc", "create-user", "service user oc does not exist", None, None, "user"),
        ("h", None, "openclaw-gateway-old.service", "stop", "instance is no longer in the inventory: stop and "
         "disable it (its state directory is kept)", "unit:loaded/active/enabled", "unit:removed", "service"),
    ]
    # with services left alone (plan of files only), neither the unit nor the one that left are touched
    hp = plan_host(DesiredHost("h", "oc", "/srv/oc", (), (), (_svc(),)), obs, manage_services=False)
    assert [c.action.value for c in hp.changes] == ["create-user"]
    # a user the probe found, or did not ask about, is not made
    for users in ({"oc": True}, {}):
        hp = plan_host(DesiredHost("h", "oc", "/srv/oc", (), (), ()), ObservedHost("h", users=users))
        assert hp.changes == ()


# --- what a diff shows ---------------------------------------------------------------------------------------

def test_an_env_file_diff_masks_every_value_but_the_public_ones_and_says_which_changed() -> None:
    f = DesiredFile("h", "main", "/srv/oc/gateway.env", b"", 0o600, "oc", "oc", FileKind.ENV,
                    secret_values=("tok-new",), reveal_keys=("NODE_ENV",))
    old = b'# comment\nNODE_ENV="dev"\nexport TOKEN="tok-old"\nKEEP="same"\n'
    new = b'# comment tok-new\nNODE_ENV="production"\nexport TOKEN="tok-new"\nKEEP="same"\n' \
          b'ADDED=<secret from env X>\nNOQUOTE=x'
    assert file_diff("/srv/oc/gateway.env", old, new, f) == (
        "--- /srv/oc/gateway.env (on host)\n+++ /srv/oc/gateway.env (planned)\n@@ -1,4 +1,6 @@\n"
        "-# comment\n"
        '-NODE_ENV="dev"\n'
        "-export TOKEN=<redacted>\n"
        "+# comment <redacted>\n"
        '+NODE_ENV="production"\n'
        "+export TOKEN=<redacted> (changed)\n"
        " KEEP=<redacted>\n"
        "+ADDED=<secret from env X>\n"  # where a value comes from is no secret: an offline plan shows it
        "+NOQUOTE=<redacted>\n"
        "\\ No newline at end of file\n")


def test_an_env_value_with_spaces_is_compared_whole() -> None:
    """`(changed)` says a value differs from the host's: a value with a space in it, unchanged, is not one."""
    f = DesiredFile("h", "main", "/srv/oc/gateway.env", b"", 0o600, "oc", "oc", FileKind.ENV)
    old, new = b'NOTE="a b"\nN="1"\n', b'NOTE="a b"\nN="2"\n'
    assert file_diff("/srv/oc/gateway.env", old, new, f) == (
        "--- /srv/oc/gateway.env (on host)\n+++ /srv/oc/gateway.env (planned)\n@@ -1,2 +1,2 @@\n"
        " NOTE=<redacted>\n-N=<redacted>\n+N=<redacted> (changed)\n")


def test_a_file_that_is_not_utf8_text_diffs_with_replacement_characters() -> None:
    """A document may be any bytes (an image, Latin-1 text): its diff shows what it can, never stops the plan."""
    f = DesiredFile("h", "main", "/srv/oc/workspace/NOTES.md", b"", 0o644, "oc", "oc", FileKind.DOCUMENT)
    assert file_diff(f.path, b"caf\xe9\n", b"na\xefve\n", f) == (
        "--- /srv/oc/workspace/NOTES.md (on host)\n+++ /srv/oc/workspace/NOTES.md (planned)\n@@ -1 +1 @@\n"
        "-caf\ufffd\n+na\ufffdve\n")


def test_a_secret_is_masked_by_value_in_any_file_longest_first() -> None:
    f = DesiredFile("h", None, "/etc/x.conf", b"", 0o644, "root", "root", FileKind.OTHER,
                    secret_values=("ab", "abcd", "", "<secret from file ~/t>", "zz", "a-zz-b"))
    # "a-zz-b" before "zz", though it sorts after it as text: else "a-<redacted>-b" would show the rest of it
    assert file_diff("/etc/x.conf", None, b"k=abcd ab <secret from file ~/t> a-zz-b\n", f) == (
        "--- /dev/null\n+++ /etc/x.conf (planned)\n@@ -0,0 +1 @@\n"
        "+k=<redacted> <redacted> <secret from file ~/t> <redacted>\n")
    assert file_diff("/etc/x.conf", b"k=abcd\n", None, f) == (
        "--- /etc/x.conf (on host)\n+++ /dev/null\n@@ -1 +0,0 @@\n-k=<redacted>\n")


def test_a_config_diff_masks_the_planned_credentials_and_the_host_s_own() -> None:
    fields = fields_for("2026.9.6")
    f = _file(b'{"gateway": {"auth": {"token": "new-tok"}}, "a": "new-tok"}\n', secret_values=("new-tok",),
              mask_fields=fields)
    old = b'{"gateway": {"auth": {"token": "rotated"}}, "b": "rotated"}\n'
    assert file_diff(CFG, old, f.content, f) == (
        "--- /srv/oc/openclaw.json (on host)\n+++ /srv/oc/openclaw.json (planned)\n@@ -1 +1 @@\n"
        '-{"gateway": {"auth": {"token": "<redacted>"}}, "b": "<redacted>"}\n'
        '+{"gateway": {"auth": {"token": "<redacted> (changed)"}}, "a": "<redacted> (changed)"}\n')
    # the same credential on both sides: masked, not said to change
    assert file_diff(CFG, f.content, f.content + b"//\n", f) == (
        "--- /srv/oc/openclaw.json (on host)\n+++ /srv/oc/openclaw.json (planned)\n@@ -1 +1,2 @@\n"
        ' {"gateway": {"auth": {"token": "<redacted>"}}, "a": "<redacted>"}\n+//\n')
    # a new file: nothing on the host to compare with, so nothing "changed"
    assert file_diff(CFG, None, f.content, f).endswith('+{"gateway": {"auth": {"token": "<redacted>"}}, "a": '
                                                       '"<redacted>"}\n')


@pytest.mark.parametrize("old", [b"{gateway: {auth: {token: 'x'\n", b"[" * 2000 + b"]" * 2000 + b"\n"],
                         ids=["does-not-parse", "too-deep"])
def test_a_host_config_that_does_not_parse_is_not_shown(old: bytes) -> None:
    f = _file(b'{"gateway": {"auth": {"token": "tok-1"}}}\n', secret_values=("tok-1",),
              mask_fields=fields_for("2026.9.6"))
    assert file_diff(CFG, old, f.content, f) == (
        "--- /srv/oc/openclaw.json (on host)\n+++ /srv/oc/openclaw.json (planned)\n@@ -1 +1 @@\n"
        "-(the file on the host does not parse as JSON5: not shown, it may hold credentials)\n"
        '+{"gateway": {"auth": {"token": "<redacted> (changed)"}}}\n')


def test_a_plan_of_files_only_leaves_the_release_alone() -> None:
    """`manage_services=False` (manager none, or a local directory standing for a host): no install, no switch,
    no downgrade error."""
    from provisioner.core.desired import DesiredRelease

    obs = ObservedHost("h", releases={"2026.9.9": "openclaw=2026.9.9 node=24.21.0"}, current_release="2026.9.9")
    desired = DesiredHost("h", "oc", "/srv/oc", (), (), (), DesiredRelease("/opt/oc", "2026.9.6", "24.21.0", "push"))
    assert plan_host(desired, obs, manage_services=False) == plan_host(DesiredHost("h", "oc", "/srv/oc", (), (), ()),
                                                                       obs)
    assert plan_host(desired, obs).error is not None  # the same host, planned with its services: a downgrade


def test_a_credential_inside_another_is_masked_as_part_of_the_longer_one() -> None:
    """Longest first, whatever their order as text: else the shorter one's mask would leave the rest of the longer
    one readable (`a-<redacted>-b`)."""
    f = _file(b"", secret_values=("tok-1", "a-tok-1-b", "b-2", "b-2-long"), mask_fields=fields_for("2026.9.6"))
    old, new = b'{"x": "a-tok-1-b b-2-long", "n": 1}\n', b'{"x": "a-tok-1-b b-2-long", "n": 2}\n'
    assert file_diff(CFG, old, new, f).splitlines()[-2:] == [
        '-{"x": "<redacted> <redacted>", "n": 1}', '+{"x": "<redacted> <redacted>", "n": 2}']


@pytest.mark.parametrize(("found", "kind"), [
    ("regular file", EntryKind.FILE), ("regular empty file", EntryKind.FILE), ("directory", EntryKind.DIRECTORY),
    ("symbolic link", EntryKind.SYMLINK), ("fifo", EntryKind.OTHER), ("socket", EntryKind.OTHER),
    ("character special file", EntryKind.OTHER),
])
def test_what_stat_calls_an_entry_is_the_kind_the_plan_acts_on(found: str, kind: EntryKind) -> None:
    assert ObservedFile.kind_of(found) is kind


def test_every_file_of_a_host_gets_its_own_change_in_order() -> None:
    """An up-to-date, refused or seeded file does not end the host's plan: each file after it is planned too (a
    seeded document the agent has since edited gets no change at all)."""
    def f(path: str, seed: bool = False) -> DesiredFile:
        return DesiredFile("h", "main", path, NEW, 0o600, "oc", "oc", FileKind.OTHER, seed=seed)

    seen = {"/a": ObservedFile("/a", True, sha256(NEW), 0o600, "oc", "oc", NEW, "regular file", EntryKind.FILE),
            "/b": ObservedFile("/b", True, None, 0o777, "root", "root", None, "fifo", EntryKind.OTHER),
            "/s": ObservedFile("/s", True, sha256(OLD), 0o644, "oc", "oc", OLD, "regular file", EntryKind.FILE)}
    hp = plan_host(DesiredHost("h", "oc", "/srv/oc", (f("/s", seed=True), f("/a"), f("/b"), f("/c"), f("/a2")), (),
                               ()), ObservedHost("h", files=seen))
    assert [(c.target, c.action.value) for c in hp.changes] == [("/a", "no-op"), ("/b", "refuse"), ("/c", "create"),
                                                                ("/a2", "create")]
