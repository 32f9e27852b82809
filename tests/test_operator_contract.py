"""OpenClaw's operator contract without a lab: the read-only switch in every rendered service, the minimal PATH its
service audit asks for, and the host script that reads the switch back out of a running gateway's environment."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from provisioner.remote.scripts.gateway_env import parse_readonly, readonly_script
from provisioner.render.files import render_inventory
from provisioner.validate import validate_file
from tests.support.cli import REPO, Provision

MINIMAL_PATH = "Environment=PATH=/usr/local/bin:/usr/bin:/bin"


def _rendered(path: Path) -> dict[str, bytes]:
    v = validate_file(str(path))
    assert v.ok and v.inventory is not None, v.diagnostics
    return {f.path: f.content for dh in render_inventory(v.inventory).values() for f in dh.files}


def _inventory(tmp_path: Path, manager: str) -> Path:
    p = tmp_path / f"{manager}.yaml"
    p.write_text(f"version: 1\ndefaults: {{service: {{manager: {manager}, user: openclaw}}}}\n"
                 "hosts: {h: {address: 192.0.2.1, instances: {main: {port: 18789}, ops: {port: 19789}}}}\n")
    return p


@pytest.mark.parametrize("manager", ["systemd", "systemd-user"])
def test_every_unit_sets_the_read_only_switch_and_a_minimal_path(tmp_path: Path, manager: str) -> None:
    files = _rendered(_inventory(tmp_path, manager))
    units = {p: c.decode() for p, c in files.items() if p.endswith(".service")}
    assert len(units) == 2
    for text in units.values():
        lines = text.splitlines()
        assert "Environment=OPENCLAW_CONFIG_READONLY=1" in lines
        assert MINIMAL_PATH in lines
        # systemd loads no env file (gateway-exec does, as the user): the unit's own line is the one OpenClaw's
        # audit reads, as an inline value
        assert not [ln for ln in lines if ln.startswith("EnvironmentFile=")]
    envs = [c.decode() for p, c in files.items() if p.endswith("gateway.env")]
    assert envs and not any("OPENCLAW_CONFIG_READONLY" in e for e in envs)


def test_without_a_service_manager_the_env_file_carries_the_switch(tmp_path: Path) -> None:
    files = _rendered(_inventory(tmp_path, "none"))
    assert not [p for p in files if p.endswith(".service")]
    envs = [c.decode() for p, c in files.items() if p.endswith("gateway.env")]
    assert len(envs) == 2 and all("\nOPENCLAW_CONFIG_READONLY=1\n" in e for e in envs)


def test_the_inventory_cannot_turn_the_switch_off(tmp_path: Path) -> None:
    p = tmp_path / "off.yaml"
    p.write_text("version: 1\nhosts:\n  h:\n    address: 192.0.2.1\n    instances:\n      main:\n"
                 "        port: 18789\n        env: {OPENCLAW_CONFIG_READONLY: '0'}\n")
    errs = [d for d in validate_file(str(p)).errors if "OPENCLAW_CONFIG_READONLY" in d.message]
    assert errs and errs[0].span is not None and (errs[0].span.line, errs[0].span.col) == (8, 15)


def test_the_demo_fleet_env_files_say_read_only() -> None:
    files = _rendered(REPO / "provisioner" / "examples" / "local-demo.yaml")
    envs = [c.decode() for p, c in files.items() if p.endswith("gateway.env")]
    assert envs and all("OPENCLAW_CONFIG_READONLY=1" in e for e in envs)


# --- reading the switch back from a running process ---------------------------------------------------------

LISTENER = ("import socket, sys\n"
            "s = socket.socket(); s.bind(('127.0.0.1', 0)); s.listen()\n"
            "print(s.getsockname()[1], flush=True)\n"
            "sys.stdin.read()\n")


@pytest.fixture
def listeners() -> Iterator[list[int]]:
    """Two processes listening on loopback: the first with OPENCLAW_CONFIG_READONLY=1, the second with =0."""
    procs = []
    ports = []
    try:
        for value in ("1", "0"):
            env = {k: v for k, v in os.environ.items() if not k.startswith("OPENCLAW_")}
            env["OPENCLAW_CONFIG_READONLY"] = value
            p = subprocess.Popen([sys.executable, "-c", LISTENER], env=env, stdin=subprocess.PIPE,
                                 stdout=subprocess.PIPE, text=True)
            procs.append(p)
            assert p.stdout is not None
            ports.append(int(p.stdout.readline()))  # printed once it listens
        yield ports
    finally:
        for p in procs:
            p.kill()
            p.wait()


def test_the_read_only_probe_reads_the_listening_process_environment(listeners: list[int]) -> None:
    with_it, without = listeners
    with subprocess.Popen([sys.executable, "-c", LISTENER], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                          text=True) as gone:
        assert gone.stdout is not None
        closed = int(gone.stdout.readline())
        gone.kill()
    script = readonly_script([("", with_it), ("", without), ("", closed)])
    r = subprocess.run(["/bin/sh", "-s"], input=script, capture_output=True, text=True, timeout=30, check=False)
    assert parse_readonly(r.stdout, 3) == ["yes", "no", "-"], r.stdout + r.stderr


def test_parse_readonly_takes_only_its_own_words() -> None:
    text = "RO 0 yes\n~ RO 1 yes\nRO 1 maybe\nRO 7 yes\nRO 1 no\n"
    assert parse_readonly(text, 3) == ["yes", "no", "?"]


# --- auth by default: a token made on the (stand-in) host ---------------------------------------------------

LOCAL = """\
version: 1
openclaw: {version: "2026.9.6", command: [/opt/openclaw/bin/openclaw]}
defaults:
  service: {manager: none}
hosts:
  a:
    connection: local
    root: hosts/a
    instances:
      main: {port: 18789}
      rescue:
        port: 19789
        secrets: {OPENCLAW_GATEWAY_TOKEN: {env: RESCUE_TOKEN}}
"""
TOKEN_FILE = "hosts/a/home/openclaw/.openclaw-main/gateway.auth.env"


def _token(tmp_path: Path) -> str:
    lines = (tmp_path / TOKEN_FILE).read_text().splitlines()
    values = [ln.split("=", 1)[1] for ln in lines if ln.startswith("OPENCLAW_GATEWAY_TOKEN=")]
    assert len(values) == 1
    return values[0]


def test_a_token_made_on_the_host_is_kept_and_shown_only_when_asked(tmp_path: Path) -> None:
    provision = Provision(tmp_path, env={"RESCUE_TOKEN": "rescue-secret-1"}, timeout=120)
    inv = tmp_path / "inventory.yaml"
    inv.write_text(LOCAL)
    r = provision("apply", str(inv), "--yes", "--json")
    assert r.returncode == 0, r.stdout + r.stderr
    token = _token(tmp_path)
    assert len(token) == 64 and int(token, 16) >= 0
    assert (tmp_path / TOKEN_FILE).stat().st_mode & 0o777 == 0o600
    assert not (tmp_path / "hosts/a/home/openclaw/.openclaw-rescue/gateway.auth.env").exists()
    # the rendered config asks for token auth; the token itself is in no managed file
    cfg = (tmp_path / "hosts/a/home/openclaw/.openclaw-main/openclaw.json").read_text()
    assert '"mode": "token"' in cfg and token not in cfg
    # kept: by applies with nothing to do, and by a rotation of another secret
    assert provision("plan", str(inv), "--detailed-exitcode").returncode == 0
    provision.env["RESCUE_TOKEN"] = "rescue-secret-2"
    r = provision("plan", str(inv), "--detailed-exitcode", "--out", str(tmp_path / "rotate.plan"))
    assert r.returncode == 2
    assert provision("apply", str(tmp_path / "rotate.plan"), "--yes").returncode == 0
    assert provision("apply", str(inv), "--yes").returncode == 0
    assert _token(tmp_path) == token
    # shown only when asked, and said so on stderr
    r = provision("status", str(inv), "--show-token", "a/main")
    assert r.returncode == 0 and r.stdout == token + "\n", r.stdout + r.stderr
    assert "printed the gateway token of a/main" in r.stderr
    r = provision("status", str(inv), "--show-token", "a/rescue", "--json")
    doc = json.loads(r.stdout)  # the one --json document: its envelope (docs/json.md), then the token
    assert {k: doc[k] for k in ("ok", "host", "instance", "token")} == {"ok": True, "host": "a", "instance": "rescue",
                                                                          "token": "rescue-secret-2"}
    assert provision("status", str(inv), "--show-token", "a/nope").returncode == 1
    # nowhere else: not in any output but the one that asked, not in the plan file
    asked = {i for i, out in enumerate(provision.outputs) if out.startswith(token) or '"token"' in out}
    assert [i for i, out in enumerate(provision.outputs) if token in out and i not in asked] == []
    assert token not in (tmp_path / "rotate.plan").read_text()


def test_a_token_file_that_is_not_a_regular_file_is_refused_not_replaced(tmp_path: Path) -> None:
    provision = Provision(tmp_path, env={"RESCUE_TOKEN": "x"}, timeout=120)
    inv = tmp_path / "inventory.yaml"
    inv.write_text(LOCAL)
    target = tmp_path / TOKEN_FILE
    target.parent.mkdir(parents=True)
    (tmp_path / "elsewhere").write_text("OPENCLAW_GATEWAY_TOKEN=planted\n")
    target.symlink_to(tmp_path / "elsewhere")
    r = provision("apply", str(inv), "--yes")
    assert r.returncode == 1 and "gateway.auth.env: not a regular file" in r.stdout + r.stderr
    assert target.is_symlink() and (tmp_path / "elsewhere").read_text() == "OPENCLAW_GATEWAY_TOKEN=planted\n"
