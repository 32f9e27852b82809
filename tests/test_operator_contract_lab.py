"""OpenClaw's operator contract on the real 2026.9.6 gateway in a systemd lab host: the config is read-only for
OpenClaw itself, OpenClaw's own service audit passes on the unit the tool wrote, and every gateway has token
auth: one the inventory gives, or one made on the host that never reaches the controller."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.lab import inventory as lab_inventory
from tests.lab.harness import Lab
from tests.lab.hosts import LabHost
from tests.openclaw_fixtures import OpenClawInstall
from tests.support.cli import Provision
from tests.support.lab_cli import LAB_ENV

pytestmark = [pytest.mark.lab, pytest.mark.openclaw]

OC = "/opt/oc/bin/openclaw"
UNIT = "openclaw-gateway-main.service"
STATE = "/home/openclaw/.openclaw-main"
CONFIG = f"{STATE}/openclaw.json"

# runs argv[2:] as the service user with exactly the environment of the running gateway of unit argv[1]
AS_GATEWAY = """
import os, subprocess, sys
pid = subprocess.run(["systemctl", "show", "-p", "MainPID", "--value", sys.argv[1]], capture_output=True,
                     text=True, check=True).stdout.strip()
with open(f"/proc/{pid}/environ") as f:
    env = dict(kv.split("=", 1) for kv in f.read().split("\\0") if "=" in kv)
os.chdir("/")
os.execvpe("setpriv", ["setpriv", "--reuid=openclaw", "--regid=openclaw", "--init-groups", *sys.argv[2:]], env)
"""


def fleet_doc() -> dict[str, Any]:
    return {
        "version": 1,
        "openclaw": {"version": "2026.9.6", "command": [OC]},
        "defaults": {"service": {"manager": "systemd", "user": "openclaw"},
                     "instance": {"bind": "loopback", "health": {"timeout": 240}}},
        "hosts": {"gw-1": {"instances": {"main": {"port": 18789}}}},
    }


@dataclass
class Gateway:
    lab: Lab
    host: LabHost
    workdir: Path
    provision: Provision
    inventory: str
    first_apply: dict[str, Any]

    def environ(self) -> dict[str, str]:
        text = self.host.run(f"tr '\\0' '\\n' </proc/$(systemctl show -p MainPID --value {UNIT})/environ").stdout
        return dict(line.split("=", 1) for line in text.splitlines() if "=" in line)

    def openclaw(self, *args: str, timeout: float = 180, drop: str = "") -> Any:
        """`openclaw --profile main ARGS` as the service user, with the running gateway's environment (less the
        variable `drop`)."""
        pre = ["env", "-u", drop] if drop else []
        return self.host.run(["python3", "-c", AS_GATEWAY, UNIT, *pre, OC, "--profile", "main", *args], check=False,
                             timeout=timeout)

    def token_on_host(self) -> str:
        text = self.host.read_file(f"{STATE}/gateway.auth.env").decode()
        return next(ln.split("=", 1)[1] for ln in text.splitlines() if ln.startswith("OPENCLAW_GATEWAY_TOKEN="))


def _json(text: str) -> Any:
    return json.loads(text[text.index("{"):])


@pytest.fixture(scope="module")
def gateway(lab: Lab, openclaw_install: OpenClawInstall, tmp_path_factory: pytest.TempPathFactory
            ) -> Iterator[Gateway]:
    host = lab.add_host("systemd", bind_ro={str(openclaw_install.dir): "/opt/oc"})
    workdir = tmp_path_factory.mktemp("contract")
    # a cache dir of its own, so the test can look through everything the controller keeps
    provision = Provision(workdir, lab=lab, env={**LAB_ENV, "XDG_CACHE_HOME": str(workdir / "cache")})
    inv = str(lab_inventory.write(workdir / "fleet.yaml", lab, fleet_doc(), {"gw-1": host}))
    try:
        r = provision("apply", inv, "--yes", "--json")
        assert r.returncode == 0, r.stdout + r.stderr
        yield Gateway(lab, host, workdir, provision, inv, json.loads(r.stdout))
    finally:
        lab.remove_host(host)


def test_the_gateway_process_runs_with_config_read_only_and_refuses_config_set(gateway: Gateway) -> None:
    env = gateway.environ()
    assert env["OPENCLAW_CONFIG_READONLY"] == "1"
    assert env["PATH"].endswith(":/usr/local/bin:/usr/bin:/bin")  # the wrapper puts node's own bin dir first
    before = gateway.host.read_file(CONFIG)
    r = gateway.openclaw("config", "set", "logging.level", "debug")
    assert r.returncode != 0
    assert "OPENCLAW_CONFIG_READONLY=1" in r.stdout + r.stderr and "externally managed" in r.stdout + r.stderr
    assert gateway.host.read_file(CONFIG) == before


def test_openclaw_service_audit_passes_on_the_unit_the_tool_wrote(gateway: Gateway) -> None:
    r = gateway.openclaw("gateway", "status", "--deep", "--json")
    assert r.returncode == 0, r.stdout + r.stderr
    doc = _json(r.stdout)
    audit = doc["service"]["configAudit"]
    assert audit["ok"] is True and audit["issues"] == [], audit
    # the unit it audited is ours, and it saw our switch as the unit's own (inline) value
    assert doc["service"]["command"]["sourcePath"] == f"/etc/systemd/system/{UNIT}"
    assert doc["service"]["command"]["environmentValueSources"]["OPENCLAW_CONFIG_READONLY"] == "inline"
    # extraServices lists other tools' gateway-like units; ours carry OpenClaw's service marker and are skipped
    assert doc["extraServices"] == []


def test_status_shows_the_switch_as_the_running_gateway_has_it(gateway: Gateway) -> None:
    r = gateway.provision("status", gateway.inventory, "--json", "--no-openclaw-status")
    assert r.returncode == 0, r.stdout + r.stderr
    rows = json.loads(r.stdout)["instances"]
    assert [(i["instance"], i["config_readonly"]) for i in rows] == [("main", "yes")]
    r = gateway.provision("status", gateway.inventory, "--no-openclaw-status")
    header, row = r.stdout.splitlines()[:2]
    assert "CONFIG RO" in header and re.search(r"\byes\b", row), r.stdout


# POST a call of a tool that does not exist, with `Authorization: Bearer ARGV[2]` unless that is empty: the status
INVOKE = """
import json, sys, urllib.request
req = urllib.request.Request(sys.argv[1], data=json.dumps({"tool": "ocp-no-such-tool", "args": {}}).encode(),
                             headers={"Content-Type": "application/json"}, method="POST")
if sys.argv[2]:
    req.add_header("Authorization", "Bearer " + sys.argv[2])
try:
    print(urllib.request.urlopen(req, timeout=30).status)
except urllib.error.HTTPError as e:
    print(e.code)
"""


def with_extra_secret(value: str | None) -> dict[str, Any]:
    doc = fleet_doc()
    if value is not None:
        doc["hosts"]["gw-1"]["instances"]["main"]["secrets"] = {"EXTRA_KEY": {"env": "EXTRA_KEY"}}
    return doc


def test_a_token_made_on_the_host_survives_applies_and_never_reaches_the_controller(gateway: Gateway) -> None:
    token = gateway.token_on_host()
    assert re.fullmatch(r"[0-9a-f]{64}", token)
    assert gateway.environ()["OPENCLAW_GATEWAY_TOKEN"] == token
    assert gateway.host.run(["stat", "-c", "%a %U", f"{STATE}/gateway.auth.env"]).stdout.split() == ["600", "openclaw"]
    # three more applies: another secret added (a restart), nothing to do, that secret rotated (a restart)
    rotated = gateway.workdir / "rotated.yaml"
    for value in ("extra-1", None, "extra-2"):
        doc = with_extra_secret(value if value is not None else "extra-1")
        inv = str(lab_inventory.write(rotated, gateway.lab, doc, {"gw-1": gateway.host}))
        gateway.provision.env["EXTRA_KEY"] = value or "extra-1"
        plan = gateway.workdir / "rotation.plan"
        r = gateway.provision("plan", inv, "--out", str(plan), "--json")
        assert r.returncode == 0, r.stdout + r.stderr
        r = gateway.provision("apply", str(plan), "--yes", "--json")
        assert r.returncode == 0, r.stdout + r.stderr
        assert gateway.token_on_host() == token
    assert gateway.environ()["OPENCLAW_GATEWAY_TOKEN"] == token  # the gateway restarted with the same token
    # the controller never saw it: no output of any run, no plan file, nothing in its cache
    assert [o for o in gateway.provision.outputs if token in o] == []
    kept = [p for p in gateway.workdir.rglob("*") if p.is_file() and token.encode() in p.read_bytes()]
    assert kept == []
    # until asked
    r = gateway.provision("status", gateway.inventory, "--show-token", "gw-1/main")
    assert r.returncode == 0 and r.stdout == token + "\n", r.stdout + r.stderr
    assert "printed the gateway token of gw-1/main" in r.stderr
    journal = gateway.host.run(["journalctl", "-t", "openclaw-provisioner", "--no-pager"]).stdout
    assert "gateway token of gw-1/main shown to the controller" in journal


def test_openclaw_sees_token_auth_and_enforces_it_while_the_probes_stay_open(gateway: Gateway) -> None:
    r = gateway.openclaw("doctor", "--lint", "--json")
    findings = _json(r.stdout)["findings"]
    assert [f for f in findings if f["checkId"] == "core/doctor/gateway-auth"] == [], findings
    assert [f for f in findings if f["severity"] == "error"] == [], findings
    cfg = gateway.host.read_file(CONFIG).decode()
    assert re.search(r'"auth": \{\s*"mode": "token"\s*\}', cfg), cfg
    # the gateway enforces the token: its operator HTTP surface (`POST /tools/invoke`, always on) refuses a call
    # without it or with another one, and lets the right one through to the tool lookup
    codes = [gateway.host.run(["python3", "-c", INVOKE, "http://127.0.0.1:18789/tools/invoke", bearer]).stdout.strip()
             for bearer in ("", "0" * 64, gateway.token_on_host())]
    assert codes[:2] == ["401", "401"] and codes[2] not in ("401", "403"), codes
    # /healthz and /readyz need no token: the health gate keeps working
    for path in ("/healthz", "/readyz"):
        code = gateway.host.run(["python3", "-c", "import sys, urllib.request; "
                                 "print(urllib.request.urlopen(sys.argv[1], timeout=5).status)",
                                 f"http://127.0.0.1:18789{path}"]).stdout.strip()
        assert code == "200", path


def test_a_link_the_service_user_plants_as_its_token_file_is_refused_and_followed_nowhere(gateway: Gateway) -> None:
    """The token file is in the service user's tree: a link there (here to a file only root may read or write)
    makes the apply fail before any restart, with everything put back; the link's target is untouched."""
    victim = "/root/ocp-victim"
    gateway.host.write_file(victim, b"root's own\n", mode=0o600)
    token_file = f"{STATE}/gateway.auth.env"
    gateway.host.run(["mv", token_file, f"{token_file}.kept"], user="openclaw")
    gateway.host.run(["ln", "-s", victim, token_file], user="openclaw")
    running = gateway.environ()["OPENCLAW_GATEWAY_TOKEN"]
    try:
        doc = with_extra_secret("extra-3")
        inv = str(lab_inventory.write(gateway.workdir / "planted.yaml", gateway.lab, doc, {"gw-1": gateway.host}))
        gateway.provision.env["EXTRA_KEY"] = "extra-3"
        r = gateway.provision("apply", inv, "--yes", "--json")
        assert r.returncode == 1, r.stdout + r.stderr
        host = json.loads(r.stdout)["hosts"][0]
        assert host["status"] == "failed" and "gateway.auth.env: not a regular file" in host["message"], host
        assert gateway.host.read_file(victim) == b"root's own\n"
        assert gateway.host.run(["readlink", token_file]).stdout.strip() == victim
        assert gateway.environ()["OPENCLAW_GATEWAY_TOKEN"] == running  # not restarted
    finally:
        gateway.host.run(["rm", "-f", token_file], user="openclaw")
        gateway.host.run(["mv", f"{token_file}.kept", token_file], user="openclaw")


# runs argv[2:] as the service user with the environment of its user manager's unit argv[1] (as AS_GATEWAY)
AS_USER_GATEWAY = """
import os, pwd, subprocess, sys
uid = pwd.getpwnam("openclaw").pw_uid
ask = ["setpriv", f"--reuid={uid}", f"--regid={uid}", "--init-groups", "env", f"XDG_RUNTIME_DIR=/run/user/{uid}",
       "systemctl", "--user", "show", "-p", "MainPID", "--value", sys.argv[1]]
pid = subprocess.run(ask, capture_output=True, text=True, check=True).stdout.strip()
with open(f"/proc/{pid}/environ") as f:
    env = dict(kv.split("=", 1) for kv in f.read().split("\\0") if "=" in kv)
env.setdefault("XDG_RUNTIME_DIR", f"/run/user/{uid}")
os.chdir("/")
os.execvpe("setpriv", ["setpriv", f"--reuid={uid}", f"--regid={uid}", "--init-groups", *sys.argv[2:]], env)
"""


def test_openclaw_service_audit_of_a_user_unit_passes_too(lab: Lab, openclaw_install: OpenClawInstall,
                                                          tmp_path: Path) -> None:
    """A user unit gets OpenClaw's systemd checks as well (TimeoutStopSec, network-online, RestartSec,
    KillMode): they are audited only under ~/.config/systemd/user, where systemd-user units live."""
    pam = "/lib/x86_64-linux-gnu/security/pam_systemd.so"  # a minbase host lacks libpam-systemd
    host = lab.add_host("systemd", bind_ro={str(openclaw_install.dir): "/opt/oc"})
    try:
        host.write_file(pam, Path(pam).read_bytes())
        doc = fleet_doc()
        doc["defaults"]["service"]["manager"] = "systemd-user"
        provision = Provision(tmp_path, lab=lab, env=LAB_ENV)
        inv = str(lab_inventory.write(tmp_path / "user.yaml", lab, doc, {"gw-1": host}))
        r = provision("apply", inv, "--yes")
        assert r.returncode == 0, r.stdout + r.stderr
        r = host.run(["python3", "-c", AS_USER_GATEWAY, UNIT, OC, "--profile", "main", "gateway", "status", "--deep",
                      "--json"], check=False, timeout=180)
        svc = _json(r.stdout)["service"]
        assert svc["command"]["sourcePath"] == f"/home/openclaw/.config/systemd/user/{UNIT}", svc["command"]
        assert svc["command"]["environment"]["OPENCLAW_CONFIG_READONLY"] == "1"
        assert svc["configAudit"]["ok"] is True and svc["configAudit"]["issues"] == [], svc["configAudit"]
    finally:
        lab.remove_host(host)
