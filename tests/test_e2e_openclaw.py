"""End to end with the real OpenClaw 2026.9.6 gateway (node 24, from the npm registry) on systemd lab hosts.

Two fresh hosts with no node and no openclaw, each with `main` and `rescue`: one apply pushes the pinned
release from the controller's cache (the lab hosts have no route outside), writes configs and units, and
four real gateways run as the units the tool wrote.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import stat
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.lab import inventory as lab_inventory
from tests.lab.harness import Lab
from tests.lab.hosts import LabHost
from tests.openclaw_fixtures import OpenClawInstall
from tests.support.cli import Provision
from tests.support.lab_cli import CANARY, LAB_ENV, invocation, readyz

pytestmark = [pytest.mark.lab, pytest.mark.openclaw]

OC = "/opt/openclaw/current/bin/openclaw"
UNITS = ("openclaw-gateway-main.service", "openclaw-gateway-rescue.service")


def fleet_doc(rescue_level: str = "info") -> dict[str, Any]:
    instances = {
        "main": {"port": 18789},
        "rescue": {"port": 19789, "config": {"gateway": {"auth": {"mode": "token"}},
                                             "logging": {"level": rescue_level}},
                   "secrets": {"OPENCLAW_GATEWAY_TOKEN": {"env": "RESCUE_TOKEN"}}},
    }
    return {
        "version": 1,
        "openclaw": {"version": "2026.9.6", "install": {"source": "push", "prefix": "/opt/openclaw"}},
        "defaults": {"service": {"manager": "systemd", "user": "openclaw"},
                     "instance": {"bind": "loopback", "health": {"timeout": 240}}},
        "hosts": {"gw-1": {"instances": instances}, "gw-2": {"instances": instances}},
    }


class Fleet:
    def __init__(self, lab: Lab, hosts: dict[str, LabHost], workdir: Path) -> None:
        self.lab = lab
        self.hosts = hosts
        self.workdir = workdir
        self.provision = Provision(workdir, lab=lab, env=LAB_ENV)
        self.first_apply_seconds = 0.0
        self.first_apply: dict[str, Any] = {}

    def write(self, doc: dict[str, Any], name: str = "fleet.yaml") -> str:
        return str(lab_inventory.write(self.workdir / name, self.lab, doc, self.hosts))


@pytest.fixture(scope="module")
def fleet(lab: Lab, openclaw_install: OpenClawInstall, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    """`openclaw_install` makes the real release's fetch a visible, failing (never skipped) setup step."""
    from provisioner.install.release import artifact

    artifact("2026.9.6", "24.21.0")  # the controller's cache, filled before the timed apply
    hosts = lab.add_hosts("systemd", 2)
    f = Fleet(lab, {"gw-1": hosts[0], "gw-2": hosts[1]}, tmp_path_factory.mktemp("e2e"))
    inv = f.write(fleet_doc())
    t0 = time.monotonic()
    all_at_once = f.workdir / "all-at-once.yaml"
    all_at_once.write_text('serial: ["100%"]\n')  # a first install has nothing to protect: both hosts at once
    r = f.provision("apply", inv, "--yes", "--json", "--playbook", str(all_at_once))
    f.first_apply_seconds = time.monotonic() - t0
    try:
        assert r.returncode == 0, r.stdout + r.stderr
        f.first_apply = json.loads(r.stdout)
        yield f
    finally:
        for h in hosts:
            lab.remove_host(h)


def test_one_apply_takes_fresh_hosts_to_four_real_gateways_that_answer_readyz(fleet: Fleet) -> None:
    pushed = {h["host"]: h["transferred_bytes"] for h in fleet.first_apply["hosts"]}
    print(f"first apply (install + 4 real gateways): {fleet.first_apply_seconds:.1f} s, pushed {pushed}")
    assert all(n > 50_000_000 for n in pushed.values())
    for host in fleet.hosts.values():
        assert host.run(["readlink", "/opt/openclaw/current"]).stdout.strip() == "2026.9.6"
        for unit, port in zip(UNITS, (18789, 19789), strict=True):
            assert host.run(["systemctl", "is-active", unit]).stdout.strip() == "active"
            assert readyz(host, port) == "200"
            cmdline = host.run(f"cat /proc/$(systemctl show -p MainPID --value {unit})/cmdline | tr '\\0' ' '").stdout
            assert "openclaw" in cmdline or "node" in cmdline
        rescue_env = host.read_file("/home/openclaw/.openclaw-rescue/gateway.env").decode()
        assert CANARY in rescue_env


def test_real_openclaw_accepts_every_rendered_config_on_the_host(fleet: Fleet) -> None:
    for host in fleet.hosts.values():
        for profile in ("main", "rescue"):
            state = f"/home/openclaw/.openclaw-{profile}"
            r = host.run(["runuser", "-u", "openclaw", "--", "env", "HOME=/home/openclaw",
                          f"OPENCLAW_STATE_DIR={state}", f"OPENCLAW_CONFIG_PATH={state}/openclaw.json",
                          OC, "--profile", profile, "config", "validate", "--json"], check=False, timeout=180)
            assert r.returncode == 0, r.stdout + r.stderr
            assert json.loads(r.stdout[r.stdout.index("{"):])["valid"] is True


def test_status_reports_all_four_healthy_in_a_table_and_in_json(fleet: Fleet) -> None:
    inv = fleet.write(fleet_doc())
    r = fleet.provision("status", inv)
    assert r.returncode == 0, r.stdout + r.stderr
    # the table's rows; the doctor's findings follow the table as "gw-1/main: doctor warning ..." lines
    rows = [ln for ln in r.stdout.splitlines() if re.match(r"gw-\d+\s", ln)]
    assert len(rows) == 4 and all(ln.rstrip().endswith("healthy") and "rpc ok" in ln for ln in rows), r.stdout
    findings = [ln for ln in r.stdout.splitlines() if re.match(r"gw-\d+/\w+: doctor ", ln)]
    assert all("doctor warning" in ln and "gateway-auth" not in ln for ln in findings), r.stdout
    r = fleet.provision("status", inv, "--json")
    doc = json.loads(r.stdout)
    assert doc["healthy"] is True
    assert sorted((i["host"], i["instance"]) for i in doc["instances"]) == [
        ("gw-1", "main"), ("gw-1", "rescue"), ("gw-2", "main"), ("gw-2", "rescue")]
    for i in doc["instances"]:
        assert (i["unit_state"], i["readyz"], i["healthz"]) == ("active", "200", "200")
        assert i["openclaw_status"].startswith("rpc ok, v2026.9.6")


def test_second_apply_is_a_noop_and_a_rescue_change_restarts_rescue_only_batch_by_batch(fleet: Fleet) -> None:
    inv = fleet.write(fleet_doc())
    assert fleet.provision("plan", inv, "--detailed-exitcode").returncode == 0
    before = {(n, u): invocation(h, u) for n, h in fleet.hosts.items() for u in UNITS}
    r = fleet.provision("apply", inv, "--yes", "--json")
    assert r.returncode == 0
    assert all(h["transferred_bytes"] == 0 and h["status"] == "unchanged" for h in json.loads(r.stdout)["hosts"])
    assert before == {(n, u): invocation(h, u) for n, h in fleet.hosts.items() for u in UNITS}

    inv = fleet.write(fleet_doc(rescue_level="debug"))
    r = fleet.provision("apply", inv, "--yes", "--json")
    assert r.returncode == 0, r.stdout + r.stderr
    doc = json.loads(r.stdout)
    assert doc["batches"] == [["gw-1"], ["gw-2"]]
    assert all(h["restarted"] == ["openclaw-gateway-rescue.service"] for h in doc["hosts"])
    after = {(n, u): invocation(h, u) for n, h in fleet.hosts.items() for u in UNITS}
    for n in fleet.hosts:
        assert after[(n, UNITS[0])] == before[(n, UNITS[0])]
        assert after[(n, UNITS[1])] != before[(n, UNITS[1])]
        assert readyz(fleet.hosts[n], 19789) == "200"


def test_a_port_taken_by_another_program_is_a_located_error_before_anything_is_touched(fleet: Fleet) -> None:
    host = fleet.hosts["gw-2"]
    host.run(["systemd-run", "--unit=squatter", "python3", "-m", "http.server", "20800", "--bind", "127.0.0.1"])
    try:
        for _ in range(50):
            if "20800" in host.run("ss -ltnH").stdout:
                break
            time.sleep(0.1)
        doc = fleet_doc()
        doc["hosts"]["gw-2"] = {"instances": {**doc["hosts"]["gw-2"]["instances"], "ops": {"port": 20789}}}
        inv = fleet.write(doc, "squatted.yaml")
        r = fleet.provision("apply", inv, "--yes")
        assert r.returncode == 1
        m = re.search(r"squatted\.yaml:(\d+):(\d+): error: gw-2/ops: port 20800, a port of its range "
                      r"20789\.\.20899, is already in use on gw-2 by python3 \(pid \d+, squatter\.service\)", r.stderr)
        assert m, r.stderr
        # located at gw-2/ops's own `port:` (not another instance's, not the host's line)
        lines = (fleet.workdir / "squatted.yaml").read_text().splitlines()
        at, col = int(m.group(1)), int(m.group(2))
        assert (lines[at - 2].strip(), lines[at - 1][col - 1:]) == ("ops:", "port: 20789"), lines[at - 2:at]
        assert not host.exists("/home/openclaw/.openclaw-ops")
    finally:
        host.run(["systemctl", "stop", "squatter.service"], check=False)


def test_a_key_the_hosts_version_rejects_is_found_by_the_version_the_host_runs(fleet: Fleet) -> None:
    # the version is the host's; its schema is the shipped one, proven equal to what the host prints below
    doc = fleet_doc()
    # what the inventory believes the hosts run (not installing it); they run 2026.9.6
    doc["openclaw"] = {"version": "2026.12.1", "command": [OC]}
    doc["hosts"]["gw-1"]["instances"] = {**doc["hosts"]["gw-1"]["instances"],
                                         "main": {"port": 18789, "config": {"canvasHost": {"port": 18793}}}}
    inv = fleet.write(doc, "newer.yaml")
    r = fleet.provision("plan", inv)
    assert r.returncode == 1
    assert "host gw-1 runs OpenClaw 2026.9.6, not 2026.12.1" in r.stderr
    assert re.search(r"newer\.yaml:\d+:\d+: error: gw-1/main: canvasHost is not accepted by OpenClaw 2026\.9\.6",
                     r.stderr)


def test_host_schema_is_read_from_the_hosts_own_openclaw(fleet: Fleet, monkeypatch: pytest.MonkeyPatch,
                                                        tmp_path: Path) -> None:
    from provisioner.apply.capabilities import host_schema
    from provisioner.cache import cache_dir
    from provisioner.remote.connect import run_script
    from provisioner.remote.scripts.openclaw_cli import NOBODY, config_schema_script
    from provisioner.remote.scripts.trust import user_output
    from provisioner.remote.ssh import SSHTransport
    from provisioner.rules.openclaw_config import check_openclaw_config

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))  # an empty cache: host_schema must ask the host
    shipped = json.loads((Path(__file__).parents[1] / "schemas/openclaw/config.schema.2026.9.6.json").read_text())
    host = fleet.hosts["gw-1"]
    with SSHTransport.connect("gw-1", host.address, identity_file=str(host.key_path),
                              known_hosts=str(host.known_hosts_path), sock_factory=fleet.lab.connect_socket) as t:
        # what the host's own `openclaw config schema` prints, run the way plan runs it (as nobody)
        res = run_script(t, config_schema_script([OC], *NOBODY), timeout=300)
        schema = host_schema(t, [OC], "2026.9.6", "openclaw", "openclaw")  # as that user (nobody if absent)
    assert res.ok, res.err_text()
    printed = user_output(res.text())
    printed_schema = json.loads(printed[printed.index("{"):])
    assert printed_schema == shipped, "the shipped schema is not what OpenClaw 2026.9.6 prints"
    assert schema == printed_schema  # host_schema read it from the host, unchanged
    assert json.loads((cache_dir("schemas") / "config.schema.2026.9.6.json").read_text()) == printed_schema
    issues = check_openclaw_config("2026.9.6", {"gateway": {"mode": "local", "inboundDedupe": {}}}, schema=schema)
    assert [i.path for i in issues] == [("gateway", "inboundDedupe")]


def test_invalid_instances_are_refused_before_any_host_is_touched(fleet: Fleet) -> None:
    doc = fleet_doc()
    doc["hosts"]["gw-2"]["instances"] = {
        "main": {"port": 18789},
        "rescue": {"port": 19789, "state_dir": "~/.openclaw-main"},  # two gateways on one state dir
        "ops": {"port": 20789, "config": {"gateway": {"mode": "remote"}}},  # not a local gateway
    }
    inv = fleet.write(doc, "broken.yaml")
    before = fleet.hosts["gw-2"].run("find /home/openclaw /etc/systemd/system -newer /etc/hostname | sort").stdout
    r = fleet.provision("apply", inv, "--yes")
    assert r.returncode == 1
    assert re.search(r"broken\.yaml:\d+:\d+: error: gw-2/rescue state dir /home/openclaw/\.openclaw-main is the "
                     r"same path as gw-2/main's state dir", r.stderr), r.stderr
    assert re.search(r"broken\.yaml:\d+:\d+: error: gw-2/ops: config gateway\.mode = 'remote'", r.stderr)
    after = fleet.hosts["gw-2"].run("find /home/openclaw /etc/systemd/system -newer /etc/hostname | sort").stdout
    assert before == after


# --- OpenClaw's own judges, run on every instance the way its gateway runs -------------------------------------

def as_gateway(host: LabHost, unit: str, args: list[str]) -> tuple[int, str, str]:
    """The OpenClaw CLI run as the gateway's service user with exactly the running gateway's environment (read
    from /proc/PID/environ), so it sees what the gateway sees: its env file's secrets, its paths, its PATH."""
    pid = host.run(["systemctl", "show", "-p", "MainPID", "--value", unit]).stdout.strip()
    env = [v for v in host.read_file(f"/proc/{pid}/environ").decode().split("\0") if v]
    profile = unit.removeprefix("openclaw-gateway-").removesuffix(".service")
    r = host.run(["runuser", "-u", "openclaw", "--", "env", "-i", *env, OC, "--profile", profile, *args],
                 check=False, timeout=240)
    return r.returncode, r.stdout, r.stderr


def first_json(text: str) -> dict[str, Any]:
    doc, _ = json.JSONDecoder().raw_decode(text, text.index("{"))  # node's notes may follow the document
    assert isinstance(doc, dict)
    return doc


def test_openclaws_own_judges_pass_on_every_instance(fleet: Fleet) -> None:
    """doctor --lint: no error, no gateway-auth; secrets audit --check: exit 0; gateway status --deep: its service
    audit passes (configAudit.ok). Every instance is checked before the verdict, and every failure is named."""
    failures: list[str] = []
    for name, host in fleet.hosts.items():
        for unit in UNITS:
            where = f"{name}/{unit}"
            rc, out, err = as_gateway(host, unit, ["doctor", "--lint", "--json"])
            lint = first_json(out)
            print(f"{where}: doctor --lint exit {rc}: "
                  f"{[(f['severity'], f['checkId']) for f in lint['findings']]}")
            failures += [f"{where}: doctor {f['severity']} {f['checkId']}: {f['message']}" for f in lint["findings"]
                         if f["severity"] == "error" or f["checkId"] == "core/doctor/gateway-auth"]
            rc, out, err = as_gateway(host, unit, ["secrets", "audit", "--check", "--json"])
            if rc != 0:
                failures.append(f"{where}: secrets audit --check exit {rc}: {first_json(out).get('findings')}")
            rc, out, err = as_gateway(host, unit, ["gateway", "status", "--deep", "--json"])
            audit = (first_json(out).get("service") or {}).get("configAudit") or {}
            print(f"{where}: gateway status --deep: configAudit {audit}")
            if audit.get("ok") is not True:
                failures.append(f"{where}: gateway status --deep: service.configAudit {audit}")
    assert not failures, "\n".join(failures)


def test_status_shows_openclaws_findings_by_severity_and_check_and_all_of_them_in_json(fleet: Fleet) -> None:
    inv = fleet.write(fleet_doc())
    r = fleet.provision("status", inv, "--json")
    doc = json.loads(r.stdout)
    host = fleet.hosts["gw-1"]
    _, out, _ = as_gateway(host, UNITS[0], ["doctor", "--lint", "--json"])
    direct = sorted((f["severity"], f["checkId"], f["message"]) for f in first_json(out)["findings"])
    row = next(i for i in doc["instances"] if (i["host"], i["instance"]) == ("gw-1", "main"))
    assert row["doctor"]["error"] is None
    assert sorted((f["severity"], f["checkId"], f["message"]) for f in row["doctor"]["findings"]) == direct
    assert all(set(f) >= {"checkId", "severity", "message", "path", "fixHint"} for f in row["doctor"]["findings"])
    for i in doc["instances"]:
        assert i["doctor"]["ok"] is not None, i  # doctor answered on every instance
    r = fleet.provision("status", inv)
    table = r.stdout.splitlines()
    assert "DOCTOR" in table[0]
    for sev, check, message in direct:
        assert f"gw-1/main: doctor {sev} {check}: {message[:160]}" in table, r.stdout
    assert ("no findings" if not direct else f"{sum(1 for d in direct if d[0] == direct[0][0])} {direct[0][0]}") \
        in next(ln for ln in table if ln.startswith("gw-1") and " main " in ln)


# --- backups (issue 15): OpenClaw's own archive of each instance, pulled to the controller ----------------------

STATE_MARK = "/home/openclaw/.openclaw-main/notes/before-backup.txt"  # made in gw-1/main's state before the backup


def test_backup_pulls_one_verified_archive_per_instance_and_keeps_the_newest(
        fleet: Fleet, openclaw_install: OpenClawInstall) -> None:
    """4 archives from 2 hosts x 2 instances, each accepted by `openclaw backup verify` on the controller, with
    its size and sha256; files 0600 in 0700 directories; nothing left on the hosts; --keep 1 removed an older one."""
    fleet.hosts["gw-1"].write_file(STATE_MARK, "made before the backup\n", mode=0o600, owner="openclaw:openclaw")
    out = fleet.workdir / "backups"
    older = out / "gw-2" / "rescue" / "older.tar.gz"
    older.parent.mkdir(parents=True)
    older.write_bytes(b"an older archive")
    os.utime(older, (1_000_000, 1_000_000))
    t0 = time.monotonic()
    r = fleet.provision("backup", fleet.write(fleet_doc()), "--out", str(out), "--keep", "1", "--json")
    print(f"provision backup, 2 hosts x 2 instances: {time.monotonic() - t0:.1f} s")
    assert r.returncode == 0, r.stdout + r.stderr
    doc = json.loads(r.stdout)
    assert doc["format"] == "openclaw-provisioner-backup/1" and doc["summary"]["ok"] == 4
    assert {(a["host"], a["instance"]) for a in doc["archives"]} == {(h, i) for h in fleet.hosts for i in
                                                                    ("main", "rescue")}
    assert not older.exists()
    assert [a["pruned"] for a in doc["archives"] if a["pruned"]] == [[str(older)]]
    scratch = fleet.workdir / "verify-home"
    scratch.mkdir(exist_ok=True)
    env = openclaw_install.env(scratch, scratch / "state", scratch / "state" / "openclaw.json")
    for a in doc["archives"]:
        p = Path(a["path"])
        assert p.parent == out / a["host"] / a["instance"]
        assert stat.S_IMODE(p.stat().st_mode) == 0o600 and stat.S_IMODE(p.parent.stat().st_mode) == 0o700
        data = p.read_bytes()
        assert len(data) == a["size"] and hashlib.sha256(data).hexdigest() == a["sha256"]
        v = openclaw_install.run(["backup", "verify", str(p), "--json"], env, timeout=180)
        assert v.returncode == 0 and first_json(v.stdout)["ok"] is True, v.stdout + v.stderr
    for host in fleet.hosts.values():
        assert host.run("ls -A /home/openclaw/.openclaw-provisioner/backups").stdout == ""  # pulled, then removed


def test_pulling_an_archive_never_reads_what_the_service_user_links_or_plants_there(fleet: Fleet) -> None:
    """The attack, as the service user on a real host: where an archive is to be read back, it plants a link to
    /etc/shadow, a FIFO, or a hard link attempt. The pull (run as root, reading as the user) gives none of it."""
    from provisioner.remote.scripts.backups import read_archive_script

    host = fleet.hosts["gw-2"]
    d = "/home/openclaw/.openclaw-provisioner/backups/main.attack"
    host.run(f"mkdir -p {d} && ln -sf /etc/shadow {d}/link.tar.gz && mkfifo {d}/fifo.tar.gz", user="openclaw")
    linked = host.run(f"ln /etc/shadow {d}/hard.tar.gz", user="openclaw", check=False)
    names = ["link.tar.gz", "fifo.tar.gz"] + (["hard.tar.gz"] if linked.returncode == 0 else [])
    for name in names:
        t0 = time.monotonic()
        r = host.run(["/bin/sh", "-s"], input=read_archive_script("openclaw", "openclaw", f"{d}/{name}"),
                     check=False, text=False, timeout=60)
        assert r.returncode != 0 and b"root:" not in r.stdout, (name, r.stdout[:200], r.stderr)
        assert time.monotonic() - t0 < 30
    host.run(f"rm -rf {d}", user="openclaw")


def test_restore_moves_an_instance_onto_another_host_with_its_state_and_the_targets_own_token(fleet: Fleet) -> None:
    """gw-1/main's archive onto gw-2/main (an evacuation): ready again, the file made in gw-1's state before the
    backup is there, gw-2's own config and token stay, its previous state dir is moved aside, not deleted."""
    inv = fleet.write(fleet_doc())
    out = fleet.workdir / "restore-src"
    fleet.hosts["gw-1"].write_file(STATE_MARK, "made before the backup\n", mode=0o600, owner="openclaw:openclaw")
    r = fleet.provision("backup", inv, "--limit", "gw-1/main", "--out", str(out), "--json")
    assert r.returncode == 0, r.stdout + r.stderr
    [archive] = [a["path"] for a in json.loads(r.stdout)["archives"]]
    g2 = fleet.hosts["gw-2"]
    state = "/home/openclaw/.openclaw-main"
    own = {f: g2.read_file(f"{state}/{f}") for f in ("openclaw.json", "gateway.env", "gateway.auth.env")}
    assert not g2.exists(STATE_MARK)
    t0 = time.monotonic()
    r = fleet.provision("restore", inv, archive, "gw-2/main", "--json")
    print(f"provision restore onto gw-2/main: {time.monotonic() - t0:.1f} s")
    assert r.returncode == 0, r.stdout + r.stderr
    doc = json.loads(r.stdout)
    assert doc["ready"] is True and doc["target"] == "gw-2/main"
    assert readyz(g2, 18789) == "200"
    assert g2.read_file(STATE_MARK) == b"made before the backup\n"  # the moved instance's state
    assert {f: g2.read_file(f"{state}/{f}") for f in own} == own  # gw-2's own config, env file and token
    assert doc["aside"].startswith(f"{state}.ocp-replaced-") and g2.exists(f"{doc['aside']}/openclaw.json")
    assert not g2.exists(f"{doc['aside']}/notes/before-backup.txt")
    assert g2.run("ls /var/lib/openclaw-provisioner/incoming/").stdout.strip() in ("", "lab")  # pushed copy gone


def test_a_state_restore_as_the_user_cannot_be_steered_into_roots_files(fleet: Fleet) -> None:
    """The attack, as the service user: its working area `~/.openclaw-provisioner` becomes a link to /root, and
    the staging dir a link to /etc. The restore (run by root, every step as the user) fails and writes nothing
    there."""
    from provisioner.remote.scripts.state_restore import restore_state_script
    from provisioner.validate import validate_text

    host = fleet.hosts["gw-2"]
    v = validate_text(Path(fleet.write(fleet_doc())).read_text(), "inv.yaml", check_configs=False)
    assert v.inventory is not None
    inst = next(i for i in v.inventory.host("gw-2").instances if i.name == "rescue")
    before = host.run("ls -la /root /etc | md5sum").stdout
    host.run("mv /home/openclaw/.openclaw-provisioner /home/openclaw/.ocp-saved 2>/dev/null; "
             "ln -s /root /home/openclaw/.openclaw-provisioner", user="openclaw")
    try:
        script = restore_state_script([(inst, "/etc/shadow", inst.state_dir, "/etc/ocp-aside",
                                         "/home/openclaw/.openclaw-provisioner/restore.rescue.x")],
                                      ("/opt/openclaw/current/bin/openclaw",))
        r = host.run(["/bin/sh", "-s"], input=script, check=False, timeout=300)
        assert "OCP-STATE-RESTORED" not in r.stdout, r.stdout
        assert host.run("ls -la /root /etc | md5sum").stdout == before
        assert host.exists(f"{inst.state_dir}/openclaw.json")  # its live state dir was not moved
    finally:
        host.run("rm -f /home/openclaw/.openclaw-provisioner; mv /home/openclaw/.ocp-saved "
                 "/home/openclaw/.openclaw-provisioner 2>/dev/null; true", user="openclaw")
