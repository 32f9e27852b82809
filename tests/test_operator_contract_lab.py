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

    def openclaw(self, *args: str, timeout: float = 180) -> Any:
        """`openclaw --profile main ARGS` as the service user, with the running gateway's environment."""
        return self.host.run(["python3", "-c", AS_GATEWAY, UNIT, OC, "--profile", "main", *args], check=False,
                             timeout=timeout)


def _json(text: str) -> Any:
    return json.loads(text[text.index("{"):])


@pytest.fixture(scope="module")
def gateway(lab: Lab, openclaw_install: OpenClawInstall, tmp_path_factory: pytest.TempPathFactory
            ) -> Iterator[Gateway]:
    host = lab.add_host("systemd", bind_ro={str(openclaw_install.dir): "/opt/oc"})
    workdir = tmp_path_factory.mktemp("contract")
    provision = Provision(workdir, lab=lab, env=LAB_ENV)
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
