"""gateway-exec, the program every gateway unit starts: it reads the env files as data (as the unit's user, which
systemd has already switched to), later files winning, and execs the gateway; a link, or a file it cannot read,
stops the start. Run here with the controller's own sh and awk on the script's exact bytes."""

from __future__ import annotations

import os
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from provisioner.remote.scripts.gateway_exec import gateway_exec_argv, gateway_exec_script
from provisioner.render.files import env_quote

PRINT_ENV = ["/usr/bin/env", "-0"]


@pytest.fixture()
def open_dir() -> Iterator[Path]:
    """A directory another user can reach: pytest's tmp_path is under root's 0700 directory, and so may /tmp be."""
    with tempfile.TemporaryDirectory(prefix="ocp-gwexec-", dir="/var/tmp") as d:
        os.chmod(d, 0o755)
        yield Path(d)


def _run(tmp_path: Path, *files: str) -> subprocess.CompletedProcess[bytes]:
    script = tmp_path / "gateway-exec"
    script.write_bytes(gateway_exec_script())
    argv = gateway_exec_argv(files, PRINT_ENV)
    argv[1] = str(script)
    return subprocess.run(argv, capture_output=True, env={"PATH": "/usr/bin:/bin", "KEPT": "from-unit"},
                          timeout=30)


def _env(r: subprocess.CompletedProcess[bytes]) -> dict[str, str]:
    assert r.returncode == 0, r.stderr
    return dict(v.split("=", 1) for v in r.stdout.decode().split("\0") if v)


def test_each_file_is_read_as_data_and_later_files_win(tmp_path: Path) -> None:
    tok, env = tmp_path / "gateway.auth.env", tmp_path / "gateway.env"
    tok.write_text("OPENCLAW_GATEWAY_TOKEN=from-token-file\nONLY_TOKEN=1\n")
    hostile = "$(touch " + str(tmp_path / "pwned") + ") `id` ; \\ \" '"
    env.write_text(f"OPENCLAW_GATEWAY_TOKEN=from-env-file\nODD={env_quote(hostile)}\n# a comment\nnot a var\n")
    got = _env(_run(tmp_path, str(tok), str(env)))
    assert got["OPENCLAW_GATEWAY_TOKEN"] == "from-env-file"  # gateway.env overrides the token made on the host
    assert got["ONLY_TOKEN"] == "1" and got["KEPT"] == "from-unit"
    assert got["ODD"] == hostile and not (tmp_path / "pwned").exists()
    assert "ocp_all" not in got and "ocp_one" not in got  # its own variables stay its own


def test_a_missing_file_is_skipped_like_environmentfile_dash(tmp_path: Path) -> None:
    env = tmp_path / "gateway.env"
    env.write_text("A=1\n")
    assert _env(_run(tmp_path, str(tmp_path / "gateway.auth.env"), str(env)))["A"] == "1"


@pytest.mark.parametrize("kind", ["link", "fifo", "directory", "unreadable"])
def test_anything_but_a_readable_regular_file_stops_the_start(open_dir: Path, kind: str) -> None:
    target = open_dir / "root-only.env"
    target.write_text("ROOT_ONLY=secret\n")
    env = open_dir / "gateway.env"
    as_nobody: list[str] = []
    if kind == "link":
        env.symlink_to(target)
    elif kind == "fifo":
        os.mkfifo(env)
    elif kind == "directory":
        env.mkdir()
    else:  # root's 0600 file, read by the unit's user
        env.write_text("ROOT_ONLY=secret\n")
        env.chmod(0o600)
        as_nobody = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
    script = open_dir / "gateway-exec"
    script.write_bytes(gateway_exec_script())
    script.chmod(0o755)  # root's, as on a host
    argv = gateway_exec_argv((str(env),), PRINT_ENV)
    argv[1] = str(script)
    r = subprocess.run([*as_nobody, *argv], capture_output=True, timeout=30, env={"PATH": "/usr/bin:/bin"})
    assert r.returncode == 1 and b"ROOT_ONLY" not in r.stdout, (r.returncode, r.stdout, r.stderr)
    assert f"gateway-exec: {env}: not a regular file this user can read; not starting".encode() in r.stderr


def test_without_a_program_it_says_how_to_call_it(tmp_path: Path) -> None:
    r = _run(tmp_path, "/nonexistent")
    assert r.returncode == 0  # the argv always carries `--` and the program: here `env -0`
    script = tmp_path / "gateway-exec"
    r2 = subprocess.run(["/bin/sh", str(script), "/nonexistent"], capture_output=True, timeout=30)
    assert r2.returncode == 2 and b"usage: gateway-exec" in r2.stderr
