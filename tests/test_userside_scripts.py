"""The user-side host scripts, run by a real /bin/sh (dash) on this machine, as the system user `nobody`.

The gateway's service user is hostile (see provisioner/remote/scripts/trust.py): these prove that the OpenClaw CLI
runs as that user from the start with its env file read as data (shell code in it never runs, its size is
capped, its values decode exactly as the renderer wrote them), that what the user side prints cannot forge
the root script's frames, and that `dedupe verify` acts inside the shared directory only as the service user
and refuses a directory that is a symbolic link. Needs root (setpriv to `nobody`), as the suite runs.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from provisioner.dedupe.verify import verify
from provisioner.inventory.model import DedupeSettings, Host, Instance, ServiceSettings, SSHSettings
from provisioner.remote.command import Command
from provisioner.remote.connect import whole
from provisioner.remote.scripts import dedupe as scripts
from provisioner.remote.scripts.openclaw_cli import (
    ENV_READ_CAP,
    config_schema_script,
    per_instance_script,
    split_outputs,
)
from provisioner.remote.scripts.trust import USER_PREFIX, root_output, user_output
from provisioner.remote.transport import Result, Sink
from provisioner.render.files import env_quote

USER, GROUP = "nobody", "nogroup"
NOBODY_UID = 65534

# The stand-in OpenClaw CLI: prints who ran it, with which argv and environment, as one JSON line. An env file
# can make it try to forge the root script's frames (FORGE=1), or print a truncated last line (NO_NEWLINE=1).
FAKE_CLI = """#!/usr/bin/python3
import json, os, sys
doc = {"argv": sys.argv[1:], "uid": os.getuid(), "gid": os.getgid(), "env": dict(os.environ)}
if sys.argv[1:3] == ["config", "schema"]:
    home = os.environ["HOME"]
    open(os.path.join(home, "written-by-the-cli"), "w").close()
    doc.update(type="object", home_uid=os.stat(home).st_uid)
if os.environ.get("FORGE"):
    print("@@OCP 1 BEGIN")
    print(json.dumps({"forged": True}))
    print("@@OCP 1 END")
    print("@@OCP 0 END")
    print("\\r@@OCP 1 BEGIN")
print(json.dumps(doc), end="" if os.environ.get("NO_NEWLINE") else "\\n")
"""


@pytest.fixture
def world() -> Iterator[Path]:
    """A directory `nobody` can reach (pytest's tmp_path is root's alone): the fake CLI, homes, dedupe dirs."""
    base = Path(tempfile.mkdtemp(prefix="ocp-userside-"))
    base.chmod(0o755)
    cli = base / "openclaw"
    cli.write_text(FAKE_CLI)
    cli.chmod(0o755)
    try:
        yield base
    finally:
        shutil.rmtree(base)


def _owned(path: Path, mode: int = 0o700) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    os.chown(path, NOBODY_UID, NOBODY_UID)
    path.chmod(mode)
    return path


def _sh(script: str, timeout: float = 60) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(["/bin/sh", "-s"], input=whole(script).encode(), capture_output=True, timeout=timeout,
                          check=False)


def _instance(name: str, home: str, profile: str = "default") -> Instance:
    sd = f"{home}/.openclaw-{name}"
    return Instance(host="h", name=name, profile=profile, port=18789, bind="loopback", state_dir=sd,
                    config_path=f"{sd}/openclaw.json", workspace=f"{sd}/workspace", env_file=f"{sd}/gateway.env",
                    unit=f"openclaw-{name}.service", enabled=True, config={}, env={}, secrets={},
                    health_path="/readyz", health_timeout=60.0, dedupe=False,
                    service=ServiceSettings("systemd", USER, GROUP, home), doc_path=("hosts", "h", "instances", name))


def _env_file(root: Path, inst: Instance, content: bytes) -> Path:
    """The instance's env file, written as the service user would have it (0600, its own), under `root`."""
    f = root / inst.env_file.lstrip("/")
    _owned(f.parent)
    f.write_bytes(content)
    os.chown(f, NOBODY_UID, NOBODY_UID)
    f.chmod(0o600)
    return f


def _status(world: Path, insts: list[Instance], root: str = "") -> tuple[subprocess.CompletedProcess[bytes],
                                                                          list[dict[str, Any]]]:
    """Run `gateway status` for the instances through the fake CLI; each instance's JSON document."""
    script = per_instance_script(insts, [str(world / "openclaw")], ["gateway", "status", "--json"], root)
    res = _sh(script)
    docs = []
    for text in split_outputs(res.stdout.decode("utf-8", "replace"), len(insts)):
        lines = [line for line in text.split("\n") if line.startswith("{")]
        docs.append(json.loads(lines[-1]) if lines else {})
    return res, docs


# --- the OpenClaw CLI as the service user, its env file as data ---


VALUES = {
    "PLAIN": "plain",
    "QUOTES": "dq\" sq' both\"'",
    "BACKSLASHES": "a\\b \\\\ end\\",
    "DOLLARS": "$HOME ${PATH} $(id) $$ \\$",
    "BACKTICKS": "`id` \\`x\\`",
    "MIXED": "\\\"$`'\\'",
    "MULTILINE": "line one\nline two\\\n\"three\"",
    "EMPTY": "",
    "SPACES": "  lead and trail  ",
    "UNICODE": "pässwörd ✓",
    "CONTROL": "bell\x07 esc\x1b del\x7f soh\x01 stx\x02",
    "OPENCLAW_GATEWAY_TOKEN": "s3cr3t-token-'\"$`\\-value",
}


def test_env_values_decode_exactly_as_the_renderer_encodes_them(world: Path) -> None:
    home = _owned(world / "home")
    inst = _instance("main", str(home))
    text = "# Managed by openclaw-provisioner\n" + "".join(f"{k}={env_quote(v)}\n" for k, v in VALUES.items())
    # the forms systemd also reads: single quotes (literal) and bare values (`\x` is x); blanks and comments
    text += "SINGLE='it is $(literal) `too` \\ here'\nBARE=bare\\ value\\\\x  \n\n   ; a comment\n  INDENTED=\"yes\"\n"
    _env_file(Path("/"), inst, text.encode())
    res, [doc] = _status(world, [inst])
    assert res.returncode == 0, res.stderr
    env = doc["env"]
    assert {k: env.get(k) for k in VALUES} == VALUES
    assert env["SINGLE"] == "it is $(literal) `too` \\ here"
    assert env["BARE"] == "bare value\\x"
    assert env["INDENTED"] == "yes"
    assert doc["uid"] == NOBODY_UID and doc["gid"] == NOBODY_UID
    assert doc["argv"] == ["gateway", "status", "--json"]


def test_the_instance_variables_win_over_the_env_file_and_config_is_readonly(world: Path) -> None:
    home = _owned(world / "home")
    inst = _instance("rescue", str(home), profile="rescue")
    _env_file(Path("/"), inst, b'HOME="/root"\nOPENCLAW_CONFIG_READONLY=0\nOPENCLAW_STATE_DIR=/etc\n'
                               b"o=/etc/shadow\nrc=0\nR=/etc\nPATH=/nonexistent\nLANG=C.UTF-8\n")
    res, [doc] = _status(world, [inst])
    assert res.returncode == 0, res.stderr
    env = doc["env"]
    assert env["HOME"] == str(home)
    assert env["OPENCLAW_PROFILE"] == "rescue"
    assert env["OPENCLAW_STATE_DIR"] == inst.state_dir
    assert env["OPENCLAW_CONFIG_PATH"] == inst.config_path
    assert env["OPENCLAW_GATEWAY_PORT"] == "18789"
    assert env["OPENCLAW_CONFIG_READONLY"] == "1"
    assert env["LANG"] == "C.UTF-8" and env["PATH"] == "/nonexistent"  # the file's own variables are the CLI's
    assert doc["argv"] == ["--profile", "rescue", "gateway", "status", "--json"]


HOSTILE = [
    "A=$(touch {m}/subst)",
    "B=`touch {m}/backtick`",
    'C="$(touch {m}/subst-dq)"',
    'D="`touch {m}/backtick-dq`"',
    "E=1; touch {m}/semicolon",
    "F='x'; touch {m}/after-quote",
    'G="x" && touch {m}/and',
    "touch {m}/bare-command",
    "id > {m}/pwned",
    ". {m}/sourced",
    "H=$(id > {m}/pwned2)",
    "J=x\\",
    "touch {m}/after-continuation",
    "K=\"a\\",
    "$(touch {m}/in-continuation)\"",
    "export L=1; touch {m}/export",
    "M N=1",
    "1X=2",
    "O-P=3",
    'I="unterminated $(touch {m}/unterminated)',  # last: an open quote takes every line up to the next quote
]


@pytest.mark.parametrize("mode", ["as-nobody", "stand-in-root"])
def test_shell_code_in_the_env_file_never_runs(world: Path, mode: str) -> None:
    # a stand-in host runs its user side as the caller (root here): the file is data there too
    marks = _owned(world / "marks", 0o777)
    root = world / "standin" if mode == "stand-in-root" else Path("/")
    home = "/home/gw" if mode == "stand-in-root" else str(_owned(world / "home"))
    inst = _instance("main", home)
    (marks / "sourced.sh").write_text(f"touch {marks}/sourced-ran\n")
    text = "\n".join(line.format(m=marks) for line in HOSTILE) + "\n"
    _env_file(root, inst, text.encode())
    res, [doc] = _status(world, [inst], "" if root == Path("/") else str(root))
    assert res.returncode == 0, res.stderr
    assert sorted(p.name for p in marks.iterdir()) == ["sourced.sh"], "shell code in the env file ran"
    env = doc["env"]
    assert env["A"] == f"$(touch {marks}/subst)"
    assert env["B"] == f"`touch {marks}/backtick`"
    assert env["C"] == f"$(touch {marks}/subst-dq)"
    assert env["E"] == f"1; touch {marks}/semicolon"
    assert env["H"] == f"$(id > {marks}/pwned2)"
    assert env["J"] == "x"
    assert env["K"] == f"a$(touch {marks}/in-continuation)"  # backslash-newline joins, as in sh and systemd
    for absent in ("F", "G", "I", "L", "M", "1X", "O-P"):
        assert absent not in env, absent  # junk after a closing quote, an open quote, not NAME=VALUE: skipped
    assert doc["uid"] == (0 if mode == "stand-in-root" else NOBODY_UID)


def test_a_linked_or_fifo_env_file_reads_nothing_root_has_and_does_not_hang(world: Path) -> None:
    home = _owned(world / "home")
    inst = _instance("main", str(home))
    secret = world / "root-only.env"
    secret.write_text("LEAK=root-secret\n")
    secret.chmod(0o600)
    env = _env_file(Path("/"), inst, b"")
    env.unlink()
    env.symlink_to(secret)  # the user points its env file at a file only root may read
    res, [doc] = _status(world, [inst])
    assert res.returncode == 0, res.stderr
    assert "LEAK" not in doc["env"] and doc["uid"] == NOBODY_UID
    env.unlink()
    os.mkfifo(env)  # nobody will ever write to it
    start = time.monotonic()
    res, [doc] = _status(world, [inst])
    assert time.monotonic() - start < 20 and doc["env"]["HOME"] == str(home)


def test_the_env_file_is_read_up_to_one_mebibyte(world: Path) -> None:
    home = _owned(world / "home")
    inst = _instance("main", str(home))
    big = b"x" * (2 << 20)
    before = b"EARLY=1\n"
    at_cap = b"ALMOST=" + b"y" * (ENV_READ_CAP - len(before) - len(b"ALMOST=") - len(b"\nLATE=1\n")) + b"\n"
    _env_file(Path("/"), inst, before + b"BIG=" + big + b"\nLATE=1\n")
    start = time.monotonic()
    res, [doc] = _status(world, [inst])
    assert res.returncode == 0, res.stderr
    assert time.monotonic() - start < 20
    assert doc["env"]["EARLY"] == "1"
    assert "BIG" not in doc["env"] and "LATE" not in doc["env"]  # cut at 1 MiB; a 2 MiB value is not taken
    # what lies within the first MiB is read, what lies past it is not
    _env_file(Path("/"), inst, before + at_cap + b"LATE=1\nPAST=1\n")
    res, [doc] = _status(world, [inst])
    assert doc["env"]["EARLY"] == "1" and "ALMOST" not in doc["env"]  # longer than one variable may be
    assert doc["env"]["LATE"] == "1" and "PAST" not in doc["env"]


def test_escape_heavy_lines_cost_linear_time(world: Path) -> None:
    home = _owned(world / "home")
    inst = _instance("main", str(home))
    n = 60000
    content = b'A="' + b'\\"' * n + b'"\nB=' + b"\\\\" * n + b"\nC='x'\n"
    _env_file(Path("/"), inst, content)
    start = time.monotonic()
    res, [doc] = _status(world, [inst])
    assert res.returncode == 0, res.stderr
    assert time.monotonic() - start < 20
    assert doc["env"]["A"] == '"' * n and doc["env"]["B"] == "\\" * n and doc["env"]["C"] == "x"


def test_a_secret_travels_only_in_the_environment(world: Path) -> None:
    home = _owned(world / "home")
    inst = _instance("main", str(home))
    secret = "tok-" + os.urandom(8).hex()
    _env_file(Path("/"), inst, f"OPENCLAW_GATEWAY_TOKEN={env_quote(secret)}\n".encode())
    script = per_instance_script([inst], [str(world / "openclaw")], ["gateway", "status", "--json"])
    assert secret not in script  # the root script never holds it: the user side reads the file
    res, [doc] = _status(world, [inst])
    assert doc["env"]["OPENCLAW_GATEWAY_TOKEN"] == secret
    assert not any(secret in a for a in doc["argv"])


def test_what_an_instance_prints_cannot_forge_the_frames(world: Path) -> None:
    home = _owned(world / "home")
    a, b = _instance("main", str(home)), _instance("rescue", str(home), profile="rescue")
    _env_file(Path("/"), a, b"FORGE=1\nNO_NEWLINE=1\n")
    _env_file(Path("/"), b, b"")
    res, docs = _status(world, [a, b])
    assert res.returncode == 0, res.stderr
    out = res.stdout.decode()
    # every frame line is the root script's own; everything the user side printed arrives prefixed
    assert [line for line in out.split("\n") if line.startswith("@@OCP")] == [
        "@@OCP 0 BEGIN", "@@OCP 0 END", "@@OCP 1 BEGIN", "@@OCP 1 END"]
    assert all(line.startswith(USER_PREFIX) for line in out.split("\n")
               if line and not line.startswith("@@OCP"))
    assert "forged" not in docs[1] and docs[1]["env"]["OPENCLAW_PROFILE"] == "rescue"
    assert docs[0]["env"]["OPENCLAW_PROFILE"] == "default"
    first = split_outputs(out, 2)[0]
    assert "@@OCP 1 BEGIN" in first and first.endswith("}")  # the forgery is just text of instance 0


def test_split_outputs_reads_only_user_lines_between_root_markers() -> None:
    u = USER_PREFIX
    text = "\n".join([
        "noise before", "@@OCP 0 BEGIN", f"{u}one", f"{u}@@OCP 0 END", "as nobody: stderr-ish", f"{u}two", "",
        "@@OCP 0 END", "@@OCP 1 BEGIN", f"{u}@@OCP 1 END", f"{u}three", "@@OCP 7 BEGIN", f"{u}lost", "@@OCP 1 END",
        "@@OCP 1 BEGIN", f"{u}four", "", "@@OCP 1 END", "@@OCP \u00b2 END", ""])
    assert split_outputs(text, 2) == ["one\n@@OCP 0 END\ntwo", "four"]


def test_a_user_that_does_not_exist_gets_no_status_and_root_runs_nothing(world: Path) -> None:
    home = _owned(world / "home")
    inst = _instance("main", str(home))
    inst = replace(inst, service=ServiceSettings("systemd", "ocp-no-such-user", GROUP, str(home)))
    _env_file(Path("/"), inst, b"A=1\n")
    res, [doc] = _status(world, [inst])
    assert doc == {}
    assert "as ocp-no-such-user:" in res.stderr.decode()


# --- `openclaw config schema` as the service user ---


@pytest.mark.parametrize("user", [USER, "ocp-no-such-user"])
def test_the_config_schema_runs_as_the_service_user_in_a_home_it_owns(world: Path, user: str) -> None:
    res = _sh(config_schema_script([str(world / "openclaw")], user, GROUP))
    assert res.returncode == 0, res.stderr
    out = res.stdout.decode()
    assert root_output(out).strip() == ""  # everything came from the user side
    text = user_output(out)
    doc = json.loads(text[text.index("{"):])
    assert doc["uid"] == NOBODY_UID and doc["home_uid"] == NOBODY_UID  # nobody too when the user is missing
    assert doc["argv"] == ["config", "schema"] and doc["env"]["OPENCLAW_CONFIG_READONLY"] == "1"
    assert doc["env"]["OPENCLAW_STATE_DIR"] == doc["env"]["HOME"] + "/state"
    assert not os.path.exists(doc["env"]["HOME"])  # the throwaway home is gone


# --- dedupe verify: only the service user acts inside the shared directory ---


class _Shell:
    """A host that is this machine itself (R=''): the scripts run by /bin/sh as they would over SSH."""

    def __init__(self, host: str) -> None:
        self.host = host

    def run(self, cmd: Command, *, stdin: bytes | None = None, timeout: float | None = None,
            sink: Sink | None = None) -> Result:
        p = subprocess.run(["/bin/sh", "-c", cmd.shell()], input=stdin or b"", capture_output=True,
                           timeout=timeout, check=False)
        if sink is not None:
            sink.write(p.stdout)
            return Result(p.returncode, b"", p.stderr)
        return Result(p.returncode, p.stdout, p.stderr)


def _hosts(n: int, user: str = USER) -> list[Host]:
    return [Host(f"gw-{i}", None, "ssh", None, SSHSettings(), ServiceSettings("systemd", user, GROUP, "/nonexistent"),
                 (), (), ("hosts", f"gw-{i}")) for i in range(1, n + 1)]


def _each(hosts: list[Host], fn: Callable[[Host], Any]) -> dict[str, Any]:
    def one(h: Host) -> Any:
        try:
            return fn(h)
        except Exception as exc:  # reported per host, as the fleet does
            return exc
    with ThreadPoolExecutor(len(hosts) or 1) as pool:
        return dict(zip([h.name for h in hosts], pool.map(one, hosts), strict=True))


def _verify(d: Path, hosts: list[Host]) -> Any:
    inv: Any = SimpleNamespace(dedupe=DedupeSettings(dir=str(d)))
    return verify(inv, hosts, lambda h: _Shell(h.name), _each)


def _tree(p: Path) -> list[tuple[str, int, int, int]]:
    return sorted((str(q), q.lstat().st_uid, q.lstat().st_gid, stat.S_IMODE(q.lstat().st_mode)) for q in
                  [p, *p.rglob("*")])


def test_dedupe_facts_report_a_symlinked_directory_and_verify_refuses_it(world: Path) -> None:
    victim = world / "etc"
    victim.mkdir(mode=0o755)
    d = world / "claims"
    d.symlink_to(victim)
    res = _sh(scripts.facts_script(str(d), scripts.Who(USER, GROUP)))
    assert res.returncode == 0, res.stderr
    assert root_output(res.stdout.decode()).strip() == f"DIR link {victim}"
    before = _tree(victim)
    v = _verify(d, _hosts(2))
    assert not v.ok
    [check] = v.checks
    assert check.name == "directory exists" and not check.ok and check.hosts == ["gw-1", "gw-2"]
    assert f"{d} is a symbolic link to {victim} on gw-1; refusing to use it" in check.detail
    assert _tree(victim) == before and list(victim.iterdir()) == []


def test_a_dangling_link_and_a_file_are_refused_too(world: Path) -> None:
    d = world / "claims"
    d.symlink_to(world / "nowhere\nDIR 1")  # a target that tries to print a line of its own
    [check] = _verify(d, _hosts(1)).checks
    assert not check.ok and f"{d} is a symbolic link to {world}/nowhere?DIR 1 on gw-1" in check.detail
    assert not (world / "nowhere\nDIR 1").exists()
    d.unlink()
    d.write_text("")
    [check] = _verify(d, _hosts(1)).checks
    assert not check.ok and check.detail == f"{d} is a regular empty file on gw-1, not a directory; refusing to use it"


def test_dedupe_steps_run_as_the_service_user(world: Path) -> None:
    d = _owned(world / "claims", 0o755)
    who = scripts.Who(USER, GROUP)
    path = f"{d}/.ocp-verify-x"
    res = _sh(scripts.write_script(path, "n0nce", who))
    assert res.returncode == 0, res.stderr
    assert (os.stat(path).st_uid, os.stat(path).st_gid) == (NOBODY_UID, NOBODY_UID)
    assert user_output(_sh(scripts.read_script(path, who)).stdout.decode()).strip() == "READ n0nce"
    race = f"{d}/.ocp-race-x"
    at = int(time.time() * 1000)
    assert user_output(_sh(scripts.race_script(race, "gw-1", at, who)).stdout.decode()).strip() == "WON"
    assert user_output(_sh(scripts.race_script(race, "gw-2", at, who)).stdout.decode()).strip() == "LOST"
    assert os.stat(race).st_uid == NOBODY_UID
    assert user_output(_sh(scripts.remove_script(path, race, who=who)).stdout.decode()).strip() == "REMOVED"
    assert user_output(_sh(scripts.wait_gone_script(race, 1, who)).stdout.decode()).startswith("GONE ")
    assert list(d.iterdir()) == []


def test_verify_passes_on_a_directory_the_service_user_owns_and_leaves_nothing(world: Path) -> None:
    d = _owned(world / "claims", 0o755)
    v = _verify(d, _hosts(2))
    assert v.ok, [(c.name, c.detail) for c in v.checks]
    assert [c.name for c in v.checks] == ["directory exists", "one shared store", "writable by the service user",
                                          "exclusive-create race", "deletion visible elsewhere", "free space"]
    assert list(d.iterdir()) == []


def test_root_writes_nothing_in_a_directory_the_service_user_cannot_write(world: Path) -> None:
    d = world / "claims"
    d.mkdir(mode=0o755)  # root's own: the service user cannot write, and root must not do it instead
    v = _verify(d, _hosts(2))
    assert not v.ok
    by = {c.name: c for c in v.checks}
    assert not by["one shared store"].ok and f"cannot write a nonce in {d} on gw-1 as nobody" in \
        by["one shared store"].detail
    assert not by["writable by the service user"].ok
    assert "exclusive-create race" not in by
    assert list(d.iterdir()) == []


def test_a_service_user_that_does_not_exist_yet_is_stood_in_for_by_nobody(world: Path) -> None:
    d = _owned(world / "claims", 0o755)
    v = _verify(d, _hosts(2, user="ocp-no-such-user"))
    by = {c.name: c for c in v.checks}
    assert by["one shared store"].ok and by["exclusive-create race"].ok
    assert by["writable by the service user"].warning
    assert list(d.iterdir()) == []
