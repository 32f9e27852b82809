"""Workspace documents, exactly: every refusal `validate` gives a document entry, word for word and located, and
every document and directory render gives. Found by mutation testing (run 6, `scripts/mutation render`): the
tests of tests/test_documents.py matched a fragment of five messages and placed two of them, so a changed
message, a refusal put at the wrong key, a check of one instance skipped, and the bounds (4 MiB, control
characters, where a source tree ends) went unnoticed.

README, "Workspace documents": "a path with `..`, an absolute path, a path into `.ocp-prev`, a source that is
neither a file nor a directory, a FIFO or device in a source tree, a link in a source tree that leads out of it,
and a document over 4 MiB are located errors (`file:line:col`)"; the more specific path wins; subdirectories are
created when missing; documents are the service user's, with `file_mode`.

The cases are in tests/cases/documents.yaml."""

from __future__ import annotations

import os
import textwrap
from pathlib import Path
from typing import Any

import pytest
import yaml

from provisioner.core.desired import DesiredHost, FileKind
from provisioner.core.diagnostics import Diagnostic
from provisioner.inventory.model import DocumentEntry
from provisioner.render.documents import MAX_BYTES, DocumentFile, read
from provisioner.render.files import render_host
from provisioner.session import render_hosts
from provisioner.validate import Validated, validate_file

CASES: list[dict[str, Any]] = yaml.safe_load(
    (Path(__file__).parent / "cases" / "documents.yaml").read_text(encoding="utf-8"))

INVENTORY = """\
version: 1
openclaw: {version: "2026.9.6", command: [/opt/openclaw/bin/openclaw]}
defaults:
  service: {manager: none}
hosts:
  a:
    address: 192.0.2.1
    instances:
"""
WS = "/home/openclaw/.openclaw-main/workspace"


@pytest.fixture(autouse=True)
def _no_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OCP_NO_VALIDATION_CACHE", "1")


def _tree(tmp: Path, make: list[list[Any]]) -> None:
    """The sources every case starts from, and the case's own (see the head of the case file)."""
    for path, text in (("docs/AGENTS.md", "# agents\n"), ("docs/base/AGENTS.md", "# base agents\n"),
                       ("docs/base/skills/hello/SKILL.md", "hello\n"), *[(m[1], m[2]) for m in make
                                                                         if m[0] == "file"]):
        (tmp / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp / path).write_text(text)
    for what, path, *arg in make:
        p = tmp / path
        p.parent.mkdir(parents=True, exist_ok=True)
        if what == "size":
            with open(p, "wb") as f:
                f.truncate(arg[0])
        elif what == "link":
            os.symlink(arg[0], p)
        elif what == "fifo":
            os.mkfifo(p)
        elif what == "dir":
            p.mkdir(exist_ok=True)


def _validate(tmp: Path, case: dict[str, Any]) -> Validated:
    _tree(tmp, case.get("make", []))
    inv = tmp / "i.yaml"
    inv.write_text(INVENTORY + textwrap.indent(case["instances"], "      "))
    return validate_file(str(inv), check_configs=False)


def _line(d: Diagnostic, tmp: Path) -> str:
    return f"{d.format()} [{d.code}]".replace(str(tmp), "<tmp>")


def _shown(content: bytes) -> str:
    return repr(content.decode()) if len(content) <= 64 else f"{len(content)} bytes"


def _documents(dh: DesiredHost) -> tuple[list[str], list[str]]:
    files = [f"{f.host}/{f.instance} {os.path.relpath(f.path, WS)} {f.mode:04o} {f.owner}:{f.group}"
             f" {'seed' if f.seed else 'enforce'} as_user={f.as_user} {_shown(f.content)}"
             for f in dh.files if f.kind is FileKind.DOCUMENT]
    dirs = [f"{d.host}/{d.instance} {d.path} {d.mode:04o} {d.owner}:{d.group} ensure_only={d.ensure_only}"
            f" as_user={d.as_user}" for d in dh.dirs]
    return files, dirs


def test_case_names_are_unique() -> None:
    names = [c["name"] for c in CASES]
    assert len(names) == len(set(names))


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_documents_get_exactly_their_located_diagnostics_or_render(tmp_path: Path, case: dict[str, Any]) -> None:
    tmp = tmp_path.resolve()  # the messages name real paths (a source tree is resolved)
    got = _validate(tmp, case)
    assert [_line(d, tmp) for d in got.diagnostics] == case.get("diagnostics", [])
    if "files" in case:
        assert got.inventory is not None
        files, dirs = _documents(render_host(got.inventory, got.inventory.hosts[0]))
        assert files == case["files"]
        assert dirs == case["dirs"]


def test_a_document_that_grew_over_4_mib_since_it_was_checked_is_refused_not_sent(tmp_path: Path) -> None:
    """Render checks each source's size, then reads at most one byte over the bound: a source that grew in
    between is refused, naming it, and an endless one is never read whole."""
    source = tmp_path / "grown.md"
    with open(source, "wb") as f:
        f.truncate(MAX_BYTES + 1)
    with pytest.raises(OSError) as exc:
        read(DocumentFile("grown.md", str(source), DocumentEntry("grown.md", str(source))))
    assert str(exc.value) == f"{source} grew over 4194304 bytes"


def test_a_source_gone_between_validate_and_render_is_a_located_error_of_the_plan(tmp_path: Path) -> None:
    """`plan` and `apply` validate, then render: a source removed in between is the instance's located error,
    not a crash."""
    tmp = tmp_path.resolve()
    v = _validate(tmp, {"instances": "main: {port: 18789, documents: {NOTES.md: docs/AGENTS.md}}\n"})
    assert v.ok and v.inventory is not None
    (tmp / "docs/AGENTS.md").unlink()
    got = render_hosts(v.inventory, list(v.inventory.hosts), lambda ref: "x")
    assert isinstance(got, Diagnostic)
    assert _line(got, tmp) == ("<tmp>/i.yaml:9:39: error: a/main: document 'NOTES.md': source <tmp>/docs/AGENTS.md "
                               "cannot be read: No such file or directory [document]")
