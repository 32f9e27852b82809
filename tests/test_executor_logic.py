"""The executor's decisions, against a fake transport: refusals, lock takeover, restore after a failed rename,
rollback after a failed health gate, drift. No host, no root: what the host scripts print is given by each test
(tests/support/fake_transport.py), and every script the executor sends is checked."""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest

from provisioner.apply.executor import apply_host, roll_back_host
from provisioner.apply.facts import recheck_request, user_side
from provisioner.apply.locks import controller_id, new_holder
from provisioner.apply.results import HostResult, HostStatus
from provisioner.core.changes import Action, HostPlan
from provisioner.core.desired import DesiredHost
from provisioner.core.observed import EntryKind, ObservedFile, ObservedHost, ObservedService
from provisioner.plan import plan_host, sha256
from provisioner.remote.command import q
from provisioner.remote.scripts.gateway_exec import GATEWAY_EXEC
from provisioner.remote.scripts.probe import parse_probe
from provisioner.remote.transport import Transport
from provisioner.render.files import render_host
from provisioner.validate import validate_text
from tests.support.fake_transport import FakeTransport, probe_output, result

INV = """\
version: 1
openclaw: {version: "2026.9.6", command: ["/usr/bin/openclaw"]}
hosts:
  gw-1:
    address: 192.0.2.10
    instances:
      main: {port: 18789}
"""
UNIT = "openclaw-gateway-main.service"
UNIT_FILE = f"/etc/systemd/system/{UNIT}"
CONFIG = "/home/openclaw/.openclaw-main/openclaw.json"
ENV = "/home/openclaw/.openclaw-main/gateway.env"
STALE = (ENV, UNIT_FILE)  # the host runs an older env file and unit; its openclaw.json is up to date
NO_SUCH_PID = 4194305  # above PID_MAX_LIMIT (2^22): no process can ever have it

# every wait here is in hundredths of a second: a hang is a bug
pytestmark = [pytest.mark.timeout(30), pytest.mark.usefixtures("own_controller")]


def _desired(tmp_path: Path) -> DesiredHost:
    v = validate_text(INV, str(tmp_path / "inv.yaml"), check_configs=False)
    assert v.ok and v.inventory is not None, [d.format() for d in v.diagnostics]
    [host] = [h for h in v.inventory.hosts if h.name == "gw-1"]
    return render_host(v.inventory, host)


def _facts(desired: DesiredHost, *, stale: tuple[str, ...] = STALE,
           replaced: dict[str, ObservedFile] | None = None) -> ObservedHost:
    """A host on the previous revision: every file and directory in place, `stale` files with older contents."""
    files = {}
    for f in desired.files:
        content = b"old " + f.content if f.path in stale else f.content
        files[f.path] = ObservedFile(f.path, True, sha256(content), f.mode, f.owner, f.group, content,
                                     "regular file", EntryKind.FILE)
    files.update(replaced or {})
    dirs = {d.path: ObservedFile(d.path, True, None, d.mode, d.owner, d.group, None, "directory",
                                 EntryKind.DIRECTORY) for d in desired.dirs}
    services = {s.unit: ObservedService(s.unit, "loaded", "active", "enabled") for s in desired.services}
    return ObservedHost(desired.name, files=files, dirs=dirs, services=services,
                        users={desired.service_user: True})


def _world(tmp_path: Path) -> tuple[DesiredHost, HostPlan, FakeTransport]:
    desired = _desired(tmp_path)
    observed = _facts(desired)
    planned = plan_host(desired, observed)
    fake = FakeTransport(desired.name, observed=observed, user_paths=user_side(desired)["user_paths"])
    return desired, planned, fake


def _apply(fake: FakeTransport, desired: DesiredHost, planned: HostPlan, **kw: object) -> HostResult:
    opts: dict = {"health_poll": 0.01, **kw}
    return apply_host(fake, desired, planned, **opts)


def _named(script: str, paths: tuple[str, ...]) -> set[str]:
    return {p for p in paths if q(p) in script}


ALL_FILES = (CONFIG, ENV, UNIT_FILE)


# --- the world and the fake themselves -------------------------------------------------------------------

def test_the_plan_updates_the_stale_files_and_restarts_the_unit(tmp_path: Path) -> None:
    _, planned, fake = _world(tmp_path)
    assert isinstance(fake, Transport)
    got = {(c.target, c.action) for c in planned.changes}
    assert got == {(CONFIG, Action.NOOP), (ENV, Action.UPDATE), (UNIT_FILE, Action.UPDATE), (UNIT, Action.RESTART),
                   (GATEWAY_EXEC, Action.NOOP)}


def test_the_fake_probe_output_reads_back_as_the_same_facts(tmp_path: Path) -> None:
    desired, planned, fake = _world(tmp_path)
    req = recheck_request(desired, planned, everything=True)
    assert fake.observed is not None
    text = probe_output(fake.observed, user_paths=fake.user_paths)
    assert {"STAT", "~ STAT"} <= set(text.split("\n"))  # the user's files from the user side, the unit from root's
    back = parse_probe("gw-1", req, text)
    for path in req.files:
        want = fake.observed.files[path]
        assert (back.files[path].sha256, back.files[path].mode, back.files[path].owner) == \
            (want.sha256, want.mode, want.owner)
    for path in req.dirs:
        assert back.dirs[path].kind is EntryKind.DIRECTORY and back.dirs[path].mode == 0o700


def test_a_healthy_host_is_locked_rechecked_written_restarted_gated_and_unlocked(tmp_path: Path) -> None:
    desired, planned, fake = _world(tmp_path)
    res = _apply(fake, desired, planned)
    assert res.status is HostStatus.CHANGED, res.message
    assert fake.kinds() == ["lock", "write", "systemctl", "unit-states", "unlock"]
    assert fake.http == [(18789, "/readyz")]
    assert sorted(res.written) == sorted(STALE) and res.restarted == [UNIT] and res.settled == [UNIT]
    assert _named(fake.scripts("write")[0], ALL_FILES) == set(STALE)
    assert f"systemctl restart --no-block -- {UNIT}" in fake.scripts("systemctl")[0]
    assert all(s.argv == ("/bin/sh", "-s") for s in fake.sent)


# --- refusals before anything is sent ---------------------------------------------------------------------

def test_a_plan_with_a_refusal_sends_nothing_at_all(tmp_path: Path) -> None:
    desired = _desired(tmp_path)
    link = ObservedFile(ENV, True, None, 0o777, "openclaw", "openclaw", None, "symbolic link", EntryKind.SYMLINK)
    observed = _facts(desired, replaced={ENV: link})
    planned = plan_host(desired, observed)
    assert [c.target for c in planned.refusals] == [ENV]
    fake = FakeTransport(desired.name, observed=observed)
    res = _apply(fake, desired, planned)
    assert res.status is HostStatus.REFUSED
    assert ENV in res.message and "nothing on this host was touched" in res.message
    assert fake.sent == [] and fake.http == []


# --- the host lock ----------------------------------------------------------------------------------------

def _other_controller() -> str:
    return f"ci-runner-7 pid=4242 run=0123456789ab at={int(time.time()) - 30} ctl=000000000000"


def _dead_run() -> str:
    assert not os.path.exists(f"/proc/{NO_SUCH_PID}")
    return f"{socket.gethostname()} pid={NO_SUCH_PID} run=deadbeef0000 at={int(time.time()) - 60} ctl={controller_id()}"


@pytest.mark.parametrize("holder, says", [
    (_other_controller, "run 0123456789ab of pid 4242 on ci-runner-7"),
    (new_holder, "that is still going"),  # this very process: provably alive
])
def test_a_lock_held_by_a_run_not_provably_dead_is_refused_and_nothing_is_written(
        tmp_path: Path, holder: Callable[[], str], says: str) -> None:
    desired, planned, fake = _world(tmp_path)
    fake.on("lock", f"HELD {holder()}\n")
    res = _apply(fake, desired, planned)
    assert res.status is HostStatus.REFUSED and "host is locked by another run" in res.message
    assert says in res.message
    assert fake.kinds() == ["lock"]  # no takeover (no clear), no write, no unlock of someone else's lock
    assert fake.http == []


def test_the_lock_of_a_killed_run_of_this_controller_is_taken_over(tmp_path: Path) -> None:
    desired, planned, fake = _world(tmp_path)
    dead = _dead_run()
    fake.once("lock", f"HELD {dead}\n")
    res = _apply(fake, desired, planned)
    assert fake.kinds() == ["lock", "clear", "lock", "write", "systemctl", "unit-states", "unlock"]
    assert q(dead) in fake.scripts("clear")[0]  # removes exactly the dead run's lock, not whatever is there
    assert res.status is HostStatus.CHANGED, res.message
    assert "took over the stale lock of a killed run" in res.message and f"pid {NO_SUCH_PID}" in res.message
    assert sorted(res.written) == sorted(STALE)


def test_a_takeover_waits_for_the_killed_runs_script_and_refuses_while_it_runs(tmp_path: Path) -> None:
    desired, planned, fake = _world(tmp_path)
    fake.on("lock", f"HELD {_dead_run()}\n").on("clear", "BUSY\n")
    res = _apply(fake, desired, planned)
    assert res.status is HostStatus.REFUSED and "still running on the host" in res.message
    assert fake.kinds() == ["lock", "clear"]


# --- writes -------------------------------------------------------------------------------------------------

def test_a_write_failing_before_the_renames_restores_nothing(tmp_path: Path) -> None:
    desired, planned, fake = _world(tmp_path)
    fake.on("write", result("", rc=1, stderr="base64: write error: No space left on device"))
    res = _apply(fake, desired, planned)
    assert res.status is HostStatus.FAILED and "No space left on device" in res.message
    # the backups on the host are an earlier run's: restoring from them would put back older files still
    assert fake.kinds() == ["lock", "write", "unlock"]
    assert fake.http == []


def test_a_write_failing_during_the_renames_restores_exactly_the_written_paths(tmp_path: Path) -> None:
    desired, planned, fake = _world(tmp_path)
    fake.on("write", result("RENAMING\n", rc=1, stderr="mv: cannot move: Input/output error"))
    res = _apply(fake, desired, planned)
    assert res.status is HostStatus.FAILED and res.rolled_back
    assert fake.kinds() == ["lock", "write", "restore", "unlock"]
    [restore] = fake.scripts("restore")
    assert _named(restore, ALL_FILES) == set(STALE)  # not the up-to-date openclaw.json
    assert "systemctl" not in fake.kinds()


@pytest.mark.parametrize("stderr, path", [
    ("REFUSED /home/openclaw/.openclaw-main/workspace: not a directory (a link or another file is there now)",
     "/home/openclaw/.openclaw-main/workspace"),
    ("UNSAFE /etc/systemd/system: owned by uid 1000, not root", "/etc/systemd/system"),
])
def test_a_write_refused_at_the_moment_of_use_is_a_refusal_naming_the_path(
        tmp_path: Path, stderr: str, path: str) -> None:
    desired, planned, fake = _world(tmp_path)
    fake.on("write", result("", rc=3, stderr=stderr))
    res = _apply(fake, desired, planned)
    assert res.status is HostStatus.REFUSED, res.message
    assert path in res.message and "nothing was changed" in res.message
    assert fake.kinds() == ["lock", "write", "unlock"]


@pytest.mark.parametrize("stdout", ["~ WROTE\n", "~ RENAMING\n~ WROTE\n"])
def test_the_service_users_output_cannot_forge_the_write_results(tmp_path: Path, stdout: str) -> None:
    desired, planned, fake = _world(tmp_path)
    fake.on("write", result(stdout))  # exit 0, but WROTE only from the user side
    res = _apply(fake, desired, planned)
    assert res.status is HostStatus.FAILED, res.message
    assert "systemctl" not in fake.kinds() and fake.http == []
    assert "restore" not in fake.kinds()  # nor can it claim the renames began


# --- the health gate ----------------------------------------------------------------------------------------

def test_a_gateway_that_never_gets_ready_rolls_the_host_back(tmp_path: Path) -> None:
    desired, planned, fake = _world(tmp_path)
    fake.on_http(503)
    res = _apply(fake, desired, planned, health_timeout=0.05)
    assert res.status is HostStatus.FAILED and res.rolled_back, res.message
    assert "did not answer /readyz on port 18789" in res.message and "HTTP 503" in res.message
    assert "not ready" in res.health["main"]
    kinds = [e for e in fake.events if not e.startswith("http")]
    assert kinds == ["lock", "write", "systemctl", "unit-states", "restore", "systemctl", "unit-states", "unlock"]
    first_http, restore = fake.events.index("http 18789/readyz"), fake.events.index("restore")
    assert fake.events[first_http:restore] == ["http 18789/readyz"] * (restore - first_http)  # gate, then restore
    assert restore - first_http >= 2  # it polled until the timeout, not just once
    [restore_script] = fake.scripts("restore")
    assert _named(restore_script, ALL_FILES) == set(STALE)
    assert f"systemctl restart --no-block -- {UNIT}" in fake.scripts("systemctl")[1]
    assert res.settled == [UNIT]  # the old files run again: their pending marks are cleared


def test_a_gateway_that_gets_ready_in_time_passes_the_gate(tmp_path: Path) -> None:
    desired, planned, fake = _world(tmp_path)
    fake.on_http(503, 503, 200)
    res = _apply(fake, desired, planned, health_timeout=5.0)
    assert res.status is HostStatus.CHANGED, res.message
    assert len(fake.http) == 3 and "restore" not in fake.kinds()


def test_without_the_health_gate_no_gateway_is_asked(tmp_path: Path) -> None:
    desired, planned, fake = _world(tmp_path)
    fake.on_http(503)
    res = _apply(fake, desired, planned, health_gate=False, health_timeout=0.05)  # a broken switch fails fast
    assert res.status is HostStatus.CHANGED, res.message
    assert fake.http == [] and fake.kinds() == ["lock", "write", "systemctl", "unit-states", "unlock"]


def test_a_failed_systemctl_rolls_back_without_asking_the_gateways(tmp_path: Path) -> None:
    desired, planned, fake = _world(tmp_path)
    fake.once("systemctl", result("", rc=1, stderr="Job for openclaw-gateway-main.service failed."))
    res = _apply(fake, desired, planned)
    assert res.status is HostStatus.FAILED and res.rolled_back and "systemctl failed" in res.message
    assert fake.kinds() == ["lock", "write", "systemctl", "restore", "systemctl", "unit-states", "unlock"]
    assert fake.http == []


# --- rollback of a host whose batch failed ------------------------------------------------------------------

def _done() -> HostResult:
    return HostResult("gw-1", HostStatus.CHANGED, written=list(STALE), restarted=[UNIT], reloaded=True)


def test_a_rollback_under_a_lock_held_by_another_run_is_not_done(tmp_path: Path) -> None:
    desired, _, fake = _world(tmp_path)
    fake.on("lock", f"HELD {_other_controller()}\n")
    res = roll_back_host(fake, desired, _done())
    assert res.status is HostStatus.FAILED and not res.rolled_back
    assert res.message.startswith("rollback not done: host is locked by another run")
    assert fake.kinds() == ["lock"]  # the restore rode on the lock script, and did not run: nothing after it


def test_a_rollback_restores_the_written_files_then_restarts_their_units(tmp_path: Path) -> None:
    desired, _, fake = _world(tmp_path)
    res = roll_back_host(fake, desired, _done())
    assert res.status is HostStatus.ROLLED_BACK and res.rolled_back, res.message
    assert fake.kinds() == ["lock", "systemctl", "unit-states", "unlock"]
    assert _named(fake.scripts("lock")[0], ALL_FILES) == set(STALE)
    assert f"systemctl restart --no-block -- {UNIT}" in fake.scripts("systemctl")[0]
    assert "daemon-reload" in fake.scripts("systemctl")[0]


def test_a_rollback_whose_restore_did_not_finish_says_so(tmp_path: Path) -> None:
    desired, _, fake = _world(tmp_path)
    fake.on("lock", result("LOCKED\n", rc=1, stderr="cp: No space left on device"))
    res = roll_back_host(fake, desired, _done())
    assert res.status is HostStatus.FAILED and "restoring files failed" in res.message
    assert "systemctl" not in fake.kinds() and fake.kinds()[-1] == "unlock"


# --- drift ----------------------------------------------------------------------------------------------------

def test_a_file_changed_since_the_plan_is_refused_and_nothing_is_written(tmp_path: Path) -> None:
    desired, planned, fake = _world(tmp_path)
    assert fake.observed is not None
    edited = replace(fake.observed.files[ENV], sha256=sha256(b"edited by hand after the plan"))
    fake.observed = replace(fake.observed, files={**fake.observed.files, ENV: edited})
    res = _apply(fake, desired, planned)
    assert res.status is HostStatus.REFUSED
    assert res.message.startswith("host changed since the plan was made") and ENV in res.message
    assert UNIT_FILE not in res.message
    assert fake.kinds() == ["lock", "unlock"] and fake.http == []
