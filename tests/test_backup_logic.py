"""`provision backup` without a host: what the host side's output means, pulling with checksums, retention, and
the script that reads an archive back refusing anything but a regular file (under a real /bin/sh)."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from pathlib import Path

import pytest

from provisioner.apply.backups import backup_command, backup_host, prune
from provisioner.cli.parser import UsageError, parse
from provisioner.remote.scripts.backups import ARCHIVE_WORD, parse_created, read_archive_script
from provisioner.remote.scripts.trust import USER_PREFIX
from provisioner.validate import validate_text
from tests.support.fake_transport import FakeTransport, result

pytestmark = pytest.mark.timeout(30)

INV = """\
version: 1
openclaw: {version: "2026.9.6", install: {prefix: /opt/openclaw}}
hosts:
  gw-1:
    address: 192.0.2.10
    instances:
      main: {port: 18789}
      rescue: {port: 19789}
"""
ARCHIVE = b"\x1f\x8b pretend gzip bytes \x00\xff" * 100
SHA = hashlib.sha256(ARCHIVE).hexdigest()
NAME = "2026-12-03T16-58-04.765+00-00-openclaw-backup.tar.gz"


def created_output(i: int, *, sha: str = SHA, verified: bool = True, name: str = NAME) -> str:
    """What the create script prints for instance i: a frame of user-side lines (OpenClaw's JSON, our line)."""
    doc = json.dumps({"archivePath": f"/x/{name}", "verified": verified, "assets": []}, indent=2)
    body = [*doc.splitlines(), f"{ARCHIVE_WORD} {len(ARCHIVE)} {sha} {name}"]
    return "\n".join([f"@@OCP {i} BEGIN", *(USER_PREFIX + ln for ln in body), f"@@OCP {i} END"]) + "\n"


def inventory():  # type: ignore[no-untyped-def]
    v = validate_text(INV, "inv.yaml")
    assert v.inventory is not None, v.diagnostics
    return v.inventory


def test_each_archive_is_pulled_checked_and_written_0600_in_0700_dirs(tmp_path: Path) -> None:
    inv = inventory()
    fake = FakeTransport("gw-1")
    fake.on("backup create", result(created_output(0) + created_output(1)))
    fake.on("exec cat", _bytes(ARCHIVE))
    out = tmp_path / "out"
    got = backup_host(fake, inv.hosts[0], backup_command(inv), out, None, lambda h, m: None)
    assert [(b.instance, b.ok, b.size, b.sha256) for b in got] == [("main", True, len(ARCHIVE), SHA),
                                                                   ("rescue", True, len(ARCHIVE), SHA)]
    for b in got:
        p = Path(b.path)
        assert p.read_bytes() == ARCHIVE and p.stat().st_mode & 0o777 == 0o600
        assert p.parent == out / "gw-1" / b.instance and p.parent.stat().st_mode & 0o777 == 0o700
        side = json.loads(Path(b.path + ".json").read_text())
        assert (side["host"], side["instance"], side["sha256"], side["size"]) == ("gw-1", b.instance, SHA,
                                                                                   len(ARCHIVE))
    assert (out / "gw-1").stat().st_mode & 0o777 == 0o700
    assert "/opt/openclaw/current/bin/openclaw" in fake.sent[0].script  # the release the host runs now
    assert fake.kinds()[-1] == "other" and "rm -rf" in fake.sent[-1].script  # the host's copies removed


def _bytes(data: bytes):  # type: ignore[no-untyped-def]
    from provisioner.remote.transport import Result

    return Result(0, data, b"")


def test_an_archive_whose_bytes_do_not_match_the_hosts_checksum_is_not_kept(tmp_path: Path) -> None:
    inv = inventory()
    fake = FakeTransport("gw-1")
    fake.on("backup create", result(created_output(0, sha="0" * 64) + created_output(1)))
    fake.on("exec cat", _bytes(ARCHIVE))
    got = backup_host(fake, inv.hosts[0], backup_command(inv), tmp_path, None, lambda h, m: None)
    assert not got[0].ok and "the host said" in got[0].error and got[1].ok
    assert not list((tmp_path / "gw-1" / "main").iterdir())  # neither the archive nor a partial file


def test_an_unverified_or_missing_archive_is_a_failure_of_that_instance_only() -> None:
    assert parse_created("\n".join(created_output(0, verified=False).splitlines()[1:-1]).replace(
        USER_PREFIX, "")).error == "OpenClaw did not report the archive verified"
    assert "no archive was written" in parse_created("Error: state discovery failed\n").error
    bad = created_output(0, name="../../etc/x.tar.gz").splitlines()[1:-1]
    assert "not exactly one plain archive" in parse_created("\n".join(bad).replace(USER_PREFIX, "")).error


def test_keep_leaves_the_newest_archives_of_an_instance_with_their_sidecars(tmp_path: Path) -> None:
    for n in range(4):
        a = tmp_path / f"a{n}.tar.gz"
        a.write_bytes(b"x")
        (tmp_path / f"a{n}.tar.gz.json").write_text("{}")
        os.utime(a, (1000 + n, 1000 + n))
    gone = prune(tmp_path, 2)
    assert sorted(Path(g).name for g in gone) == ["a0.tar.gz", "a1.tar.gz"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a2.tar.gz", "a2.tar.gz.json", "a3.tar.gz",
                                                          "a3.tar.gz.json"]


def test_keep_must_be_at_least_one() -> None:
    with pytest.raises(UsageError):
        parse(["backup", "inv.yaml", "--keep", "0"])
    assert parse(["backup", "inv.yaml", "--keep", "3", "--out", "d"]).keep == 3


@pytest.mark.parametrize("plant", ["link", "fifo", "dir"])
def test_the_read_script_gives_only_a_regular_file(tmp_path: Path, plant: str) -> None:
    root = tmp_path / "host"
    target = root / "home/openclaw/.openclaw-provisioner/backups/main.x/a.tar.gz"
    target.parent.mkdir(parents=True)
    secret = tmp_path / "secret"
    secret.write_text("root-only bytes")
    if plant == "link":
        target.symlink_to(secret)
    elif plant == "fifo":
        os.mkfifo(target)
    else:
        target.mkdir()
    script = read_archive_script("openclaw", "openclaw", "/home/openclaw/.openclaw-provisioner/backups/main.x/"
                                 "a.tar.gz", str(root))
    p = subprocess.run(["/bin/sh", "-s"], input=script.encode(), capture_output=True, timeout=10, check=False)
    assert p.returncode != 0 and b"root-only" not in p.stdout and b"not a regular file" in p.stderr


def _archive(path: Path, manifest: dict[str, object] | None) -> Path:
    import io
    import tarfile

    with tarfile.open(path, "w:gz") as tar:
        data = json.dumps(manifest).encode() if manifest is not None else b"x"
        info = tarfile.TarInfo("2026-12-03T16-58-04.765+00-00-openclaw-backup/"
                               + ("manifest.json" if manifest is not None else "payload/x"))
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    return path


def test_a_restore_reads_the_state_dir_the_archive_recorded(tmp_path: Path) -> None:
    from provisioner.apply.restore import RestoreError, archived_state_dir

    state = {"kind": "state", "sourcePath": "/home/openclaw/.openclaw-main"}
    ws = {"kind": "workspace", "sourcePath": "/srv/ws"}
    assert archived_state_dir(str(_archive(tmp_path / "a.tar.gz", {"assets": [state, ws]}))) == state["sourcePath"]
    for name, manifest in (("none", None), ("two", {"assets": [state, {**state, "sourcePath": "/x"}]}),
                           ("relative", {"assets": [{**state, "sourcePath": "x"}]})):
        with pytest.raises(RestoreError):
            archived_state_dir(str(_archive(tmp_path / f"{name}.tar.gz", manifest)))
    with pytest.raises(RestoreError):
        archived_state_dir(str(tmp_path / "missing.tar.gz"))
