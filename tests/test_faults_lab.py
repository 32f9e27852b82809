"""Faults during apply, on real systemd hosts over real SSH (issue 8): sshd killed, the network cut, a full disk,
the tool interrupted (SIGINT) or killed (SIGKILL), two applies at once.

After every fault the same invariants are checked on every host: each managed file is byte-equal to its old or
its new version, no temp file is left, the report and exit code say where each host stands, and running apply
again converges: exit 0, a plan with nothing to do, every gateway ready and started after its files were written.
"""

from __future__ import annotations

import copy
import hashlib
import signal
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from provisioner.remote.scripts.probe import LOCK_PATH, PENDING_DIR
from provisioner.remote.scripts.writes import BUSY_PATH
from tests.lab.harness import Lab
from tests.lab.hosts import LabHost
from tests.support.cli import Provision
from tests.support.lab_cli import LAB_ENV, STANDIN_PATH, install_standin, invocation, readyz
from tests.support.waiting import wait_for

pytestmark = pytest.mark.lab

UNITS = ("openclaw-gateway-main.service", "openclaw-gateway-rescue.service")
PORTS = (18789, 19789)
TALLY: dict[str, int] = {"faults": 0, "files checked": 0}
Running = subprocess.Popen[str]  # `provision apply` started in the background (Provision.start), as a terminal would


def inventory(revision: str, *, ready_after: float = 0.3, extra_env: dict[str, str] | None = None,
              health_timeout: float = 8) -> dict[str, Any]:
    """Every revision changes the config and the env file of every instance."""
    env = {"REVISION": revision, "STANDIN_READY_AFTER": str(ready_after), **(extra_env or {})}
    colour = "#" + hashlib.sha256(revision.encode()).hexdigest()[:6]
    inst: dict[str, Any] = {"main": {"port": PORTS[0], "config": {"ui": {"seamColor": colour}}, "env": env},
                            "rescue": {"port": PORTS[1], "config": {"gateway": {"auth": {"mode": "token"}},
                                                                    "ui": {"seamColor": colour}}, "env": env,
                                       "secrets": {"OPENCLAW_GATEWAY_TOKEN": {"env": "RESCUE_TOKEN"}}}}
    doc: dict[str, Any] = {
        "version": 1,
        "openclaw": {"version": "2026.9.6", "command": [STANDIN_PATH]},
        "defaults": {"service": {"manager": "systemd", "user": "openclaw"},
                     "instance": {"health": {"timeout": health_timeout}},
                     "ssh": {"connect_timeout": 5, "command_timeout": 6}},
        "hosts": {"h1": {"instances": inst}},
    }
    return doc


@dataclass
class Fleet:
    """A few systemd lab hosts, the inventories applied to them, and what every managed file looked like."""

    lab: Lab
    hosts: dict[str, LabHost]
    provision: Provision
    write_inventory: Callable[..., Path]
    tmp: Path
    rounds: int = 0
    expected: dict[str, dict[str, bytes]] = field(default_factory=dict)  # host -> path -> bytes now applied

    def inventory(self, revision: str, **kw: Any) -> str:
        doc = inventory(revision, **kw)
        one = doc["hosts"].pop("h1")
        doc["hosts"] = {name: copy.deepcopy(one) for name in self.hosts}
        return str(self.write_inventory(doc, self.hosts, name=f"inv-{revision}.yaml"))

    def render(self, inv: str) -> dict[str, dict[str, bytes]]:
        out = self.tmp / f"render-{Path(inv).stem}"
        r = self.provision("render", inv, "--out", str(out), "--with-secrets")
        assert r.returncode == 0, r.stdout + r.stderr
        files: dict[str, dict[str, bytes]] = {}
        for name in self.hosts:
            base = out / name
            files[name] = {"/" + str(p.relative_to(base)): p.read_bytes() for p in base.rglob("*") if p.is_file()}
        return files

    def on_host(self, name: str, paths: Iterator[str] | list[str]) -> dict[str, bytes | None]:
        host = self.hosts[name]
        got: dict[str, bytes | None] = {}
        for p in paths:
            r = host.run(["cat", "--", p], check=False, text=False)
            got[p] = r.stdout if r.returncode == 0 else None
        return got

    def playbook(self, serial: list[Any]) -> str:
        path = self.tmp / "playbook.yaml"
        path.write_text(f"name: test\nserial: {serial}\nmax_fail: 0\non_failure: stop\n")
        return str(path)

    def converge(self, inv: str) -> subprocess.CompletedProcess[str]:
        r = self.provision("apply", inv, "--yes")
        assert r.returncode == 0, r.stdout + r.stderr
        r2 = self.provision("plan", inv, "--detailed-exitcode")
        assert r2.returncode == 0, r2.stdout + r2.stderr
        self.expected = self.render(inv)
        for name, host in self.hosts.items():
            assert self.on_host(name, list(self.expected[name])) == self.expected[name]
            for unit, port in zip(UNITS, PORTS, strict=True):
                assert readyz(host, port) == "200", f"{name} {unit}"
                assert started_after_its_files(host, unit, self.expected[name]), f"{name}: {unit} runs older files"
        return r

    def check_whole(self, old: dict[str, dict[str, bytes]], new: dict[str, dict[str, bytes]], *,
                    sessions_end: bool = False) -> dict[str, str]:
        """Every managed file old or new, never in between; no temp file anywhere. Returns host -> 'old',
        'new' or 'mixed' (some files of each, which is allowed: each file is whole). With `sessions_end`, first
        waits for the host's SSH sessions to close (a killed controller's do at once): a script it sent just
        before it died may still be on its way through sshd, not yet holding the busy lock."""
        TALLY["faults"] += 1
        where = {}
        for name, host in self.hosts.items():
            # a script keeps running on the host after its controller dies: judge the host once it has ended
            if sessions_end:
                wait_for(lambda h=host: not scripts_of(h), what=f"{name}: the killed run's sessions and scripts to end")
            host.run(["flock", "-w", "60", BUSY_PATH, "true"])
            paths = sorted(set(old[name]) | set(new[name]))
            now = self.on_host(name, paths)
            kinds = set()
            for p in paths:
                TALLY["files checked"] += 1
                if old[name].get(p) == new[name].get(p):
                    assert now[p] == new[name].get(p), f"{name}:{p} changed though no revision changes it"
                elif now[p] == new[name].get(p):
                    kinds.add("new")
                elif now[p] == old[name].get(p):
                    kinds.add("old")
                else:
                    raise AssertionError(f"{name}:{p} is neither its old nor its new version: {now[p]!r:.300}")
            where[name] = kinds.pop() if len(kinds) == 1 else "mixed" if kinds else "old"
            temps = host.run("find / -xdev \\( -name '*.ocp-tmp*' -o -name '*.new' -path '*/prev/*' \\) -print "
                             "2>/dev/null || true").stdout.split()
            assert temps == [], f"{name}: temp files left behind: {temps}"
        return where


def scripts_of(host: LabHost) -> list[str]:
    """The host's SSH sessions (sshd's per-connection processes, not its listener) and the tool's scripts."""
    return host.run("pgrep -af '^sshd: [^/]' ; pgrep -af '^/bin/sh -s$' ; true").stdout.splitlines()


def started_after_its_files(host: LabHost, unit: str, files: dict[str, bytes]) -> bool:
    """The unit's running process was started after every file of its instance was last written."""
    inst = unit.removeprefix("openclaw-gateway-").removesuffix(".service")
    paths = [p for p in files if f"-{inst}" in p or p.endswith(unit)]
    assert paths
    script = ('t=$(systemctl show -p ExecMainStartTimestamp --value "$1"); s=$(date -d "$t" +%s); shift; '
              'for f in "$@"; do m=$(stat -c %Y -- "$f"); [ "$m" -le "$s" ] || { echo "$f $m > $s"; exit 1; }; done')
    return host.run(["sh", "-c", script, "-", unit, *paths], check=False).returncode == 0


@pytest.fixture(scope="module", autouse=True)
def _tally() -> Iterator[None]:
    yield
    # the figures of the closing note; shown with `pytest -s`
    print(f"\nfaults: {TALLY['faults']} injected, {TALLY['files checked']} managed files checked whole")


def locked(host: LabHost) -> bool:
    return host.exists(LOCK_PATH)


def writing(host: LabHost) -> bool:
    """The host's write script is under way: it marks the restarts pending before its first rename."""
    return host.exists(f"{PENDING_DIR}/{UNITS[0]}")


def restarted(host: LabHost, before: str) -> Callable[[], bool]:
    """The new files are running: the main unit has a new invocation (the health gate is still waiting)."""
    return lambda: invocation(host, UNITS[0]) not in ("", before)


@pytest.fixture()
def fleet(lab: Lab, make_host: Callable[..., LabHost], inventory_writer: Callable[..., Path],
          tmp_path: Path, request: pytest.FixtureRequest) -> Fleet:
    n = getattr(request, "param", 1)
    hosts = {}
    for i in range(n):
        h = make_host("systemd")
        install_standin(h)
        hosts[f"gw{i + 1}"] = h
    f = Fleet(lab, hosts, Provision(tmp_path, lab=lab, env=LAB_ENV), inventory_writer, tmp_path)
    f.converge(f.inventory("r0"))
    return f


def _round(fleet: Fleet, revision: str, fault: Callable[[Running], None], heal: Callable[[], None] = lambda: None,
           *, expect_rc: tuple[int, ...] = (1,), args: tuple[str, ...] = ()) -> tuple[int, str, dict[str, str]]:
    """Apply a new revision, hit it with `fault` while it runs, heal, check that every file is whole, then
    apply the same revision again: what the fault left pending (writes, restarts, the lock) must be finished."""
    old = fleet.expected
    inv = fleet.inventory(revision, ready_after=1.5)  # a slow start keeps each host in flight for a while
    new = fleet.render(inv)
    run = fleet.provision.start("apply", inv, "--yes", *args)
    try:
        try:
            fault(run)
        except AssertionError as exc:  # the event never came: say what the apply did meanwhile
            if run.poll() is None:
                run.kill()
            out, err = run.communicate()
            raise AssertionError(f"{exc}\napply exited {run.returncode}:\n{out[-2000:]}{err[-2000:]}") from exc
        r = fleet.provision.finish(run, timeout=120)
        rc, out = r.returncode, r.stdout + r.stderr
    finally:
        if run.poll() is None:
            run.kill()
        heal()
    assert rc in expect_rc, out
    where = fleet.check_whole(old, new)
    fleet.converge(inv)
    return rc, out, where


def test_sshd_killed_mid_apply_leaves_whole_files_and_the_rerun_converges(fleet: Fleet) -> None:
    host = fleet.hosts["gw1"]
    outcomes = []
    # killed while the host writes (the restarts are left to the rerun), then once the new files run
    for n, stage in enumerate(("writing", "restarted")):
        before = invocation(host, UNITS[0])  # read before the apply starts: it cannot have restarted yet

        def fault(run: Running, stage: str = stage, before: str = before) -> None:
            wait_for(lambda: writing(host), what="the write script to mark the restarts pending")
            if stage == "restarted":
                wait_for(restarted(host, before), what="the new gateway to start")
            host.run("pkill -KILL -x sshd || true")

        def heal() -> None:
            host.run("systemctl reset-failed ssh.service; systemctl restart ssh.service")
            wait_for(lambda: host.run("ss -ltnH 'sport = :22' | grep -q LISTEN", check=False).returncode == 0,
                     what="sshd back")

        rc, out, where = _round(fleet, f"sshd{n}", fault, heal)
        assert "gw1" in out and "failed" in out, out
        assert "connection" in out.lower() or "lost" in out.lower(), out
        outcomes.append(where["gw1"])
    # a script keeps running on its host after the connection dies: every file is the new one both times
    assert outcomes == ["new", "new"], outcomes


@pytest.mark.parametrize("fleet", [3], indirect=True)
def test_network_cut_mid_rollout_stops_the_rollout_and_the_rerun_converges(fleet: Fleet) -> None:
    gw2 = fleet.hosts["gw2"]

    def fault(run: Running) -> None:
        wait_for(lambda: writing(gw2), timeout=60, what="the rollout to write on gw2")
        gw2.cut_network()

    rc, out, where = _round(fleet, "netcut", fault, gw2.restore_network, args=("--playbook", fleet.playbook([1])))
    assert where == {"gw1": "new", "gw2": "new", "gw3": "old"}, (where, out)
    lines = {w: next(line for line in out.splitlines() if f" {w} " in line) for w in ("gw1", "gw2", "gw3")}
    assert "changed" in lines["gw1"] and "failed" in lines["gw2"] and "not-reached" in lines["gw3"], out
    assert "Apply FAILED" in out, out


def test_a_full_disk_under_the_config_directory_fails_cleanly(fleet: Fleet) -> None:
    host = fleet.hosts["gw1"]
    state = "/home/openclaw/.openclaw-main"
    host.run(f"set -e; mkdir -p /tmp/save; cp -a {state}/. /tmp/save/; "
             f"mount -t tmpfs -o size=64k,mode=0700 ocp-full {state}; cp -a /tmp/save/. {state}/; "
             f"chown openclaw:openclaw {state}")
    old = fleet.expected
    inv = fleet.inventory("big", extra_env={"BIG": "x" * 100_000})
    new = fleet.render(inv)
    r = fleet.provision("apply", inv, "--yes")
    assert r.returncode == 1, r.stdout + r.stderr
    assert "No space left on device" in r.stdout, r.stdout
    assert "previous files" in r.stdout
    assert fleet.check_whole(old, new) == {"gw1": "old"}
    assert readyz(host, PORTS[0]) == "200"
    host.run(f"umount -l {state}")
    fleet.converge(inv)


@pytest.mark.parametrize("fleet", [3], indirect=True)
def test_sigint_mid_batch_finishes_the_hosts_in_flight_and_reports(fleet: Fleet) -> None:
    gw1, gw2 = fleet.hosts["gw1"], fleet.hosts["gw2"]

    def fault(run: Running) -> None:
        wait_for(lambda: writing(gw1) and writing(gw2), what="the first batch to be writing")
        run.send_signal(signal.SIGINT)

    rc, out, where = _round(fleet, "sigint", fault, expect_rc=(130,), args=("--playbook", fleet.playbook([2, 1])))
    # the batch in flight was finished, healthy; the next batch was never started
    assert where == {"gw1": "new", "gw2": "new", "gw3": "old"}, (where, out)
    lines = {w: next(line for line in out.splitlines() if f" {w} " in line) for w in ("gw1", "gw2", "gw3")}
    assert "changed" in lines["gw1"] and "changed" in lines["gw2"] and "not-reached" in lines["gw3"], out
    assert "interrupted" in out.lower() and "Apply INTERRUPTED" in out, out


def test_sigkill_mid_batch_leaves_whole_files_and_the_next_apply_takes_the_stale_lock(fleet: Fleet) -> None:
    host = fleet.hosts["gw1"]
    seen = []
    # killed once it holds the lock (before or during its writes), while the host writes, once the new files run
    for n, stage in enumerate(("locked", "writing", "restarted")):
        old = fleet.expected
        inv = fleet.inventory(f"kill{n}", ready_after=1.5)
        new = fleet.render(inv)
        before = invocation(host, UNITS[0])
        run = fleet.provision.start("apply", inv, "--yes")
        wait_for(lambda: locked(host), what="the apply to take the lock")
        if stage != "locked":
            wait_for(lambda: writing(host), what="the write script to mark the restarts pending")
        if stage == "restarted":
            wait_for(restarted(host, before), what="the new gateway to start")
        run.send_signal(signal.SIGKILL)
        rc = fleet.provision.finish(run, timeout=120).returncode
        assert rc == -signal.SIGKILL
        seen.append(fleet.check_whole(old, new, sessions_end=True)["gw1"])
        assert locked(host), "a killed run leaves its lock"
        plan = fleet.provision("plan", inv, "--detailed-exitcode")
        assert plan.returncode == 2, plan.stdout  # files still to write, or a restart left pending
        r = fleet.converge(inv)
        assert "took over the stale lock of a killed run" in r.stdout, r.stdout
    # whole files whenever the kill lands; once the write script has started, it finishes on the host
    assert seen[0] in ("old", "mixed", "new") and seen[1:] == ["new", "new"], seen


def test_two_applies_at_once_the_second_refuses_and_unlock_spares_a_live_run(fleet: Fleet) -> None:
    host = fleet.hosts["gw1"]
    # the first apply stays in flight (its gateways not ready) until the test touches the gate, however slow
    # the checks below are on a loaded machine
    gate = "/srv/ocp-ready-gate"
    host.run(["rm", "-f", gate])
    inv = fleet.inventory("first", extra_env={"STANDIN_READY_FILE": gate}, health_timeout=120)
    first = fleet.provision.start("apply", inv, "--yes")
    wait_for(lambda: locked(host), what="the first apply to take the lock")
    second = fleet.provision("apply", fleet.inventory("second"), "--yes")
    assert second.returncode == 1, second.stdout + second.stderr
    assert "locked by another run that is still going" in second.stdout, second.stdout
    plan = fleet.provision("plan", inv)
    assert "! host is locked by another run that is still going" in plan.stdout, plan.stdout
    un = fleet.provision("unlock", inv)
    assert un.returncode == 1 and "still alive" in un.stderr and locked(host), un.stdout + un.stderr
    assert first.poll() is None, "the first apply ended before the checks: they proved nothing"
    host.run(["touch", gate])
    r = fleet.provision.finish(first, timeout=120)
    rc, out = r.returncode, r.stdout + r.stderr
    assert rc == 0, out
    assert not locked(host)
    # a stale lock: the run that took it is gone; unlock clears it, and says whose it was
    killed = fleet.provision.start("apply", fleet.inventory("killed", ready_after=3.0), "--yes")
    wait_for(lambda: locked(host), what="the apply to take the lock")
    killed.kill()
    fleet.provision.finish(killed, timeout=120)
    un = fleet.provision("unlock", inv)
    assert un.returncode == 0 and "its run is dead" in un.stderr and not locked(host), un.stdout + un.stderr
    fleet.converge(fleet.inventory("killed"))


# Holds back every `flock 8` on the host (the fence, or a script taking the busy lock) until the test removes its
# entry in the queue; `flock -w` (a takeover waiting for a dead run's scripts) passes. A stand-in for a host so
# slow, or an sshd so backed up, that a killed run's last script starts after the next run has taken over.
FLOCK_QUEUE = "/run/ocp-flock-queue"
FLOCK_GATE = f"""#!/bin/sh
case "$1" in -*) exec /usr/bin/flock "$@" ;; esac
t={FLOCK_QUEUE}/$$
: > "$t"
while [ -e "$t" ]; do sleep 0.02; done
exec /usr/bin/flock "$@"
"""


def queued(host: LabHost) -> set[str]:
    return set(host.run(["ls", "-1", FLOCK_QUEUE]).stdout.split())


def test_a_killed_runs_late_script_changes_nothing_once_the_next_run_has_taken_over(fleet: Fleet) -> None:
    host = fleet.hosts["gw1"]
    host.run(["mkdir", "-p", FLOCK_QUEUE])
    host.write_file("/usr/local/bin/flock", FLOCK_GATE, mode=0o755)
    try:
        late = fleet.provision.start("apply", fleet.inventory("late-a"), "--yes")
        wait_for(lambda: bool(queued(host)), what="the first apply's write script to reach the host")
        held_back = queued(host)
        late.send_signal(signal.SIGKILL)
        assert fleet.provision.finish(late, timeout=120).returncode == -signal.SIGKILL
        inv = fleet.inventory("late-b")
        nxt = fleet.provision.start("apply", inv, "--yes")
        while nxt.poll() is None:  # every script of the next run goes through; the killed run's stays queued
            for entry in queued(host) - held_back:
                host.run(["rm", "-f", f"{FLOCK_QUEUE}/{entry}"])
        r = fleet.provision.finish(nxt, timeout=120)
        assert r.returncode == 0 and "took over the stale lock of a killed run" in r.stdout, r.stdout + r.stderr
        # now the killed run's write script goes on, long after its lock was taken over and released
        assert queued(host) == held_back
        host.run(["sh", "-c", f"rm -f {FLOCK_QUEUE}/*"])
        wait_for(lambda: not scripts_of(host), what="the killed run's script to end")
    finally:
        host.run(["rm", "-rf", "/usr/local/bin/flock", FLOCK_QUEUE])
    want = fleet.render(inv)["gw1"]
    assert fleet.on_host("gw1", list(want)) == want, "the killed run's script wrote after the takeover"
    assert fleet.provision("plan", inv, "--detailed-exitcode").returncode == 0
    fleet.expected = fleet.render(inv)
    fleet.converge(inv)
