"""README claims about rollouts, --limit, colour, downgrades and bind mounts, each proven without a lab host.

Through the CLI on local stand-in hosts (`connection: local`) where the README states a command's behaviour;
through the rollout driver with the real executor over fake transports (tests/support/fake_transport.py) where
the claim needs a gateway's health answers. Each test fails for the one broken behaviour its name denies.
"""

from __future__ import annotations

import functools
import os
import pty
import re
import subprocess
import threading
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from provisioner.apply import driver
from provisioner.apply.driver import Rollout
from provisioner.apply.facts import user_side
from provisioner.apply.fleet import Fleet
from provisioner.apply.results import HostStatus
from provisioner.apply.rollout import RolloutResult, batches, roll_out
from provisioner.core.changes import ChangeKind, Plan
from provisioner.core.desired import DesiredHost
from provisioner.core.observed import EntryKind, ObservedFile, ObservedHost, ObservedService
from provisioner.dedupe.mountunit import render_mount_unit
from provisioner.inventory.model import DedupeMount, DedupeSettings
from provisioner.plan import plan_host, sha256
from provisioner.playbook import default_playbook, load_playbook
from provisioner.render.files import render_host
from provisioner.validate import validate_text
from tests.support.cli import REPO, Provision, cli_argv
from tests.support.fake_transport import FakeTransport

pytestmark = [pytest.mark.timeout(120), pytest.mark.usefixtures("own_controller")]

ANSI = re.compile(r"\x1b\[[0-9;]*m")


def local_inventory(names: str = "abcd", port: int = 18789) -> str:
    hosts = "".join(f"  {n}: {{connection: local, root: hosts/{n}, instances: {{main: {{port: {port}}}}}}}\n"
                    for n in names)
    return ("version: 1\nopenclaw: {version: \"2026.9.6\", command: [/opt/openclaw/bin/openclaw]}\n"
            "defaults:\n  service: {manager: none}\nhosts:\n" + hosts)


@pytest.fixture()
def provision(tmp_path: Path) -> Provision:
    return Provision(tmp_path, timeout=120, forbid_traceback=True)


def _write(tmp_path: Path, name: str, text: str) -> str:
    p = tmp_path / name
    p.write_text(text)
    return str(p)


def _batch_lines(stderr: str) -> list[str]:
    return [line.strip().removeprefix("batch: ") for line in stderr.splitlines() if line.strip().startswith("batch: ")]


def _statuses(stdout: str) -> dict[str, str]:
    """host -> status from apply's summary lines (`  ✓ a   changed   revision: ...`)."""
    out = {}
    for line in stdout.splitlines():
        m = re.match(r"^\s+\S\s+(\S+)\s+(changed|unchanged|failed|refused|not-reached|rolled-back|unreachable)\s",
                     line)
        if m:
            out[m.group(1)] = m.group(2)
    return out


# --- "The default is one canary host, then the rest" -----------------------------------------------------

def test_the_shipped_default_playbook_is_one_canary_then_the_rest() -> None:
    hosts = ["a", "b", "c", "d"]
    shipped = load_playbook(str(REPO / "playbooks/default.yaml"))  # this checkout's file, whatever is installed
    assert batches(hosts, shipped.serial) == [["a"], ["b", "c", "d"]]
    assert batches(hosts, default_playbook().serial) == [["a"], ["b", "c", "d"]]
    assert shipped.max_fail == 0 and shipped.health_gate and shipped.on_failure == "stop"


def test_apply_without_a_playbook_rolls_out_one_canary_then_the_other_three(tmp_path: Path,
                                                                          provision: Provision) -> None:
    inv = _write(tmp_path, "inv.yaml", local_inventory("abcd"))
    r = provision("apply", inv, "--yes")
    assert r.returncode == 0, r.stdout + r.stderr
    assert _batch_lines(r.stderr) == ["a", "b, c, d"]  # [1] alone would be a, b, c, d one at a time
    assert _statuses(r.stdout) == dict.fromkeys("abcd", "changed")



# --- "hosts of a batch are worked in parallel" -----------------------------------------------------------

def test_the_hosts_of_a_batch_are_worked_in_parallel(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each host's first health answer waits until all three hosts of the batch are being gated at once (a
    barrier). Worked one after another, the first host would wait alone: the barrier breaks and its apply fails.
    The fan-out is the real one (Fleet.each); the hosts are fake transports."""
    book = load_playbook(_write(tmp_path, "pb.yaml", 'serial: ["100%"]\nhealth_gate: {timeout: 30}\n'))
    world = FakeWorld(tmp_path, ["gw-1", "gw-2", "gw-3"])
    monkeypatch.setattr(world, "each", functools.partial(Fleet.each, world))
    monkeypatch.setattr(world, "forks", 3, raising=False)  # what Fleet.each reads of its fleet
    together = threading.Barrier(3, timeout=15)
    for fake in world.fakes.values():
        def gated(port: int, path: str, *, timeout: float = 5.0, fake: FakeTransport = fake,
                  real: Any = fake.http_get) -> Any:
            if not fake.http:  # the first health question of this host: all three must be here
                together.wait()
            return real(port, path, timeout=timeout)
        monkeypatch.setattr(fake, "http_get", gated)
    result = world.roll(book)
    assert result.batches == [["gw-1", "gw-2", "gw-3"]]
    assert {n: (r.status, r.message) for n, r in result.results.items()} == {
        n: (HostStatus.CHANGED, r.message) for n, r in result.results.items()}, result.results
    assert all(f.http == [(18789, "/readyz")] for f in world.fakes.values())

# --- max_fail: a count or a percentage, in a real rollout ------------------------------------------------

def _fleet_with_a_refusing_host(tmp_path: Path, provision: Provision) -> str:
    """Four local hosts on a previous revision; host b holds a directory where its openclaw.json belongs, so
    apply refuses b (a failed host of the first batch) and can change a, c and d."""
    inv = _write(tmp_path, "inv.yaml", local_inventory("abcd", port=18700))
    assert provision("apply", inv, "--yes").returncode == 0
    _write(tmp_path, "inv.yaml", local_inventory("abcd", port=18789))
    cfg = tmp_path / "hosts/b/home/openclaw/.openclaw-main/openclaw.json"
    cfg.unlink()
    cfg.mkdir()
    return inv


@pytest.mark.parametrize(("max_fail", "goes_on"), [(0, False), (1, True), ('"50%"', True), ('"49%"', False)])
def test_max_fail_as_a_count_or_a_percentage_decides_whether_the_next_batch_runs(
        tmp_path: Path, provision: Provision, max_fail: object, goes_on: bool) -> None:
    inv = _fleet_with_a_refusing_host(tmp_path, provision)
    book = _write(tmp_path, "pb.yaml", f"serial: [2]\nmax_fail: {max_fail}\n")  # 50% of a batch of 2 is 1 host
    r = provision("apply", inv, "--yes", "--playbook", book)
    assert r.returncode == 1, r.stdout + r.stderr
    later = "changed" if goes_on else "not-reached"
    assert _statuses(r.stdout) == {"a": "changed", "b": "refused", "c": later, "d": later}
    assert _batch_lines(r.stderr) == (["a, b", "c, d"] if goes_on else ["a, b"])
    cfg = tmp_path / "hosts/c/home/openclaw/.openclaw-main/openclaw.json"
    assert ('"port": 18789' in cfg.read_text()) is goes_on  # c took the new revision only when the budget allowed


# --- pause: seconds between batches ----------------------------------------------------------------------

def test_pause_sleeps_that_long_between_batches_and_not_before_the_first(tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    slept: list[float] = []
    monkeypatch.setattr(driver, "roll_out", functools.partial(roll_out, sleep=slept.append))
    book = load_playbook(_write(tmp_path, "pb.yaml", "serial: [1]\npause: 7\nhealth_gate: {enabled: false}\n"))
    world = FakeWorld(tmp_path, ["gw-1", "gw-2", "gw-3"])
    result = world.roll(book)
    assert result.batches == [["gw-1"], ["gw-2"], ["gw-3"]] and result.ok
    assert slept == [7.0, 7.0]


def test_pause_from_a_playbook_file_delays_the_real_cli_rollout(tmp_path: Path, provision: Provision) -> None:
    inv = _write(tmp_path, "inv.yaml", local_inventory("ab"))
    book = _write(tmp_path, "pb.yaml", "serial: [1]\npause: 1.5\n")
    start = time.monotonic()
    r = provision("apply", inv, "--yes", "--playbook", book)
    elapsed = time.monotonic() - start
    assert r.returncode == 0, r.stdout + r.stderr
    assert _batch_lines(r.stderr) == ["a", "b"] and elapsed >= 1.5  # a lower bound only: never flaky


# --- health_gate: on/off, and its timeout over each instance's own ---------------------------------------

INV_FAKE = """\
version: 1
openclaw: {version: "2026.9.6", command: ["/usr/bin/openclaw"]}
defaults:
  instance: {health: {timeout: 4}}
hosts:
"""


class FakeWorld:
    """Hosts on a previous revision (an older env file and unit), each behind its own FakeTransport, rolled out by
    the real driver and executor. `never_ready` hosts answer /readyz with 503 forever."""

    def __init__(self, tmp_path: Path, names: list[str], never_ready: tuple[str, ...] = ()) -> None:
        text = INV_FAKE + "".join(f"  {n}: {{address: 192.0.2.{10 + i}, instances: {{main: {{port: 18789}}}}}}\n"
                                  for i, n in enumerate(names))
        v = validate_text(text, str(tmp_path / "inv.yaml"), check_configs=False)
        assert v.ok and v.inventory is not None, [d.format() for d in v.diagnostics]
        self.hosts = list(v.inventory.hosts)
        self.desired = {h.name: render_host(v.inventory, h) for h in self.hosts}
        self.fakes: dict[str, FakeTransport] = {}
        plans = []
        for name, d in self.desired.items():
            observed = _previous_revision(d)
            plans.append(plan_host(d, observed))
            fake = FakeTransport(name, observed=observed, user_paths=user_side(d)["user_paths"])
            if name in never_ready:
                fake.on_http(503)
            self.fakes[name] = fake
        self.plan = Plan(str(tmp_path / "inv.yaml"), "0" * 64, tuple(plans))

    def transport(self, h: Any) -> FakeTransport:
        return self.fakes[h.name]

    def each(self, hosts: list[Any], fn: Any) -> dict[str, Any]:
        return {h.name: fn(h) for h in hosts}

    def roll(self, playbook: Any) -> RolloutResult:
        # no channels, no plugins, no install: never run
        inv = SimpleNamespace(openclaw=SimpleNamespace(run_command=("openclaw",), install=None))
        session = SimpleNamespace(inv=inv, hosts=self.hosts, desired=self.desired, partial=False)
        return Rollout(session, self.plan, self, playbook, _Quiet(),  # type: ignore[arg-type]
                       stop_now=lambda: None).run()


class _Quiet:
    def __call__(self, host: str, message: str) -> None:
        pass

    def done(self, host: str, ok: bool, message: str) -> None:
        pass

    def close(self) -> None:
        pass


def _previous_revision(desired: DesiredHost) -> ObservedHost:
    stale = {f.path for f in desired.files if not f.path.endswith("openclaw.json")}
    files = {}
    for f in desired.files:
        content = b"old " + f.content if f.path in stale else f.content
        files[f.path] = ObservedFile(f.path, True, sha256(content), f.mode, f.owner, f.group, content,
                                     "regular file", EntryKind.FILE)
    dirs = {d.path: ObservedFile(d.path, True, None, d.mode, d.owner, d.group, None, "directory",
                                 EntryKind.DIRECTORY) for d in desired.dirs}
    services = {s.unit: ObservedService(s.unit, "loaded", "active", "enabled") for s in desired.services}
    return ObservedHost(desired.name, files=files, dirs=dirs, services=services, users={desired.service_user: True})


def test_a_playbook_with_the_gate_disabled_asks_no_gateway(tmp_path: Path) -> None:
    book = load_playbook(_write(tmp_path, "pb.yaml", "health_gate: {enabled: false, timeout: 1}\n"))
    world = FakeWorld(tmp_path, ["gw-1", "gw-2"], never_ready=("gw-1", "gw-2"))
    result = world.roll(book)
    assert {n: r.status for n, r in result.results.items()} == dict.fromkeys(["gw-1", "gw-2"], HostStatus.CHANGED)
    assert all(f.http == [] for f in world.fakes.values())


def test_the_playbooks_gate_timeout_overrides_the_instances_own(tmp_path: Path) -> None:
    book = load_playbook(_write(tmp_path, "pb.yaml", "health_gate: {enabled: true, timeout: 1}\n"))
    world = FakeWorld(tmp_path, ["gw-1", "gw-2"], never_ready=("gw-1",))
    start = time.monotonic()
    result = world.roll(book)
    elapsed = time.monotonic() - start
    gw1 = result.results["gw-1"]
    assert gw1.status is HostStatus.FAILED and gw1.rolled_back, gw1.message
    assert "within 1 s (HTTP 503)" in gw1.message  # the instance says 4 s
    assert result.results["gw-2"].status is HostStatus.NOT_REACHED and elapsed < 60
    assert world.fakes["gw-1"].http.count((18789, "/readyz")) >= 2 and world.fakes["gw-2"].sent == []


def test_the_gate_is_on_by_default_and_a_gateway_that_never_gets_ready_fails_its_host(tmp_path: Path) -> None:
    book = load_playbook(_write(tmp_path, "pb.yaml", "serial: [1]\nhealth_gate: {timeout: 1}\n"))
    world = FakeWorld(tmp_path, ["gw-1"], never_ready=("gw-1",))
    assert world.roll(book).results["gw-1"].status is HostStatus.FAILED


# --- --limit ---------------------------------------------------------------------------------------------

def test_limit_plans_and_applies_only_the_named_host(tmp_path: Path, provision: Provision) -> None:
    inv = _write(tmp_path, "inv.yaml", local_inventory("abc"))
    r = provision("plan", inv, "--limit", "b", "--detailed-exitcode")
    assert r.returncode == 2, r.stdout + r.stderr
    assert "host b: 4 changes" in r.stdout and "host a" not in r.stdout and "host c" not in r.stdout
    assert "on 1 of 1 host(s)" in r.stdout
    r = provision("apply", inv, "--yes", "--limit", "b")
    assert r.returncode == 0, r.stdout + r.stderr
    assert sorted(p.name for p in (tmp_path / "hosts").iterdir()) == ["b"]
    assert _statuses(r.stdout) == {"b": "changed"}
    r = provision("plan", inv, "--limit", "[ac]", "--detailed-exitcode")  # a glob: a and c are still pending
    assert r.returncode == 2 and "host a: 4 changes" in r.stdout and "host c: 4 changes" in r.stdout
    assert "host b" not in r.stdout


# --- NO_COLOR ------------------------------------------------------------------------------------------

def _on_a_terminal(tmp_path: Path, *args: str, env: dict[str, str]) -> str:
    """Run the CLI with stdout and stderr on a pseudo-terminal (colour is only for terminals); all it printed."""
    master, slave = pty.openpty()
    full = {k: v for k, v in os.environ.items() if k != "NO_COLOR"}
    full.update({"PYTHONPATH": str(REPO), "TERM": "xterm", **env})
    proc = subprocess.Popen(cli_argv(*args), cwd=tmp_path, env=full, stdin=subprocess.DEVNULL, stdout=slave,
                            stderr=slave)
    os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    os.close(master)
    assert proc.wait(timeout=60) == 2
    return b"".join(chunks).decode()


def test_no_color_and_the_flag_turn_colour_off_on_a_terminal(tmp_path: Path) -> None:
    inv = _write(tmp_path, "inv.yaml", local_inventory("a"))
    coloured = _on_a_terminal(tmp_path, "plan", inv, "--detailed-exitcode", env={})
    assert ANSI.search(coloured), coloured  # the control: a terminal gets colour
    plain = _on_a_terminal(tmp_path, "plan", inv, "--detailed-exitcode", env={"NO_COLOR": "1"})
    assert "host a: 4 changes" in plain and not ANSI.search(plain), plain
    assert not ANSI.search(_on_a_terminal(tmp_path, "plan", inv, "--detailed-exitcode", "--no-color", env={}))
    assert ANSI.sub("", coloured).replace("\r", "") == plain.replace("\r", "")


# --- allow_downgrade -----------------------------------------------------------------------------------

def _release_plan(tmp_path: Path, allow: bool) -> Any:
    text = ("version: 1\nopenclaw:\n  version: \"2026.9.6\"\n  command: [/opt/openclaw/current/bin/openclaw]\n"
            f"  install: {{source: push, prefix: /opt/openclaw, keep: 3, allow_downgrade: {str(allow).lower()}}}\n"
            "hosts:\n  gw-1: {address: 192.0.2.10, instances: {main: {port: 18789}}}\n")
    v = validate_text(text, str(tmp_path / "inv.yaml"), check_configs=False)
    assert v.ok and v.inventory is not None, [d.format() for d in v.diagnostics]
    desired = render_host(v.inventory, v.inventory.hosts[0])
    newer = "2026.10.1"
    observed = ObservedHost("gw-1", releases={newer: f"openclaw={newer} node=24.21.0"}, current_release=newer)
    return plan_host(desired, observed)


def test_a_downgrade_is_refused_unless_allow_downgrade_is_set(tmp_path: Path) -> None:
    refused = _release_plan(tmp_path, allow=False)
    assert refused.error and "downgrade must be explicit" in refused.error and refused.changes == ()
    allowed = _release_plan(tmp_path, allow=True)
    assert allowed.error is None
    links = [c for c in allowed.changes if c.kind is ChangeKind.RELEASE_LINK]
    assert [(c.target, c.after) for c in links] == [("/opt/openclaw/current", "2026.9.6")]


# --- the dedupe directory as a bind mount ------------------------------------------------------------

def test_a_bind_mount_unit_is_a_local_bind_not_a_network_mount() -> None:
    dd = DedupeSettings("/var/lib/openclaw/inbound-claim", mount=DedupeMount("bind", "/srv/shared/claims"))
    lines = render_mount_unit(dd).decode().splitlines()
    for want in ("What=/srv/shared/claims", "Where=/var/lib/openclaw/inbound-claim", "Type=none", "Options=bind",
                 "WantedBy=local-fs.target"):
        assert want in lines
    assert not [line for line in lines if "nfs" in line.lower() or "network-online" in line or "_netdev" in line]
