"""Workspace documents without a lab: the rules (confined paths, plain sources, located diagnostics), render
(owner, mode, the user's side, subdirectories, layering) and plan (seed vs enforce), then the CLI on a local
stand-in host."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from provisioner.core.changes import Action
from provisioner.core.desired import FileKind
from provisioner.core.observed import EntryKind, ObservedFile, ObservedHost
from provisioner.plan import plan_host, sha256
from provisioner.render.files import render_host
from provisioner.validate import validate_file
from tests.support.cli import Provision

WS = "/home/openclaw/.openclaw-main/workspace"


def _inv(tmp: Path, docs: str, instance_docs: str = "") -> Path:
    p = tmp / "inventory.yaml"
    p.write_text(f"""\
version: 1
openclaw: {{version: "2026.9.6", command: [/opt/openclaw/bin/openclaw]}}
defaults:
  service: {{manager: none}}
  instance:
    documents:
{docs}
hosts:
  a:
    connection: local
    root: hosts/a
    instances:
      main:
        port: 18789
{instance_docs}
""")
    return p


@pytest.fixture()
def sources(tmp_path: Path) -> Path:
    (tmp_path / "docs/base/skills/hello").mkdir(parents=True)
    (tmp_path / "docs/base/AGENTS.md").write_text("# agents\n")
    (tmp_path / "docs/base/SOUL.md").write_text("# soul\n")
    (tmp_path / "docs/base/skills/hello/SKILL.md").write_text("hello\n")
    (tmp_path / "docs/IDENTITY.md").write_text("me\n")
    (tmp_path / "docs/SOUL-main.md").write_text("# main's soul\n")
    return tmp_path


BASE = """\
      .: docs/base
      IDENTITY.md: {source: docs/IDENTITY.md, mode: seed, file_mode: "0600"}"""


def _desired(inv: Path):  # type: ignore[no-untyped-def]
    v = validate_file(str(inv))
    assert v.ok, [d.format() for d in v.diagnostics]
    assert v.inventory is not None
    return render_host(v.inventory, v.inventory.hosts[0])


def test_render_gives_user_side_files_with_modes_subdirs_and_the_more_specific_entry_winning(sources: Path) -> None:
    inv = _inv(sources, BASE, "        documents: {SOUL.md: docs/SOUL-main.md}")
    dh = _desired(inv)
    docs = {f.path: f for f in dh.files if f.kind is FileKind.DOCUMENT}
    assert sorted(docs) == [f"{WS}/{n}" for n in ("AGENTS.md", "IDENTITY.md", "SOUL.md", "skills/hello/SKILL.md")]
    assert all(f.as_user and f.owner == "openclaw" for f in docs.values())
    assert docs[f"{WS}/SOUL.md"].content == b"# main's soul\n"  # the instance's own entry beats the directory's
    assert (docs[f"{WS}/IDENTITY.md"].mode, docs[f"{WS}/IDENTITY.md"].seed) == (0o600, True)
    assert (docs[f"{WS}/AGENTS.md"].mode, docs[f"{WS}/AGENTS.md"].seed) == (0o644, False)
    dirs = {d.path: d for d in dh.dirs}
    assert dirs[f"{WS}/skills"].ensure_only and dirs[f"{WS}/skills/hello"].as_user
    # documents are no file of the gateway's: a change of one restarts nothing
    assert not any(p in s.files for s in dh.services for p in docs)


def test_a_null_entry_drops_what_a_lower_layer_set(sources: Path) -> None:
    dh = _desired(_inv(sources, BASE, "        documents: {IDENTITY.md: null}"))
    assert f"{WS}/IDENTITY.md" not in {f.path for f in dh.files}


@pytest.mark.parametrize(("entry", "message"), [
    ("      ../escape.md: docs/IDENTITY.md", "contains `..`"),
    ("      /etc/passwd: docs/IDENTITY.md", "is absolute"),
    ("      .ocp-prev/x: docs/IDENTITY.md", "inside .ocp-prev"),
    ("      AGENTS.md: docs/missing.md", "cannot be read"),
    ("      .: docs/IDENTITY.md", "is a file: name the file"),
])
def test_bad_entries_are_located_errors(sources: Path, entry: str, message: str) -> None:
    v = validate_file(str(_inv(sources, entry)))
    errs = [d for d in v.diagnostics if d.code == "document"]
    assert len(errs) == 1 and message in errs[0].message, [d.message for d in v.diagnostics]
    assert errs[0].span is not None and errs[0].span.line == 7 and errs[0].span.col == 7


def test_a_link_out_of_the_source_tree_and_a_fifo_are_refused(sources: Path, tmp_path: Path) -> None:
    secret = tmp_path / "id_ed25519"
    secret.write_text("PRIVATE")
    os.symlink(secret, sources / "docs/base/key.md")
    os.symlink("AGENTS.md", sources / "docs/base/ALIAS.md")  # inside the tree: followed
    v = validate_file(str(_inv(sources, "      .: {source: docs/base}")))
    errs = [d for d in v.diagnostics if d.code == "document"]
    assert len(errs) == 1 and "outside the source directory" in errs[0].message
    assert errs[0].span is not None and (errs[0].span.line, errs[0].span.col) == (7, 11)  # at `source:`
    os.unlink(sources / "docs/base/key.md")
    os.mkfifo(sources / "docs/base/pipe")
    v = validate_file(str(_inv(sources, "      .: docs/base")))
    assert [d for d in v.diagnostics if d.code == "document" and "not a regular file" in d.message]
    os.unlink(sources / "docs/base/pipe")
    dh = _desired(_inv(sources, "      .: docs/base"))
    alias = next(f for f in dh.files if f.path == f"{WS}/ALIAS.md")
    assert alias.content == b"# agents\n"


def _observed(dh, present: dict[str, bytes]) -> ObservedHost:  # type: ignore[no-untyped-def]
    files = {}
    for f in dh.files:
        if f.path in present:
            files[f.path] = ObservedFile(f.path, True, sha256(present[f.path]), f.mode, f.owner, f.group,
                                         content=present[f.path], found="regular file", kind=EntryKind.FILE)
        else:
            files[f.path] = ObservedFile(f.path, False)
    dirs = {d.path: ObservedFile(d.path, True, None, d.mode, d.owner, d.group, found="directory",
                                 kind=EntryKind.DIRECTORY) for d in dh.dirs}
    return ObservedHost("a", files=files, dirs=dirs)


def test_plan_writes_a_seed_only_while_absent_and_diffs_an_enforced_edit(sources: Path) -> None:
    dh = _desired(_inv(sources, BASE))
    docs = {f.path: f for f in dh.files}
    everything = {p: f.content for p, f in docs.items()}
    assert not [c for c in plan_host(dh, _observed(dh, everything)).changes if c.action is not Action.NOOP]
    edited = {**everything, f"{WS}/IDENTITY.md": b"the agent's own\n", f"{WS}/AGENTS.md": b"hand edit\n"}
    changes = {c.target: c for c in plan_host(dh, _observed(dh, edited)).changes if c.action is not Action.NOOP}
    assert list(changes) == [f"{WS}/AGENTS.md"] and "-hand edit" in changes[f"{WS}/AGENTS.md"].diff
    absent = {p: b for p, b in everything.items() if p != f"{WS}/IDENTITY.md"}
    changes = {c.target: c for c in plan_host(dh, _observed(dh, absent)).changes if c.action is not Action.NOOP}
    assert list(changes) == [f"{WS}/IDENTITY.md"] and changes[f"{WS}/IDENTITY.md"].action is Action.CREATE


def test_cli_on_a_stand_in_host_keeps_seeds_and_unlisted_files(sources: Path) -> None:
    provision = Provision(sources, timeout=120)
    inv = str(_inv(sources, BASE))
    assert provision("apply", inv, "--yes").returncode == 0
    ws = sources / "hosts/a" / WS.lstrip("/")
    assert (ws / "skills/hello/SKILL.md").read_text() == "hello\n"
    assert (ws / "IDENTITY.md").stat().st_mode & 0o777 == 0o600
    (ws / "IDENTITY.md").write_text("the agent's\n")
    (ws / "MINE.md").write_text("mine\n")
    assert provision("plan", inv, "--detailed-exitcode").returncode == 0
    (ws / "AGENTS.md").write_text("edited\n")
    r = provision("plan", inv, "--detailed-exitcode")
    assert r.returncode == 2 and "workspace/AGENTS.md" in r.stdout and "-edited" in r.stdout
    assert provision("apply", inv, "--yes").returncode == 0
    assert (ws / "AGENTS.md").read_text() == "# agents\n" and (ws / "IDENTITY.md").read_text() == "the agent's\n"
    assert (ws / "MINE.md").read_text() == "mine\n"
