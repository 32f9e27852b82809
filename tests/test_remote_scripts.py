"""The host-side scripts run by a real /bin/sh inside a directory standing for a host's /.

What these prove does not depend on SSH: a script cut short anywhere (the controller killed while sending it)
runs nothing; a complete write replaces every file atomically and leaves no temp file behind.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
from pathlib import Path

import pytest

from provisioner.core.desired import DesiredDir, DesiredFile, FileKind
from provisioner.remote.connect import whole
from provisioner.remote.scripts.probe import PREV_DIR, ProbeRequest, parse_probe, probe_script
from provisioner.remote.scripts.writes import TMP_SUFFIX, WriteBatch, write_script

OLD = {"/etc/ocp/a.json": b'{"old": 1}\n', "/etc/ocp/env": b"TOKEN=old\n"}
NEW = {"/etc/ocp/a.json": b'{"new": 2}\n', "/etc/ocp/env": b"TOKEN=new\n", "/etc/ocp/added.service": b"[Unit]\n"}


def _files() -> list[DesiredFile]:
    return [DesiredFile("h", "main", p, c, 0o600, "root", "root", FileKind.CONFIG) for p, c in NEW.items()]


def _host(tmp_path: Path) -> Path:
    root = tmp_path / "host"
    for path, content in OLD.items():
        target = root / path.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content)
    return root


def _sh(script: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(["/bin/sh", "-s"], input=script.encode(), capture_output=True, timeout=30, check=False)


def _state(root: Path) -> dict[str, bytes | None]:
    return {p: (root / p.lstrip("/")).read_bytes() if (root / p.lstrip("/")).exists() else None for p in NEW}


def _temps(root: Path) -> list[str]:
    return [str(p) for p in root.rglob(f"*{TMP_SUFFIX}*")]


def test_a_complete_write_replaces_every_file_and_keeps_the_old_ones(tmp_path: Path) -> None:
    root = _host(tmp_path)
    res = _sh(whole(write_script(WriteBatch(_files(), (), run_id="t1"), str(root), chown=False)))
    assert res.returncode == 0, res.stderr
    assert _state(root) == NEW
    assert _temps(root) == []
    prev = root / PREV_DIR.lstrip("/") / "etc/ocp"
    assert (prev / "a.json").read_bytes() == OLD["/etc/ocp/a.json"]
    assert (prev / "added.service.absent").exists()
    assert oct(os.stat(root / "etc/ocp/env").st_mode & 0o777) == "0o600"


def _cuts(script: str) -> list[int]:
    # every line start (a cut between two whole commands) and points inside lines, including heredoc payloads
    starts = [i + 1 for i, c in enumerate(script) if c == "\n"][:-1]
    return sorted(set(starts + list(range(1, len(script) - 1, max(len(script) // 40, 1)))))


@pytest.mark.parametrize("wrapped", [True, False], ids=["whole", "bare"])
def test_a_script_cut_short_anywhere_runs_nothing(tmp_path: Path, wrapped: bool) -> None:
    script = write_script(WriteBatch(_files(), (), run_id="t2"), str(_host(tmp_path)), chown=False)
    text = whole(script) if wrapped else script
    cuts = _cuts(text)
    assert len(cuts) > 60
    changed = []
    for n, cut in enumerate(cuts):
        root = _host(tmp_path / f"cut{n}")
        res = _sh(text[:cut].replace(str(tmp_path / "host"), str(root)))
        after = _state(root)
        if after != {p: OLD.get(p) for p in NEW} or _temps(root) or (root / "var").exists():
            changed.append(cut)
        elif wrapped:
            assert res.returncode != 0
    if wrapped:
        assert changed == [], f"a cut script changed the host at offsets {changed[:10]}"
    else:
        # the reason for the brace group: the same script, unwrapped, acts on its first half
        assert changed, "expected an unwrapped cut script to run part of itself"


def test_a_write_whose_controller_is_gone_still_finishes_whole(tmp_path: Path) -> None:
    # sshd closes a session's stdout when the controller dies; the script must neither die at its next echo
    # (SIGPIPE, skipping its EXIT trap and leaving temp files) nor stop between two renames
    root = _host(tmp_path)
    script = whole(write_script(WriteBatch(_files(), (), run_id="t3"), str(root), chown=False))
    read_end, write_end = os.pipe()
    os.close(read_end)  # nobody will ever read what the script prints
    try:
        res = subprocess.run(["/bin/sh", "-s"], input=script.encode(), stdout=write_end, stderr=subprocess.DEVNULL,
                             timeout=30, check=False)
    finally:
        os.close(write_end)
    assert res.returncode != -13, "killed by SIGPIPE"
    assert _state(root) == NEW
    assert _temps(root) == []


def test_missing_parents_of_a_directory_are_0755_and_the_directory_gets_its_own_mode(tmp_path: Path) -> None:
    root = tmp_path / "host"
    root.mkdir()
    d = DesiredDir("h", "main", "/srv/gw/main", 0o700, "root", "root")
    f = DesiredFile("h", "main", "/srv/gw/main/cfg/openclaw.json", b"{}\n", 0o600, "root", "root", FileKind.CONFIG)
    res = _sh(whole(write_script(WriteBatch([f], [d], run_id="t4"), str(root), chown=False)))
    assert res.returncode == 0, res.stderr
    modes = {p: oct(os.stat(root / p).st_mode & 0o777) for p in ("srv", "srv/gw", "srv/gw/main", "srv/gw/main/cfg")}
    assert modes == {"srv": "0o755", "srv/gw": "0o755", "srv/gw/main": "0o700", "srv/gw/main/cfg": "0o755"}
    assert oct(os.stat(root / "srv/gw/main/cfg/openclaw.json").st_mode & 0o777) == "0o600"


@pytest.mark.parametrize("name", ["back\\slash \\n x", "plain name", "two\\\\slashes", "tab\there"])
def test_the_probe_finds_files_whatever_their_names(tmp_path: Path, name: str) -> None:
    root = tmp_path / "host"
    (root / "srv").mkdir(parents=True)
    (root / "srv" / name).write_bytes(b"content\n")
    req = ProbeRequest(files=(f"/srv/{name}",), systemd=False)
    res = _sh(whole(probe_script(req, str(root))))
    seen = parse_probe("h", req, res.stdout.decode(), str(root)).files[f"/srv/{name}"]
    assert seen.exists and seen.sha256 == hashlib.sha256(b"content\n").hexdigest()
