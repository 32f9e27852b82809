"""The saved plan and the render manifest, exactly: every field of `plan --out`/`--json`, a plan read back
(lossless, old files still loadable, a bad one refused with the reason), and what an offline plan stops because
the deployed render managed it. Found by mutation testing (`scripts/mutation planfile manifest`): these were
proven only through the CLI tests, which mutation runs leave out.

README/docs/json.md: a plan file is JSON of format `openclaw-provisioner-plan/1` with a summary per action and
per host state; `apply PLANFILE` re-checks every fingerprint in it, including those found up to date;
`plan --offline DIR` sees units that left the inventory through the render's manifest."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from provisioner import digests
from provisioner.core.changes import Action, Change, ChangeKind, HostPlan, Plan
from provisioner.core.desired import DesiredDir, DesiredFile, DesiredHost, DesiredService, FileKind, Manager
from provisioner.manifest import MANIFEST, ManagedHost, ManifestError, manifest_json, read_manifest, removals
from provisioner.planfile import PlanFileError, SavedPlan, dumps, loads, looks_like_plan, plan_json


@pytest.fixture(autouse=True)
def _key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    key = tmp_path / "key"
    key.write_text("0f" * 32 + "\n")
    monkeypatch.setenv(digests.KEY_ENV, str(key))
    digests.forget_key()
    yield
    digests.forget_key()


UPDATE = Change("a", "main", "/etc/x", Action.UPDATE, "drifted", "fp-old", "fp-new", "-x\n+y\n", cause="drift")
NOOP = Change("a", "main", "/etc/y", Action.NOOP, "up to date", "fp-y", "fp-y", kind=ChangeKind.FILE)
NOOP_D = Change("d", "main", "/srv/y", Action.NOOP, "up to date", "fp-y", "fp-y", kind=ChangeKind.DIR)
STOP = Change("a", None, "u.service", Action.STOP, "left", "unit:x", "unit:removed", kind=ChangeKind.SERVICE)
REFUSE = Change("b", "main", "/etc/z", Action.REFUSE, "a link", "symlink", "fp-z", kind=ChangeKind.DIR)
PLAN = Plan("inv.yaml", "ab" * 32, (HostPlan("a", (UPDATE, NOOP, STOP)), HostPlan("b", (REFUSE,), locked_by="pid 9"),
                                    HostPlan("c", (), error="unreachable"), HostPlan("d", (NOOP_D,))),
            created_at="2026-12-03T17:00:00Z")


def test_a_plan_as_json_has_every_field_and_counts_by_action_and_host_state() -> None:
    assert plan_json(PLAN) == {
        "format": "openclaw-provisioner-plan/1",
        "inventory": {"path": "inv.yaml", "sha256": "ab" * 32},
        "created_at": "2026-12-03T17:00:00Z",
        "digest_key_id": digests.key_id(),
        "changes_pending": True,
        "summary": {"update": 1, "stop": 1, "refuse": 1, "hosts_changing": 2, "hosts_failed": 1, "hosts_refused": 1,
                    "hosts": 4},
        "hosts": [
            {"host": "a", "error": None, "locked_by": None, "changes": [
                {"host": "a", "instance": "main", "kind": "file", "target": "/etc/x", "action": "update",
                 "reason": "drifted", "before": "fp-old", "after": "fp-new", "diff": "-x\n+y\n", "cause": "drift"},
                {"host": "a", "instance": None, "kind": "service", "target": "u.service", "action": "stop",
                 "reason": "left", "before": "unit:x", "after": "unit:removed", "diff": "", "cause": None}],
             "unchanged": [{"instance": "main", "kind": "file", "target": "/etc/y", "fingerprint": "fp-y"}]},
            {"host": "b", "error": None, "locked_by": "pid 9", "changes": [
                {"host": "b", "instance": "main", "kind": "dir", "target": "/etc/z", "action": "refuse",
                 "reason": "a link", "before": "symlink", "after": "fp-z", "diff": "", "cause": None}],
             "unchanged": []},
            {"host": "c", "error": "unreachable", "locked_by": None, "changes": [], "unchanged": []},
            {"host": "d", "error": None, "locked_by": None, "changes": [],
             "unchanged": [{"instance": "main", "kind": "dir", "target": "/srv/y", "fingerprint": "fp-y"}]},
        ],
    }
    quiet = Plan("inv.yaml", "0" * 64, (HostPlan("d", (NOOP,)),))
    assert plan_json(quiet)["changes_pending"] is False
    assert plan_json(quiet)["summary"] == {"hosts_changing": 0, "hosts_failed": 0, "hosts_refused": 0, "hosts": 1}


def test_a_saved_plan_reads_back_whole_with_the_key_it_was_made_with() -> None:
    text = dumps(PLAN)
    assert text.endswith("}\n") and json.loads(text) == plan_json(PLAN) and looks_like_plan(text)
    assert text.index('"created_at"') < text.index('"digest_key_id"')  # sorted keys: stable files, stable diffs
    back = loads(text)
    assert back == SavedPlan("inv.yaml", "ab" * 32, (HostPlan("a", (UPDATE, STOP, NOOP)),
                                                    HostPlan("b", (REFUSE,), locked_by="pid 9"),
                                                    HostPlan("c", (), error="unreachable"),
                                                    HostPlan("d", (NOOP_D,))),
                             "2026-12-03T17:00:00Z", digests.key_id())
    # a saved plan keeps the key it was made with, whichever controller shows it again
    assert plan_json(SavedPlan("i", "0", (), "", "feedbeef"))["digest_key_id"] == "feedbeef"
    assert plan_json(SavedPlan("i", "0", (), "", None))["digest_key_id"] is None


def test_a_plan_file_of_an_older_version_still_loads() -> None:
    old = {"format": "openclaw-provisioner-plan/1", "inventory": {"path": "i", "sha256": "s"},
           "hosts": [{"host": "a", "changes": [{"host": "a", "instance": None, "target": "/x", "action": "create",
                                                "reason": "r", "before": "absent", "after": "f", "kind": "file"}],
                      "unchanged": ["not a mapping: skipped"]},
                     {"host": "b", "changes": []}]}  # before plan files listed what was up to date
    assert loads(json.dumps(old)) == SavedPlan("i", "s", (HostPlan("a", (
        Change("a", None, "/x", Action.CREATE, "r", "absent", "f"),)), HostPlan("b", ())), "", None)


@pytest.mark.parametrize(("text", "error"), [
    ('{"format": "something-else/1"}', "not a plan file of format openclaw-provisioner-plan/1"),
    ("{", "malformed plan file: Expecting property name enclosed in double quotes: line 1 column 2 (char 1)"),
    ('{"format": "openclaw-provisioner-plan/1", "hosts": []}', "malformed plan file: 'inventory'"),
    ('{"format": "openclaw-provisioner-plan/1", "hosts": [{"host": "a", "changes": [{"action": "explode"}]}]}',
     "malformed plan file: 'host'"),
    ('{"format": "openclaw-provisioner-plan/1", "inventory": {"path": "i", "sha256": "s"}, "hosts": [], '
     '"digest_key_id": 7}', "malformed plan file: digest_key_id must be a string, not 7"),
    ("[]", "not a plan file of format openclaw-provisioner-plan/1"),  # JSON, but no mapping at all
    ('{"format": "openclaw-provisioner-plan/1", "inventory": {"path": "i", "sha256": "s"}, "hosts": [["a"]]}',
     "malformed plan file: list indices must be integers or slices, not str"),
    ('{"format": "openclaw-provisioner-plan/1", "inventory": {"path": "i", "sha256": "s"}, '
     '"hosts": [{"host": "a", "changes": [], "unchanged": []}], "created_at": "t"}', None),
])
def test_a_bad_plan_file_is_refused_with_the_reason(text: str, error: str | None) -> None:
    if error is None:  # the control: the smallest well-formed plan file loads
        assert loads(text).hosts[0].host == "a"
        return
    with pytest.raises(PlanFileError) as exc:
        loads(text)
    assert str(exc.value) == error


@pytest.mark.parametrize(("text", "plan"), [
    ('  {"format": "openclaw-provisioner-plan/1"}', True),
    ('{"x": "openclaw-provisioner-plan/1"}', True),
    ("version: 1  # openclaw-provisioner-plan/1", False),  # an inventory that names the format is not a plan
    # the format is looked for in the first 4 KiB only (a plan file starts with it: sorted keys, "created_at" and
    # "digest_key_id" before it); an inventory naming it further down is not a plan
    ("{" + " " * (4095 - len("openclaw-provisioner-plan/1")) + "openclaw-provisioner-plan/1", True),
    ("{" + " " * (4096 - len("openclaw-provisioner-plan/1")) + "openclaw-provisioner-plan/1", False),
])
def test_a_plan_file_is_told_from_an_inventory(text: str, plan: bool) -> None:
    assert looks_like_plan(text) is plan


# --- the render manifest -------------------------------------------------------------------------------------

HOST = DesiredHost(
    "gw", "oc", "/srv/oc",
    (DesiredFile("gw", None, "/etc/systemd/system/m.mount", b"", 0o644, "root", "root", FileKind.UNIT),
     DesiredFile("gw", "main", "/srv/oc/b.json", b"", 0o600, "oc", "oc", FileKind.CONFIG),
     DesiredFile("gw", "ops", "/srv/oc/a.env", b"", 0o600, "oc", "oc", FileKind.ENV)),
    (DesiredDir("gw", "main", "/srv/oc/z", 0o700, "oc", "oc"),
     DesiredDir("gw", "main", "/srv/oc/a", 0o700, "oc", "oc")),
    (DesiredService("gw", "dedupe-mount", "m.mount", Manager.SYSTEMD, "root", 0, ()),
     DesiredService("gw", "main", "gw-main.service", Manager.SYSTEMD, "oc", 1, ()),
     DesiredService("gw", "user", "gw-user.service", Manager.SYSTEMD_USER, "oc", 2, ())))


def test_the_manifest_names_what_each_host_manages_and_reads_back(tmp_path: Path) -> None:
    data = manifest_json("inv.yaml", "ab", {"gw": HOST})
    assert data == {"format": "openclaw-provisioner-render/1", "inventory": {"path": "inv.yaml", "sha256": "ab"},
                    "hosts": {"gw": {"instances": ["main", "ops", "user"],
                                     "units": {"m.mount": "dedupe-mount", "gw-main.service": "main"},
                                     "files": ["/etc/systemd/system/m.mount", "/srv/oc/a.env", "/srv/oc/b.json"],
                                     "dirs": ["/srv/oc/a", "/srv/oc/z"]}}}
    assert read_manifest(str(tmp_path)) is None  # not a render (or one of an older version)
    (tmp_path / MANIFEST).write_text(json.dumps(data))
    assert read_manifest(str(tmp_path)) == {"gw": ManagedHost({"m.mount": "dedupe-mount", "gw-main.service": "main"},
                                                              ("main", "ops", "user"))}
    data["hosts"]["gw"] = {}
    (tmp_path / MANIFEST).write_text(json.dumps(data))
    assert read_manifest(str(tmp_path)) == {"gw": ManagedHost({}, ())}


@pytest.mark.parametrize(("content", "error"), [
    ("{", "cannot read the render manifest: Expecting property name enclosed in double quotes: line 1 column 2 "
          "(char 1)"),
    ('{"format": "openclaw-provisioner-render/2", "hosts": {}}',
     "not a render manifest of format openclaw-provisioner-render/1"),
    ('{"format": "openclaw-provisioner-render/1", "hosts": []}',
     "not a render manifest of format openclaw-provisioner-render/1"),
    ("[]", "not a render manifest of format openclaw-provisioner-render/1"),
    ('{"format": "openclaw-provisioner-render/1", "hosts": {"gw": {"units": [1]}}}',
     "malformed render manifest: cannot convert dictionary update sequence element #0 to a sequence"),
    ('{"format": "openclaw-provisioner-render/1", "hosts": {"gw": []}}',
     "malformed render manifest: 'list' object has no attribute 'get'"),
])
def test_a_bad_manifest_is_refused_naming_the_file(tmp_path: Path, content: str, error: str) -> None:
    (tmp_path / MANIFEST).write_text(content)
    with pytest.raises(ManifestError) as exc:
        read_manifest(str(tmp_path))
    assert str(exc.value) == f"{tmp_path / MANIFEST}: {error}"


def test_what_the_deployed_render_managed_and_the_new_one_does_not_is_stopped() -> None:
    managed = ManagedHost({"gw-main.service": "main", "gw-old.service": "old", "m.mount": "dedupe-mount",
                           "a-first.service": "first"}, ("main", "old", "first"))
    wanted = DesiredHost("gw", "oc", "/srv/oc", (), (), (HOST.services[1],))

    def row(c: Change) -> tuple:
        return (c.host, c.instance, c.target, c.action, c.reason, c.before, c.after, c.kind)

    assert [row(c) for c in removals("gw", wanted, managed)] == [
        ("gw", None, "a-first.service", Action.STOP, "instance first is no longer in the inventory: stop and disable "
         "it (its state directory is kept)", "unit:rendered", "unit:removed", ChangeKind.SERVICE),
        ("gw", None, "gw-old.service", Action.STOP, "instance old is no longer in the inventory: stop and disable it "
         "(its state directory is kept)", "unit:rendered", "unit:removed", ChangeKind.SERVICE),
        ("gw", None, "m.mount", Action.STOP, "the shared dedupe directory is no longer mounted by the tool: stop and "
         "disable its mount unit", "unit:rendered", "unit:removed", ChangeKind.SERVICE),
    ]
    assert [c.reason for c in removals("gone", None, ManagedHost({"gw-main.service": "main"}, ("main",)))] == [
        "host gone is no longer in the inventory: apply does not touch it, so stop and remove main by hand"]


def test_a_plan_file_is_indented_json_with_sorted_keys_counting_each_action() -> None:
    """Stable bytes for the same plan: a saved plan can be diffed and reviewed (docs/ci.md keeps it as an artifact)."""
    two = Plan("inv.yaml", "ab", (HostPlan("a", (UPDATE, UPDATE)),), created_at="t")
    change = ('{\n          "action": "update",\n          "after": "fp-new",\n          "before": "fp-old",\n'
              '          "cause": "drift",\n          "diff": "-x\\n+y\\n",\n          "host": "a",\n'
              '          "instance": "main",\n          "kind": "file",\n          "reason": "drifted",\n'
              '          "target": "/etc/x"\n        }')
    assert dumps(two) == (
        '{\n  "changes_pending": true,\n  "created_at": "t",\n'
        f'  "digest_key_id": "{digests.key_id()}",\n'
        '  "format": "openclaw-provisioner-plan/1",\n  "hosts": [\n    {\n      "changes": [\n'
        f'        {change},\n        {change}\n      ],\n'
        '      "error": null,\n      "host": "a",\n      "locked_by": null,\n      "unchanged": []\n    }\n  ],\n'
        '  "inventory": {\n    "path": "inv.yaml",\n    "sha256": "ab"\n  },\n'
        '  "summary": {\n    "hosts": 1,\n    "hosts_changing": 1,\n    "hosts_failed": 0,\n    "hosts_refused": 0,\n'
        '    "update": 2\n  }\n}\n')
