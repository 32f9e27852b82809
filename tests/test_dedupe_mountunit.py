"""The mount unit name is systemd's own escaping of the path; the unit says what, where and how."""

from __future__ import annotations

import subprocess

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
