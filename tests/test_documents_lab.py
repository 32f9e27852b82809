"""Issue 15, documents: workspace files on a real systemd lab host running the real OpenClaw 2026.9.6 gateway.

One host for the module; the tests run in order on it. `enforce` documents are kept identical (a hand edit is a
diff in plan), `seed` documents are written once and then belong to the agent, files the inventory does not list
are left alone, and everything in the workspace is written as the service user: what that user plants there (a
link to root's file, a FIFO, a link in place of the workspace) never makes a root step write through it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from provisioner.core.desired import DesiredFile, FileKind
from provisioner.remote.scripts.writes import WriteBatch, write_script
from tests.lab import inventory as lab_inventory
from tests.lab.harness import Lab
from tests.lab.hosts import LabHost
from tests.openclaw_fixtures import OpenClawInstall
from tests.support.cli import Provision
from tests.support.hostile import kind
from tests.support.lab_cli import LAB_ENV, invocation

pytestmark = [pytest.mark.lab, pytest.mark.openclaw]

OC = "/opt/oc/bin/openclaw"
UNIT = "openclaw-gateway-main.service"
WS = "/home/openclaw/.openclaw-main/workspace"
ROOT_FILE = "/root/ocd-root-only.txt"  # root's, 0600: nothing the tool does for the user may reach it
ROOT_DIR = "/srv/ocd-victim"  # root's, 0755


def fleet_doc(docs: dict[str, Any]) -> dict[str, Any]:
    return {
        "version": 1,
        "openclaw": {"version": "2026.9.6", "command": [OC]},
        "defaults": {"service": {"manager": "systemd", "user": "openclaw"},
                     "instance": {"bind": "loopback", "health": {"timeout": 240}, "documents": docs}},
        "hosts": {"gw-1": {"instances": {"main": {"port": 18789}}}},
    }


@dataclass
class Gateway:
    host: LabHost
    workdir: Path
    provision: Provision
    inventory: str

    def plan(self) -> tuple[int, dict[str, Any]]:
        r = self.provision("plan", self.inventory, "--json")
        return r.returncode, json.loads(r.stdout)

    def targets(self) -> dict[str, dict[str, Any]]:
        """Every planned change by target (a plan with refusals exits 1, and still lists them)."""
        _, doc = self.plan()
        assert doc["hosts"], doc
        return {c["target"]: c for h in doc["hosts"] for c in h["changes"]}

    def apply(self) -> Any:
        return self.provision("apply", self.inventory, "--yes")


@pytest.fixture(scope="module")
def gateway(lab: Lab, openclaw_install: OpenClawInstall, tmp_path_factory: pytest.TempPathFactory
            ) -> Iterator[Gateway]:
    host = lab.add_host("systemd", bind_ro={str(openclaw_install.dir): "/opt/oc"})
    workdir = tmp_path_factory.mktemp("documents")
    src = workdir / "docs"
    (src / "base/skills/hello").mkdir(parents=True)
    (src / "base/AGENTS.md").write_text("# Rules of the house\n")
    (src / "base/skills/hello/SKILL.md").write_text("---\nname: hello\n---\nSay hello.\n")
    (src / "IDENTITY.md").write_text("# Identity\nName: (the agent fills this in)\n")
    docs = {".": "docs/base", "IDENTITY.md": {"source": "docs/IDENTITY.md", "mode": "seed", "file_mode": "0600"}}
    provision = Provision(workdir, lab=lab, env=LAB_ENV, timeout=600)
    inv = str(lab_inventory.write(workdir / "fleet.yaml", lab, fleet_doc(docs), {"gw-1": host}))
    host.run(f"printf 'root only\\n' > {ROOT_FILE} && chmod 0600 {ROOT_FILE} && install -d -m 0755 {ROOT_DIR}")
    try:
        r = provision("apply", inv, "--yes")
        assert r.returncode == 0, r.stdout + r.stderr
        yield Gateway(host, workdir, provision, inv)
    finally:
        lab.remove_host(host)


def _root_untouched(host: LabHost) -> None:
    assert host.read_file(ROOT_FILE) == b"root only\n"
    assert kind(host, ROOT_FILE)[:3] == ("regular file", "root", "600")
    assert host.run(["ls", "-A", ROOT_DIR]).stdout == ""


def test_documents_land_with_the_users_owner_and_mode_and_plan_is_then_clean(gateway: Gateway) -> None:
    h = gateway.host
    assert h.read_file(f"{WS}/AGENTS.md") == b"# Rules of the house\n"
    assert kind(h, f"{WS}/AGENTS.md")[:3] == ("regular file", "openclaw", "644")
    assert kind(h, f"{WS}/skills/hello/SKILL.md")[:3] == ("regular file", "openclaw", "644")
    assert kind(h, f"{WS}/skills/hello")[:2] == ("directory", "openclaw")
    assert kind(h, f"{WS}/IDENTITY.md")[:3] == ("regular file", "openclaw", "600")
    assert gateway.plan()[0] == 0
    # the running gateway reads that workspace: its config names it, and it is up
    assert h.run(["systemctl", "is-active", UNIT]).stdout.strip() == "active"


def test_enforced_edit_shows_seeded_edit_does_not_and_unlisted_files_survive(gateway: Gateway) -> None:
    h = gateway.host
    h.run(f"printf 'hand edit\\n' >> {WS}/AGENTS.md", user="openclaw")
    h.run(f"printf 'Name: Ada\\n' > {WS}/IDENTITY.md", user="openclaw")
    h.run(f"printf 'notes\\n' > {WS}/MINE.md && mkdir -p {WS}/skills/mine && : > {WS}/skills/mine/x", user="openclaw")
    before = set(h.run(["find", WS, "-not", "-path", "*/.ocp-prev*"]).stdout.split())
    running = invocation(h, UNIT)
    changes = gateway.targets()
    assert f"{WS}/AGENTS.md" in changes and "-hand edit" in changes[f"{WS}/AGENTS.md"]["diff"]
    assert changes[f"{WS}/AGENTS.md"]["cause"] == "drift"
    assert not any(t.startswith(f"{WS}/") and t != f"{WS}/AGENTS.md" for t in changes), changes
    r = gateway.apply()
    assert r.returncode == 0, r.stdout + r.stderr
    assert h.read_file(f"{WS}/AGENTS.md") == b"# Rules of the house\n"
    assert h.read_file(f"{WS}/IDENTITY.md") == b"Name: Ada\n"
    assert h.read_file(f"{WS}/MINE.md") == b"notes\n"
    after = set(h.run(["find", WS, "-not", "-path", "*/.ocp-prev*"]).stdout.split())
    assert before <= after, before - after
    # a document is no file of the gateway's: it reads AGENTS.md at each session's start, so it did not restart
    assert invocation(h, UNIT) == running
    assert gateway.plan()[0] == 0


def test_a_planted_link_or_fifo_where_a_document_goes_is_refused_and_never_followed(gateway: Gateway) -> None:
    h = gateway.host
    h.run(f"printf 'edit\\n' >> {WS}/AGENTS.md && rm -f {WS}/AGENTS.md && ln -s {ROOT_FILE} {WS}/AGENTS.md && "
          f"rm -rf {WS}/skills/hello && mkfifo {WS}/skills/hello", user="openclaw")
    changes = gateway.targets()
    assert changes[f"{WS}/AGENTS.md"]["action"] == "refuse", changes
    assert changes[f"{WS}/skills/hello"]["action"] == "refuse", changes
    r = gateway.apply()
    assert r.returncode != 0 and "refused" in (r.stdout + r.stderr)
    _root_untouched(h)
    # past the plan (a swap in the instant between the re-check and the write): the write runs as the user, so
    # it replaces the link itself and never writes through it into root's file
    doc = DesiredFile("gw-1", "main", f"{WS}/AGENTS.md", b"through?\n", 0o644, "openclaw", "openclaw",
                      FileKind.DOCUMENT, as_user=True)
    out = h.run(["/bin/sh", "-s"], input=write_script(WriteBatch(files=[doc], dirs=[], run_id="race")), check=False)
    assert "WROTE" in out.stdout, out.stdout + out.stderr
    _root_untouched(h)
    assert kind(h, f"{WS}/AGENTS.md")[:2] == ("regular file", "openclaw")
    h.run(f"rm -f {WS}/skills/hello && mkdir {WS}/skills/hello", user="openclaw")
    r = gateway.apply()
    assert r.returncode == 0, r.stdout + r.stderr
    assert gateway.plan()[0] == 0


def test_a_workspace_replaced_by_a_link_to_roots_directory_is_refused(gateway: Gateway) -> None:
    h = gateway.host
    h.run(f"mv {WS} {WS}.real && ln -s {ROOT_DIR} {WS}", user="openclaw")
    try:
        changes = gateway.targets()
        assert changes[WS]["action"] == "refuse", changes
        r = gateway.apply()
        assert r.returncode != 0
        _root_untouched(h)
        # and the write script itself, as the user, cannot put a file through that link into root's directory
        doc = DesiredFile("gw-1", "main", f"{WS}/AGENTS.md", b"through?\n", 0o644, "openclaw", "openclaw",
                          FileKind.DOCUMENT, as_user=True)
        out = h.run(["/bin/sh", "-s"], input=write_script(WriteBatch(files=[doc], dirs=[], run_id="race2")),
                    check=False)
        assert "WROTE" not in out.stdout
        _root_untouched(h)
    finally:
        h.run(f"rm -f {WS} && mv {WS}.real {WS}", user="openclaw")
    assert gateway.apply().returncode == 0
