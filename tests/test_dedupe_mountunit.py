"""The mount unit name is systemd's own escaping of the path; the unit says what, where and how."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from provisioner.dedupe.mountunit import escape_path, render_mount_unit, unit_name
from provisioner.inventory.model import DedupeMount, DedupeSettings

PATHS = ["/var/lib/openclaw/inbound-claim", "/srv/a.b/-c d/", "//x//y/", "/.hidden/dir", "/mnt/ünï/cödé",
         "/a/b%c/x:y_z", "/"]


@pytest.mark.parametrize("path", PATHS)
def test_escaping_matches_systemd_escape(path: str) -> None:
    want = subprocess.run(["systemd-escape", "--path", path], capture_output=True, text=True, check=True).stdout
    assert escape_path(path) == want.strip()


def test_sshfs_unit() -> None:
    dd = DedupeSettings("/var/lib/openclaw/inbound-claim", mount=DedupeMount(
        "sshfs", "root@nas:/export", ("StrictHostKeyChecking=yes",), "/root/.ssh/id_ed25519"))
    text = render_mount_unit(dd).decode()
    assert unit_name(dd.dir) == "var-lib-openclaw-inbound\\x2dclaim.mount"
    for line in ("What=root@nas:/export", "Where=/var/lib/openclaw/inbound-claim", "Type=fuse.sshfs",
                 "Options=StrictHostKeyChecking=yes,_netdev,allow_other,reconnect,ServerAliveInterval=15,"
                 "IdentityFile=/root/.ssh/id_ed25519", "WantedBy=remote-fs.target"):
        assert line in text.splitlines()


@pytest.mark.parametrize("kind, source", [("nfs", "nas:/export/claim"), ("sshfs", "root@nas:/export"),
                                          ("bind", "/srv/shared/claim")])
def test_every_mount_type_renders_a_unit_systemd_analyze_accepts(kind: str, source: str, tmp_path: Path) -> None:
    """This kernel has no NFS client, so an NFS unit is never mounted here: systemd's own checker is what proves
    it (the unit name matches Where=, every setting parses). The control: a unit whose Where= is not its
    name is refused by the same check."""
    dd = DedupeSettings("/var/lib/openclaw/inbound-claim",
                        mount=DedupeMount(kind, source, ("vers=4.2",) if kind == "nfs" else (), None))
    unit = tmp_path / unit_name(dd.dir)
    unit.write_bytes(render_mount_unit(dd))

    def verify(path: Path) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["systemd-analyze", "verify", "--man=no", str(path)], capture_output=True, text=True,
                              check=False, timeout=60)

    r = verify(unit)
    assert r.returncode == 0 and r.stderr.strip() == "", r.stderr
    wrong = tmp_path / "elsewhere" / unit.name
    wrong.parent.mkdir()
    wrong.write_bytes(unit.read_bytes().replace(b"Where=/var/lib/openclaw/inbound-claim", b"Where=/var/lib/other"))
    r = verify(wrong)
    assert r.returncode != 0 and "Where= setting doesn't match unit name" in r.stderr, r.stderr
