"""Issue 15, plugins: `@openclaw/slack` pinned on one instance of a real systemd lab host running the real OpenClaw
2026.9.6 gateway (two instances, one without the plugin).

The package is fetched once on the controller from the npm registry into the artifact cache, pushed to the host,
unpacked root-owned under /opt/openclaw-plugins/<package>/<version>/ and loaded by path (`plugins.load.paths`).
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from provisioner.install.plugin import plugin_artifact
from tests.lab import inventory as lab_inventory
from tests.lab.harness import Lab
from tests.lab.hosts import LabHost
from tests.openclaw_fixtures import OpenClawInstall
from tests.support.cli import Provision
from tests.support.lab_cli import LAB_ENV, invocation
from tests.test_operator_contract_lab import AS_GATEWAY

pytestmark = [pytest.mark.lab, pytest.mark.openclaw]

OC = "/opt/oc/bin/openclaw"
UNITS = {"main": "openclaw-gateway-main.service", "other": "openclaw-gateway-other.service"}
PREFIX = "/opt/openclaw-plugins/openclaw+slack"


def fleet_doc(version: str) -> dict[str, Any]:
    return {
        "version": 1,
        "openclaw": {"version": "2026.9.6", "command": [OC]},
        "defaults": {"service": {"manager": "systemd", "user": "openclaw"},
                     "instance": {"bind": "loopback", "health": {"timeout": 300}}},
        "hosts": {"gw-1": {"instances": {"main": {"port": 18789, "plugins": {"@openclaw/slack": version}},
                                         "other": {"port": 19789}}}},
    }


@dataclass
class Gateway:
    lab: Lab
    host: LabHost
    workdir: Path
    provision: Provision
    first: dict[str, Any]

    def inventory(self, version: str) -> str:
        return str(lab_inventory.write(self.workdir / f"fleet-{version}.yaml", self.lab, fleet_doc(version),
                                       {"gw-1": self.host}))

    def plugins(self, instance: str) -> dict[str, Any]:
        """`openclaw plugins list --json` as the service user with the running gateway's environment: by id."""
        r = self.host.run(["python3", "-c", AS_GATEWAY, UNITS[instance], OC, "--profile", instance, "plugins",
                           "list", "--json"], check=False, timeout=300)
        assert r.returncode == 0, r.stdout + r.stderr
        doc = json.loads(r.stdout[r.stdout.index("{"):])
        return {p["id"]: p for p in doc["plugins"]}


def journal(host: LabHost) -> str:
    return "".join(f"\n--- journal of {u}:\n" + host.run(f"journalctl -u {u} --no-pager | tail -60", check=False).stdout
                   for u in UNITS.values())


@pytest.fixture(scope="module")
def gateway(lab: Lab, openclaw_install: OpenClawInstall, tmp_path_factory: pytest.TempPathFactory
            ) -> Iterator[Gateway]:
    # the lab's client namespace has no route out: the controller's fetch (into the artifact cache, where the
    # CLI finds it) runs here, from the registry, as a first apply run with a network would
    for version in ("2026.9.6", "2026.9.5"):
        plugin_artifact("@openclaw/slack", version)
    host = lab.add_host("systemd", bind_ro={str(openclaw_install.dir): "/opt/oc"})
    workdir = tmp_path_factory.mktemp("plugins")
    provision = Provision(workdir, lab=lab, env=LAB_ENV, timeout=900)
    try:
        gw = Gateway(lab, host, workdir, provision, {})
        r = provision("apply", gw.inventory("2026.9.6"), "--yes", "--json")
        assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:] + journal(host)
        gw.first = json.loads(r.stdout)
        yield gw
    finally:
        lab.remove_host(host)


def test_the_pinned_plugin_is_loaded_from_its_root_owned_path(gateway: Gateway) -> None:
    h = gateway.host
    path = f"{PREFIX}/2026.9.6/node_modules/@openclaw/slack"
    assert gateway.first["hosts"][0]["transferred_bytes"] > 0
    slack = gateway.plugins("main")["slack"]
    assert (slack["status"], slack["origin"], slack["rootDir"], slack["version"]) == \
        ("loaded", "config", path, "2026.9.6"), slack
    assert slack["dependencyStatus"]["missing"] == [], slack["dependencyStatus"]
    # the other instance does not load it (it still has OpenClaw's own plugins)
    assert gateway.plugins("other").get("slack", {}).get("origin") != "config"
    # root's, and writable by nobody else: the gateway's user can run that code, never change it
    loose = h.run(["find", PREFIX, "(", "!", "-user", "root", "-o", "!", "-type", "l", "-perm", "/022", ")",
                   "-print"]).stdout
    assert loose == "", loose
    r = h.run(f"touch {path}/dist/index.js || echo DENIED; mkdir {path}/x || echo DENIED", user="openclaw",
              check=False)
    assert r.stdout.count("DENIED") == 2, r.stdout + r.stderr


def test_a_second_apply_transfers_nothing(gateway: Gateway) -> None:
    inv = gateway.inventory("2026.9.6")
    assert gateway.provision("plan", inv, "--detailed-exitcode").returncode == 0
    r = gateway.provision("apply", inv, "--yes", "--json")
    assert r.returncode == 0, r.stdout + r.stderr
    host = json.loads(r.stdout)["hosts"][0]
    assert (host["status"], host["transferred_bytes"]) == ("unchanged", 0), host


def test_a_version_change_restarts_only_the_instance_that_uses_it(gateway: Gateway) -> None:
    h = gateway.host
    before = {n: invocation(h, u) for n, u in UNITS.items()}
    inv = gateway.inventory("2026.9.5")
    r = gateway.provision("plan", inv, "--json")
    changes = {(c["kind"], c["target"], c["action"]) for c in json.loads(r.stdout)["hosts"][0]["changes"]}
    assert ("plugin", f"{PREFIX}/2026.9.5", "create") in changes, changes
    assert ("service", UNITS["main"], "restart") in changes and not any(t == UNITS["other"] for _, t, _ in changes)
    r = gateway.provision("apply", inv, "--yes", "--json")
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:] + journal(h)
    assert invocation(h, UNITS["main"]) != before["main"]
    assert invocation(h, UNITS["other"]) == before["other"]
    slack = gateway.plugins("main")["slack"]
    assert (slack["status"], slack["rootDir"], slack["version"]) == \
        ("loaded", f"{PREFIX}/2026.9.5/node_modules/@openclaw/slack", "2026.9.5"), slack


def _broken_artifact() -> str:
    """The 2026.9.6 package with its entry module made to throw, cached as version 2026.9.6-ocpbroken (the
    controller finds it cached and fetches nothing): a plugin whose manifest is fine but whose code fails."""
    version = "2026.9.6-ocpbroken"
    good = plugin_artifact("@openclaw/slack", "2026.9.6")
    out = good.path.with_name(f"openclaw+slack-{version}.tar.gz")
    with tempfile.TemporaryDirectory() as d:
        subprocess.run(["tar", "-xzf", str(good.path), "-C", d], check=True)
        Path(d, "node_modules/@openclaw/slack/dist/index.js").write_text('throw new Error("ocp-broken-plugin");\n')
        subprocess.run(["tar", "-czf", str(out), "-C", d, "node_modules"], check=True)
    digest = hashlib.sha256(out.read_bytes()).hexdigest()
    out.with_name(out.name + ".json").write_text(json.dumps({"id": "slack", "sha256": digest}))
    return version


def test_a_plugin_that_does_not_load_fails_the_gate_naming_it_and_the_host_goes_back(gateway: Gateway) -> None:
    h = gateway.host
    config = "/home/openclaw/.openclaw-main/openclaw.json"
    before = h.read_file(config)
    r = gateway.provision("apply", gateway.inventory(_broken_artifact()), "--yes", "--json")
    assert r.returncode == 1, r.stdout[-3000:] + r.stderr[-3000:]
    host = json.loads(r.stdout)["hosts"][0]
    assert host["status"] == "failed" and host["rolled_back"], host
    assert "main: plugin slack (@openclaw/slack 2026.9.6-ocpbroken) did not load" in host["message"], host
    assert "ocp-broken-plugin" in host["message"] and host["failing"]["main"] == ["plugin:slack"]
    assert h.read_file(config) == before  # back on 2026.9.5's config
