"""The health gate's decisions and the watched restarts, against the fake transport (tests/support/fake_transport.py).

The JSON the fake gateway answers is what the real OpenClaw 2026.9.6 printed in the systemd lab for a Telegram
channel whose API cannot be reached (`channels status --probe --json`, trimmed) and what `/readyz` answered.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from provisioner.apply.executor import apply_host
from provisioner.apply.facts import user_side
from provisioner.apply.readiness import ProbeReport, failing_of, probe_report
from provisioner.apply.restarts import run_restarts, span_seconds
from provisioner.apply.results import HostResult, HostStatus
from provisioner.core.desired import DesiredHost
from provisioner.core.observed import EntryKind, ObservedFile, ObservedHost, ObservedService
from provisioner.plan import plan_host, sha256
from provisioner.remote.transport import HttpResponse
from provisioner.render.files import render_host
from provisioner.validate import validate_text
from tests.support.fake_transport import FakeTransport, result, unit_states

pytestmark = [pytest.mark.timeout(30), pytest.mark.usefixtures("own_controller")]

TOKEN = "123456789:AAfake-token-value"
INV = """\
version: 1
openclaw: {version: "2026.9.6", command: ["/usr/bin/openclaw"]}
hosts:
  gw-1:
    address: 192.0.2.10
    instances:
      main:
        port: 18789
        stop_timeout: 30
        config:
          channels:
            telegram: {enabled: true, botToken: {source: env, provider: default, id: TELEGRAM_BOT_TOKEN}}
        secrets: {TELEGRAM_BOT_TOKEN: {env: TG}}
"""
UNIT = "openclaw-gateway-main.service"
READY = HttpResponse(200, b'{"ready":true,"failing":[],"uptimeMs":15903}')
STARTING = HttpResponse(503, b'{"ready":false,"failing":["startup-sidecars"],"uptimeMs":2255}')
BROKEN = HttpResponse(503, b'{"ready":false,"failing":["telegram"],"uptimeMs":126599}')
ENETUNREACH = "fetch failed | connect ENETUNREACH 149.154.167.220:443 - Local (0.0.0.0:0) | ENETUNREACH"


def probe_json(ok: bool, error: str = ENETUNREACH) -> str:
    probe = {"ok": True, "status": 200, "elapsedMs": 40} if ok else {"ok": False, "status": None, "error": error,
                                                                        "elapsedMs": 2008}
    return json.dumps({"channelOrder": ["telegram"], "channels": {"telegram": {"configured": True, "running": True}},
                       "channelAccounts": {"telegram": [{"accountId": "default", "enabled": True, "configured": True,
                                                         "probe": probe, "lifecycle": "starting", "mode": "polling",
                                                         "connected": ok}]}}, indent=2)


UNREACHABLE_CLI = json.dumps({"gatewayReachable": False, "configOnly": True,
                              "error": "gateway channels.status requires credentials before opening a websocket\nFix:",
                              "configuredChannels": ["telegram"]})


def world(tmp_path: Path, text: str = INV) -> tuple[DesiredHost, Any, FakeTransport]:
    v = validate_text(text, str(tmp_path / "inv.yaml"), check_configs=False)
    assert v.ok and v.inventory is not None, [d.format() for d in v.diagnostics]
    desired = render_host(v.inventory, v.inventory.hosts[0], lambda ref: TOKEN)
    files = {f.path: ObservedFile(f.path, True, sha256(b"old"), f.mode, f.owner, f.group, b"old", "regular file",
                                  EntryKind.FILE) for f in desired.files}
    dirs = {d.path: ObservedFile(d.path, True, None, d.mode, d.owner, d.group, None, "directory",
                                 EntryKind.DIRECTORY) for d in desired.dirs}
    observed = ObservedHost(desired.name, files=files, dirs=dirs, users={desired.service_user: True},
                            services={s.unit: ObservedService(s.unit, "loaded", "active", "enabled")
                                      for s in desired.services})
    fake = FakeTransport(desired.name, observed=observed, user_paths=user_side(desired)["user_paths"])
    return desired, plan_host(desired, observed), fake


class Probe:
    """Stands in for `health.channel_probe`: what each instance's `channels status --probe --json` printed."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.asked: list[list[str]] = []

    def __call__(self, names: Any) -> dict[str, ProbeReport]:
        self.asked.append(list(names))
        return {n: probe_report(self.text) for n in names}


def gate(fake: FakeTransport, desired: DesiredHost, planned: Any, progress: list[tuple[str, str]] | None = None,
         **kw: Any) -> HostResult:
    said = progress if progress is not None else []
    return apply_host(fake, desired, planned, health_poll=0.01, progress=lambda h, m: said.append((h, m)), **kw)


# --- what OpenClaw says, read as data ------------------------------------------------------------------------

def test_the_failing_list_is_read_from_the_readyz_body_and_nothing_else_passes_for_it() -> None:
    assert failing_of(BROKEN.body) == ("telegram",)
    assert failing_of(READY.body) == ()
    assert failing_of(b"<html>busy</html>") == () and failing_of(b'{"failing": "telegram"}') == ()
    assert failing_of(b'{"failing": ["a\\nFAKE LINE", 3]}') == ("a FAKE LINE",)  # one line, strings only


def test_the_probe_report_names_the_channel_that_cannot_connect_and_why() -> None:
    report = probe_report("~ noise before the JSON\n" + probe_json(False))
    [bad] = report.failed(["telegram"])
    assert bad.channel == "telegram" and "ENETUNREACH" in bad.detail and "account default" in bad.detail
    assert not report.proven(["telegram"])
    fine = probe_report(probe_json(True))
    assert fine.proven(["telegram"]) and fine.failed(["telegram"]) == []
    unreachable = probe_report(UNREACHABLE_CLI)
    assert unreachable.failed(["telegram"]) == [] and not unreachable.proven(["telegram"])
    assert "could not ask the gateway" in unreachable.problem
    assert "printed no JSON" in probe_report("Error: boom").problem


# --- the gate ------------------------------------------------------------------------------------------------

def test_a_channel_that_fails_its_probe_fails_the_host_at_once_named_and_rolled_back(tmp_path: Path) -> None:
    desired, planned, fake = world(tmp_path)
    fake.on_http(STARTING, READY)
    probe = Probe(probe_json(False, error=f"getMe https://api.telegram.org/bot{TOKEN}/getMe: ENETUNREACH"))
    t0 = time.monotonic()
    res = gate(fake, desired, planned, channel_probe=probe, settle=130.0)
    assert time.monotonic() - t0 < 10  # failed by the probe, not after settling
    assert res.status is HostStatus.FAILED and res.rolled_back, res.message
    assert "main: channel telegram cannot connect" in res.message and "ENETUNREACH" in res.message
    assert res.failing == {"main": ["telegram"]}
    assert TOKEN not in res.message + res.health["main"] and "bot***/getMe" in res.message
    assert probe.asked == [["main"]]
    assert fake.kinds().count("restore") == 1 and fake.kinds()[-1] == "unlock"
    assert res.settled == [UNIT]


def test_channels_that_pass_the_probe_pay_no_settle_time(tmp_path: Path) -> None:
    desired, planned, fake = world(tmp_path)
    fake.on_http(READY)
    said: list[tuple[str, str]] = []
    t0 = time.monotonic()
    res = gate(fake, desired, planned, said, channel_probe=Probe(probe_json(True)), settle=130.0)
    assert time.monotonic() - t0 < 10
    assert res.status is HostStatus.CHANGED, res.message
    assert "channels telegram passed the live probe" in res.health["main"]
    assert len(fake.http) == 1 and not [m for _, m in said if getattr(m, "kind", "") == "settling"]


def test_a_gateway_without_channels_is_not_probed_and_does_not_settle(tmp_path: Path) -> None:
    desired, planned, fake = world(tmp_path, INV.split("        config:")[0])
    fake.on_http(READY)
    probe = Probe(probe_json(False))
    res = gate(fake, desired, planned, channel_probe=probe, settle=130.0)
    assert res.status is HostStatus.CHANGED and probe.asked == [] and len(fake.http) == 1


def test_an_unproven_channel_is_watched_for_its_settle_time_and_a_late_503_names_it(tmp_path: Path) -> None:
    desired, planned, fake = world(tmp_path)
    fake.on_http(READY, READY, BROKEN)
    said: list[tuple[str, str]] = []
    res = gate(fake, desired, planned, said, channel_probe=Probe(UNREACHABLE_CLI), settle=60.0)
    assert res.status is HostStatus.FAILED and res.rolled_back
    assert "stopped being ready while settling" in res.message and "HTTP 503 (failing: telegram)" in res.message
    assert res.failing == {"main": ["telegram"]}
    [settling] = [m for _, m in said if getattr(m, "kind", "") == "settling"]
    assert settling.fields["instances"] == ["main"] and 55 <= settling.fields["seconds"] <= 60  # type: ignore[attr-defined]


def test_the_instances_own_settle_wins_and_a_gateway_still_ready_after_it_passes(tmp_path: Path) -> None:
    desired, planned, fake = world(tmp_path, INV.replace("stop_timeout: 30", "stop_timeout: 30\n        health: "
                                                         "{channels: readyz, settle: 0.3}"))
    fake.on_http(READY)
    probe = Probe(probe_json(False))
    res = gate(fake, desired, planned, channel_probe=probe, settle=600.0)
    assert res.status is HostStatus.CHANGED, res.message
    assert probe.asked == []  # channels: readyz asks no probe
    assert "still ready after settling" in res.health["main"] and len(fake.http) >= 2


def test_ignored_channels_do_not_fail_the_gate(tmp_path: Path) -> None:
    desired, planned, fake = world(tmp_path, INV.replace("stop_timeout: 30", "stop_timeout: 30\n        health: "
                                                         "{channels: ignore}"))
    fake.on_http(BROKEN)
    probe = Probe(probe_json(False))
    res = gate(fake, desired, planned, channel_probe=probe, settle=600.0)
    assert res.status is HostStatus.CHANGED and probe.asked == []


def test_a_gateway_that_never_gets_ready_is_reported_with_what_openclaw_named(tmp_path: Path) -> None:
    desired, planned, fake = world(tmp_path)
    fake.on_http(HttpResponse(503, b'{"ready":false,"failing":["agent-database:main"]}'))
    res = gate(fake, desired, planned, health_timeout=0.05)
    assert res.status is HostStatus.FAILED and "HTTP 503 (failing: agent-database:main)" in res.message
    assert res.failing == {"main": ["agent-database:main"]}


# --- restarts that say what they wait for --------------------------------------------------------------------

class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, s: float) -> None:
        self.now += s


def test_a_stopping_unit_is_reported_with_elapsed_time_and_its_budget_then_its_bundle(tmp_path: Path) -> None:
    desired, _, fake = world(tmp_path)
    fake.on("systemctl", result(unit_states([UNIT], "old", stop_budget="30s") + "SYSTEMCTL-OK\n"))
    fake.on("unit-states", *[unit_states([UNIT], "old", "deactivating", "stop-sigterm")] * 26,
            unit_states([UNIT], "new"))
    bundle = "/home/openclaw/.openclaw-main/logs/stability/openclaw-stability-x-81-gateway.stop_shutdown_timeout.json"
    fake.on("stop_shutdown_timeout", f"~ {bundle}\n")
    clock, said = Clock(), []
    out = run_restarts(fake, desired, lambda h, m: said.append(m), reload=False, restart=[UNIT], poll=1.0,
                       clock=clock, sleep=clock.sleep)
    assert out.failure is None and out.budgets[UNIT] == 30 and out.stopped_in[UNIT] == 26
    stopping = [m for m in said if getattr(m, "kind", "") == "stopping"]
    assert [m.fields["elapsed"] for m in stopping] == [0, 5, 10, 15, 20, 25]  # type: ignore[attr-defined]
    assert stopping[2] == f"{UNIT}: stopping (stop-sigterm), 10 s of its 30 s stop budget"
    assert [m for m in said if getattr(m, "kind", "") == "stopped"] == \
        [f"{UNIT}: stopped after 26 s of its 30 s stop budget, starting"]
    assert out.deadlines[UNIT].startswith("its stop reached the deadline (26 s of 30 s)")
    assert bundle in out.deadlines[UNIT]
    [bundle_script] = [s.script for s in fake.sent if "stop_shutdown_timeout" in s.script]
    assert "ocp_as openclaw openclaw" in bundle_script  # looked up as the service user


def test_a_quick_restart_says_nothing_and_looks_for_no_bundle(tmp_path: Path) -> None:
    desired, _, fake = world(tmp_path)
    clock, said = Clock(), []
    out = run_restarts(fake, desired, lambda h, m: said.append(m), reload=False, restart=[UNIT], clock=clock,
                       sleep=clock.sleep)
    assert out.failure is None and said == [] and out.deadlines == {}
    assert fake.kinds() == ["systemctl", "unit-states"]


def test_a_unit_that_never_comes_back_fails_after_its_budget_not_before(tmp_path: Path) -> None:
    desired, _, fake = world(tmp_path)
    fake.on("systemctl", result(unit_states([UNIT], "old", stop_budget="30s") + "SYSTEMCTL-OK\n"))
    fake.on("unit-states", unit_states([UNIT], "old", "deactivating", "stop-sigterm"))
    clock = Clock()
    out = run_restarts(fake, desired, lambda h, m: None, reload=False, restart=[UNIT], clock=clock, sleep=clock.sleep)
    assert out.failure is not None and "did not restart within its stop budget of 30 s" in out.failure
    assert 120 <= clock.now <= 122  # 30 s budget + 90 s to start


def test_a_restart_whose_job_ended_without_starting_the_unit_is_not_waited_for(tmp_path: Path) -> None:
    """A start that failed at once (a mount it requires failed) leaves no queued job and no new invocation: the
    health gate judges it now, instead of the wait running out the stop budget plus 90 s."""
    desired, _, fake = world(tmp_path)
    fake.on("systemctl", result(unit_states([UNIT], "old", stop_budget="30s") + "SYSTEMCTL-OK\n"))
    fake.on("unit-states", unit_states([UNIT], "old", job="7"), unit_states([UNIT], "old", job="7"),
            unit_states([UNIT], "old", "inactive", "dead"))
    clock = Clock()
    out = run_restarts(fake, desired, lambda h, m: None, reload=False, restart=[UNIT], poll=1.0, clock=clock,
                       sleep=clock.sleep)
    assert out.failure is None and clock.now == 2  # waited while its job was queued, not a second more


def test_blocking_stops_get_their_budgets_as_the_command_timeout(tmp_path: Path) -> None:
    desired, _, fake = world(tmp_path)
    run_restarts(fake, desired, lambda h, m: None, reload=False, restart=[], stop=[UNIT])
    [sent] = fake.sent
    assert sent.timeout is not None and sent.timeout >= 30 + 60  # its 30 s budget, and time for the rest


def test_systemd_time_spans_read_as_seconds() -> None:
    assert (span_seconds("5min 30s"), span_seconds("30s"), span_seconds("1min 500ms")) == (330, 30, 60.5)
    assert span_seconds("infinity") is None and span_seconds("") is None


# --- the settings, validated where they are written ---------------------------------------------------------

@pytest.mark.parametrize("manager", ["systemd", "systemd-user"])
def test_stop_timeout_becomes_the_units_timeoutstopsec_and_defaults_to_openclaws_330(tmp_path: Path,
                                                                                    manager: str) -> None:
    text = INV.replace("hosts:\n", f"defaults: {{service: {{manager: {manager}}}}}\nhosts:\n") \
        .replace("      main:\n", "      other: {port: 19789}\n      main:\n")
    desired, _, _ = world(tmp_path, text)
    units = {f.instance: f.content.decode() for f in desired.files if f.path.endswith(".service")}
    assert "\nTimeoutStopSec=30\n" in units["main"] and "\nTimeoutStopSec=330\n" in units["other"]
    assert {s.instance: s.stop_timeout for s in desired.services} == {"main": 30, "other": 330}


@pytest.mark.parametrize(("setting", "says"), [
    ("stop_timeout: 2", "2 is less than the minimum of 5"),
    ("stop_timeout: 30.5", "stop_timeout: expected integer, got number"),
    ("health: {channels: sometimes}", '"sometimes" is not one of "probe", "readyz", "ignore"'),
    ("health: {settle: -1}", "-1 is less than the minimum of 0"),
])
def test_a_bad_gate_or_stop_setting_is_a_located_error(tmp_path: Path, setting: str, says: str) -> None:
    text = INV.replace("        stop_timeout: 30\n", f"        {setting}\n")
    v = validate_text(text, str(tmp_path / "inv.yaml"), check_configs=False)
    [d] = [d for d in v.diagnostics if d.severity.value == "error"]
    line = text.splitlines().index(f"        {setting}") + 1
    assert d.format().startswith(f"{tmp_path / 'inv.yaml'}:{line}:") and says in d.message, d.format()


def test_a_playbook_settle_is_seconds_or_one_per_batch_with_located_errors(tmp_path: Path) -> None:
    from provisioner.apply.rollout import Playbook, settle_for
    from provisioner.core.diagnostics import ProvisionError
    from provisioner.playbook import default_playbook, load_playbook

    book = tmp_path / "book.yaml"
    book.write_text("serial: [1, 2]\nhealth_gate: {settle: [130, 10, 0]}\n")
    p = load_playbook(str(book))
    assert [settle_for(p, n) for n in (1, 2, 3, 4)] == [130, 10, 0, 0]
    assert settle_for(Playbook(settle=(5.0,)), 3) == 5
    assert [settle_for(default_playbook(), n) for n in (1, 2, 3)] == [130, 0, 0]
    book.write_text("serial: [1, 2]\nhealth_gate:\n  settle: [130, -4]\n")
    with pytest.raises(ProvisionError) as err:
        load_playbook(str(book))
    [d] = err.value.diagnostics
    assert d.format().startswith(f"{book}:3:") and "health_gate.settle" in d.message, d.format()
