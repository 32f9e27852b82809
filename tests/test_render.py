"""Rendering: deterministic bytes, the owned keys in openclaw.json, the unit modelled on OpenClaw's, quoting."""

from __future__ import annotations

import shlex
import subprocess
from pathlib import Path

import json5

from provisioner.core.desired import FileKind
from provisioner.render.files import env_quote, exec_arg, render_inventory
from provisioner.validate import validate_text

INV = """\
version: 1
openclaw: {version: "2026.9.6", command: ["/opt/open claw/bin/openclaw"]}
defaults:
  instance:
    config: {logging: {level: info}}
hosts:
  gw-1:
    address: 192.0.2.10
    instances:
      main: {port: 18789, env: {NOTE: "50% of $HOME \\"quoted\\" `x`"}}
      rescue:
        port: 19789
        bind: lan
        config: {gateway: {auth: {mode: token}}}
        secrets: {OPENCLAW_GATEWAY_TOKEN: {env: T}}
      default: {port: 20789}
"""


def _render(tmp_path: Path, text: str = INV, secret: str = "s3cr3t-value") -> dict:
    v = validate_text(text, str(tmp_path / "inv.yaml"), check_configs=False)
    assert v.ok, [d.format() for d in v.diagnostics]
    assert v.inventory is not None
    return render_inventory(v.inventory, lambda ref: secret)


def test_two_renders_are_byte_identical(tmp_path: Path) -> None:
    a, b = _render(tmp_path), _render(tmp_path)
    def view(r: dict) -> list:
        return [(f.path, f.content, f.mode) for f in r["gw-1"].files]

    assert view(a) == view(b)


def test_config_sets_mode_port_bind_and_workspace_over_the_merged_config(tmp_path: Path) -> None:
    files = {f.path: f for f in _render(tmp_path)["gw-1"].files}
    cfg = json5.loads(files["/home/openclaw/.openclaw-rescue/openclaw.json"].content.decode())
    assert cfg["gateway"] == {"mode": "local", "port": 19789, "bind": "lan", "auth": {"mode": "token"}}
    assert cfg["agents"]["defaults"]["workspace"] == "/home/openclaw/.openclaw-rescue/workspace"
    assert cfg["logging"] == {"level": "info"}
    assert files["/home/openclaw/.openclaw-rescue/openclaw.json"].mode == 0o600


def test_secret_is_only_in_the_0600_env_file(tmp_path: Path) -> None:
    dh = _render(tmp_path)["gw-1"]
    holders = [f for f in dh.files if b"s3cr3t-value" in f.content]
    assert [(f.path, f.kind, f.mode) for f in holders] == [
        ("/home/openclaw/.openclaw-rescue/gateway.env", FileKind.ENV, 0o600)]


def test_unit_runs_the_profile_on_its_port_with_isolation_env(tmp_path: Path) -> None:
    files = {f.path: f.content.decode() for f in _render(tmp_path)["gw-1"].files}
    unit = files["/etc/systemd/system/openclaw-gateway-main.service"]
    # the env files are read by gateway-exec as the user (systemd would read an EnvironmentFile= as root)
    assert ('ExecStart=/bin/sh /usr/local/libexec/openclaw-provisioner/gateway-exec '
            '/home/openclaw/.openclaw-main/gateway.auth.env /home/openclaw/.openclaw-main/gateway.env '
            '-- "/opt/open claw/bin/openclaw" --profile main gateway --port 18789') in unit.splitlines()
    assert not [ln for ln in unit.splitlines() if ln.startswith("EnvironmentFile=")]
    for line in ('Environment="OPENCLAW_STATE_DIR=/home/openclaw/.openclaw-main"',
                 'Environment="OPENCLAW_CONFIG_PATH=/home/openclaw/.openclaw-main/openclaw.json"',
                 'Environment="OPENCLAW_PROFILE=main"', "User=openclaw", "Restart=always",
                 "RestartPreventExitStatus=78",
                 "WantedBy=multi-user.target"):
        assert line in unit.splitlines(), line
    default = files["/etc/systemd/system/openclaw-gateway.service"]
    assert '--profile' not in default and "gateway --port 20789" in default


def test_user_units_live_in_the_service_users_home(tmp_path: Path) -> None:
    text = INV.replace("defaults:\n", "defaults:\n  service: {manager: systemd-user}\n")
    files = {f.path: f.content.decode() for f in _render(tmp_path, text)["gw-1"].files}
    unit = files["/home/openclaw/.config/systemd/user/openclaw-gateway-main.service"]
    assert "User=" not in unit and "WantedBy=default.target" in unit


def test_env_values_survive_shell_and_systemd_quoting(tmp_path: Path) -> None:
    files = {f.path: f.content for f in _render(tmp_path)["gw-1"].files}
    env = tmp_path / "gateway.env"
    env.write_bytes(files["/home/openclaw/.openclaw-main/gateway.env"])
    script = f". {shlex.quote(str(env))}; printf %s \"$NOTE\""
    out = subprocess.run(["sh", "-c", script], capture_output=True, check=True)
    assert out.stdout.decode() == '50% of $HOME "quoted" `x`'


def test_quoting_helpers() -> None:
    assert exec_arg("plain") == "plain"
    assert exec_arg("a b") == '"a b"'
    assert exec_arg("$HOME%i") == '"$$HOME%%i"'
    assert env_quote('a"b$c') == '"a\\"b\\$c"'
